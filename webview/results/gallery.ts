/**
 * Grad-CAM gallery, grouped by confusion-matrix cell: the network's input beside the same input under the
 * map. Controls: overlay opacity, per-image or run-wide colour scale, sort by confidence; the confusion
 * matrix's cell buttons set the filter through the shared store.
 */
import type { ExplainedSample, RunFile } from '../../src/core/run/runFile.js';
import type { CellFilter, ViewState } from '../protocol.js';
import { h } from './dom.js';
import { count, percent, plural, SPLIT_NAMES } from './format.js';
import { CELL_LABELS } from './cells.js';
import { imagePath, type Host } from './host.js';
import { sameFilter, type Store } from './state.js';

interface Group {
  key: CellFilter;
  samples: ExplainedSample[];
}

export function gallery(run: RunFile, samples: ExplainedSample[], host: Host, store: Store): HTMLElement {
  const classes = run.dataset.classes;
  const groups = groupByCell(samples);
  const status = h('p', { class: 'gallery-status', role: 'status' });
  const list = h('div', { class: 'gallery-groups' });
  const root = h('div', { class: 'gallery', id: 'gallery' }, controls(store, run.explanations?.colormap), status, list);
  let shown: ViewState | null = null;

  const render = (state: ViewState) => {
    root.style.setProperty('--overlay-opacity', String(state.opacity));
    if (shown && shown.filter === state.filter && shown.scale === state.scale && shown.sort === state.sort) return;
    shown = state;
    const visible = groups.filter((g) => !state.filter || sameFilter(g.key, state.filter));
    status.replaceChildren(...statusLine(state.filter, visible, samples.length, classes, store));
    list.replaceChildren(...visible.map((g) => groupView(g, classes, host, state)));
  };
  store.subscribe(render);
  render(store.state);
  return root;
}

function controls(store: Store, colormap: string | undefined): HTMLElement {
  const { opacity, scale, sort } = store.state;
  const output = h('output', { for: 'overlay-opacity' }, percent(opacity, 0));
  const slider = h('input', {
    type: 'range', id: 'overlay-opacity', min: 0, max: 100, step: 5, value: Math.round(opacity * 100),
    // While dragging only the CSS variable moves; the state (and the host's saved copy) follows on release.
    oninput: () => {
      output.textContent = percent(Number(slider.value) / 100, 0);
      (slider.closest('.gallery') as HTMLElement | null)?.style.setProperty('--overlay-opacity', String(Number(slider.value) / 100));
    },
    onchange: () => store.update({ opacity: Number(slider.value) / 100 }),
  });
  const scaleSelect = h('select', { id: 'overlay-scale', onchange: () => store.update({ scale: scaleSelect.value === 'shared' ? 'shared' : 'image' }) },
    h('option', { value: 'image', selected: scale === 'image' }, 'each image its own maximum'),
    h('option', { value: 'shared', selected: scale === 'shared' }, 'one scale for the whole run'));
  const sortSelect = h('select', { id: 'gallery-sort', onchange: () => store.update({ sort: sortSelect.value === 'confidence-asc' ? 'confidence-asc' : 'confidence-desc' }) },
    h('option', { value: 'confidence-desc', selected: sort === 'confidence-desc' }, 'most confident first'),
    h('option', { value: 'confidence-asc', selected: sort === 'confidence-asc' }, 'least confident first'));
  return h('div', { class: 'controls', role: 'group', 'aria-label': 'Gallery controls' },
    h('span', { class: 'control' }, h('label', { for: 'overlay-opacity' }, 'Overlay opacity'), slider, output),
    h('span', { class: 'control' }, h('label', { for: 'overlay-scale' }, 'Colour scale'), scaleSelect),
    h('span', { class: 'control' }, h('label', { for: 'gallery-sort' }, 'Order'), sortSelect),
    colormap ? colormapLegend(colormap) : null);
}

/**
 * The colour map is baked into the overlay PNGs when the run is explained (`explanations.colormap`), so the
 * view shows which one it is rather than offering a switch: recolouring in the page would need the raw
 * class activation map of every sample, which run.json does not carry.
 */
function colormapLegend(colormap: string): HTMLElement {
  const note = 'The overlays were coloured when the run was explained; this view cannot change the colour map.';
  return h('span', { class: `control colormap-legend colormap-${colormap}`, title: note },
    h('span', { class: 'control-label' }, 'Colour map'),
    h('span', {}, colormap),
    // The bar is drawn by CSS for the colour maps it knows and hidden for any other.
    h('span', { class: 'colormap-bar', 'aria-hidden': 'true' }, 'low', h('span', { class: 'colormap' }), 'high'),
    h('span', { class: 'visually-hidden' }, note));
}

function statusLine(filter: CellFilter | null, visible: Group[], total: number, classes: string[], store: Store): (Node | string)[] {
  if (!filter) return [`All ${count(total)} explained images, grouped by confusion-matrix cell.`];
  const n = visible.reduce((sum, g) => sum + g.samples.length, 0);
  return [
    n === 0
      ? `No explained images for ${cellTitle(filter, classes)}. `
      : `Showing ${cellTitle(filter, classes)}: ${plural(n, 'image')}. `,
    h('button', { type: 'button', class: 'button secondary', onclick: () => store.update({ filter: null }) }, 'Show all cells'),
  ];
}

function groupView(group: Group, classes: string[], host: Host, state: ViewState): HTMLElement {
  const direction = state.sort === 'confidence-asc' ? 1 : -1;
  const sorted = [...group.samples].sort((a, b) => direction * (a.confidence - b.confidence));
  const kind = CELL_LABELS[group.samples[0].cell]?.long ?? group.samples[0].cell;
  return h('section', { class: 'gallery-group' },
    h('h3', {}, `${cellTitle(group.key, classes)} `, h('span', { class: 'hint' }, `${kind} · ${plural(sorted.length, 'image')}`)),
    h('ul', { class: 'samples' }, ...sorted.map((s) => sampleCard(s, classes, host, state))));
}

function sampleCard(sample: ExplainedSample, classes: string[], host: Host, state: ViewState): HTMLElement {
  const overlay = state.scale === 'shared' ? sample.overlayShared : sample.overlay;
  return h('li', { class: 'sample' },
    h('div', { class: 'pair' },
      h('figure', {}, image(host, sample.original, `input: ${sample.path}`), h('figcaption', {}, 'input')),
      h('figure', {}, h('div', { class: 'stack' }, image(host, sample.original, ''), image(host, overlay, `Grad-CAM: ${sample.path}`, 'overlay')), h('figcaption', {}, 'Grad-CAM'))),
    h('p', { class: 'sample-meta' },
      `predicted ${classes[sample.predicted] ?? sample.predicted} (${percent(sample.confidence)})`,
      h('br'),
      h('span', { class: 'hint' }, `true ${classes[sample.true] ?? sample.true} · ${percent(sample.backgroundEnergy, 0)} of the map off the cell`)),
    imagePath(host, sample.path));
}

function image(host: Host, path: string, alt: string, extraClass = ''): HTMLElement {
  const uri = host.imageUri(path);
  if (uri === undefined) return h('span', { class: `missing-image ${extraClass}`, title: path }, 'image not available');
  return h('img', { src: uri, alt, class: extraClass, loading: 'lazy', decoding: 'async' });
}

function cellTitle(cell: CellFilter, classes: string[]): string {
  return `${SPLIT_NAMES[cell.split] ?? cell.split} · true ${classes[cell.true] ?? cell.true} → predicted ${classes[cell.predicted] ?? cell.predicted}`;
}

/** Groups in confusion-matrix order: validation before test, then by true and predicted class. */
function groupByCell(samples: ExplainedSample[]): Group[] {
  const groups = new Map<string, Group>();
  for (const sample of samples) {
    const key = `${sample.split}|${sample.true}|${sample.predicted}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { key: { split: sample.split, true: sample.true, predicted: sample.predicted }, samples: [] }));
    group.samples.push(sample);
  }
  const splitOrder = (s: string) => (s === 'val' ? 0 : 1);
  return [...groups.values()].sort((a, b) => splitOrder(a.key.split) - splitOrder(b.key.split) || a.key.true - b.key.true || a.key.predicted - b.key.predicted);
}
