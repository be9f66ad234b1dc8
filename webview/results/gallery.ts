/**
 * Grad-CAM gallery, grouped by confusion-matrix cell: the network's input beside the same input under the
 * map. Controls: overlay opacity, per-image or run-wide colour scale, colour map, sort by confidence; the
 * confusion matrix's cell buttons set the filter through the shared store.
 *
 * Samples with a raw map (`cam`) are painted in the page on a canvas (camCanvas.ts), so the colour map and
 * scale can change; samples of runs explained before run.json carried the maps show the overlay PNGs, whose
 * colour map was fixed when the run was explained.
 */
import { COLORMAPS, isColormapName, type ColormapName } from '../../src/core/explain/colormaps.js';
import type { ExplainedSample, RunFile } from '../../src/core/run/runFile.js';
import type { CellFilter, ViewState } from '../../src/protocol/results.js';
import { colormapBar, isCam, largestValue, paintCam } from './camCanvas.js';
import { h } from './dom.js';
import { count, percent, plural, SPLIT_NAMES } from './format.js';
import { CELL_LABELS } from './cells.js';
import { imagePath, type Host } from './host.js';
import { sameFilter, type Store } from './state.js';

interface Group {
  key: CellFilter;
  samples: ExplainedSample[];
}

/** What the cards need to paint their maps. */
interface Painting {
  /** Canvas width and height: the network input size, which the input images have. */
  size: number;
  /** The run-wide scale for `scale: 'shared'`. */
  sharedScale: number;
  /** The canvases on screen, to repaint when only the colour map changes. */
  canvases: { canvas: HTMLCanvasElement; cam: number[][] }[];
}

export function gallery(run: RunFile, samples: ExplainedSample[], host: Host, store: Store): HTMLElement {
  const classes = run.dataset.classes;
  const groups = groupByCell(samples);
  const cams = samples.map((s) => s.cam).filter(isCam);
  const recorded = run.explanations?.sharedScale;
  const painting: Painting = {
    size: Number.isInteger(run.model?.imageSize) && run.model.imageSize > 0 ? run.model.imageSize : 224,
    // The scale the shared-scale PNGs used; a run that has maps but not the scale gets the largest map value.
    sharedScale:
      typeof recorded === 'number' && Number.isFinite(recorded) && recorded >= 0 ? recorded : largestValue(cams),
    canvases: [],
  };
  const status = h('p', { class: 'gallery-status', role: 'status' });
  const list = h('div', { class: 'gallery-groups' });
  const colours = colormapControl(store, run.explanations?.colormap, cams.length, samples.length);
  const root = h(
    'div',
    { class: 'gallery', id: 'gallery' },
    controls(store, colours.element),
    colours.note,
    status,
    list,
  );
  let shown: ViewState | null = null;

  const render = (state: ViewState) => {
    root.style.setProperty('--overlay-opacity', String(state.opacity));
    colours.show(state.colormap);
    if (shown && shown.filter === state.filter && shown.scale === state.scale && shown.sort === state.sort) {
      // Only the colour map (or opacity) changed: repaint the canvases in place, keep the images and focus.
      if (shown.colormap !== state.colormap)
        for (const { canvas, cam } of painting.canvases)
          paintCam(canvas, cam, state.colormap, scaleOf(state, painting));
      shown = state;
      return;
    }
    shown = state;
    painting.canvases = [];
    const visible = groups.filter((g) => !state.filter || sameFilter(g.key, state.filter));
    status.replaceChildren(...statusLine(state.filter, visible, samples.length, classes, store));
    list.replaceChildren(...visible.map((g) => groupView(g, classes, host, state, painting)));
  };
  store.subscribe(render);
  render(store.state);
  return root;
}

function scaleOf(state: ViewState, painting: Painting): number | undefined {
  return state.scale === 'shared' ? painting.sharedScale : undefined;
}

/**
 * The colour map select and its legend. With no raw maps in the run (explained by an older version) the
 * colours are baked into the PNGs: the select is disabled on that colour map, and a note says why.
 */
function colormapControl(
  store: Store,
  baked: string | undefined,
  withCam: number,
  total: number,
): { element: HTMLElement; note: HTMLElement | null; show: (colormap: ColormapName) => void } {
  const recolourable = withCam > 0;
  const fixed = recolourable ? undefined : baked;
  const names: string[] = fixed !== undefined && !isColormapName(fixed) ? [...COLORMAPS, fixed] : [...COLORMAPS];
  const without = total - withCam;
  const noteText = !recolourable
    ? `Colour map fixed${fixed ? ` (${fixed})` : ''}: this run was explained before run.json kept the raw maps, so its overlays are pictures. Explain the run again to choose the colour map here.`
    : without > 0
      ? `${plural(without, 'image')} without a raw map show${without === 1 ? 's its overlay picture' : ' their overlay pictures'}${baked ? `, coloured with ${baked}` : ''}.`
      : undefined;
  const select = h(
    'select',
    {
      id: 'overlay-colormap',
      disabled: !recolourable,
      'aria-describedby': noteText ? 'overlay-colormap-note' : undefined,
      onchange: () => {
        if (isColormapName(select.value)) store.update({ colormap: select.value });
      },
    },
    ...names.map((name) => h('option', { value: name }, name)),
  );
  const bar = h('span', { class: 'colormap-bar', 'aria-hidden': 'true' });
  const element = h(
    'span',
    { class: 'control colormap-control' },
    h('label', { for: 'overlay-colormap' }, 'Colour map'),
    select,
    bar,
  );
  const note = noteText ? h('p', { class: 'hint colormap-note', id: 'overlay-colormap-note' }, noteText) : null;
  let drawn: string | undefined;
  const show = (colormap: ColormapName) => {
    const current = fixed ?? colormap;
    select.value = current;
    if (drawn === current) return;
    drawn = current;
    bar.replaceChildren(...(isColormapName(current) ? ['low', colormapBar(current), 'high'] : []));
  };
  return { element, note, show };
}

function controls(store: Store, colours: HTMLElement): HTMLElement {
  const { opacity, scale, sort } = store.state;
  const output = h('output', { for: 'overlay-opacity' }, percent(opacity, 0));
  const slider = h('input', {
    type: 'range',
    id: 'overlay-opacity',
    min: 0,
    max: 100,
    step: 5,
    value: Math.round(opacity * 100),
    // While dragging only the CSS variable moves; the state (and the host's saved copy) follows on release.
    oninput: () => {
      output.textContent = percent(Number(slider.value) / 100, 0);
      (slider.closest('.gallery') as HTMLElement | null)?.style.setProperty(
        '--overlay-opacity',
        String(Number(slider.value) / 100),
      );
    },
    onchange: () => store.update({ opacity: Number(slider.value) / 100 }),
  });
  const scaleSelect = h(
    'select',
    {
      id: 'overlay-scale',
      onchange: () => store.update({ scale: scaleSelect.value === 'shared' ? 'shared' : 'image' }),
    },
    h('option', { value: 'image', selected: scale === 'image' }, 'each image its own maximum'),
    h('option', { value: 'shared', selected: scale === 'shared' }, 'one scale for the whole run'),
  );
  const sortSelect = h(
    'select',
    {
      id: 'gallery-sort',
      onchange: () =>
        store.update({ sort: sortSelect.value === 'confidence-asc' ? 'confidence-asc' : 'confidence-desc' }),
    },
    h('option', { value: 'confidence-desc', selected: sort === 'confidence-desc' }, 'most confident first'),
    h('option', { value: 'confidence-asc', selected: sort === 'confidence-asc' }, 'least confident first'),
  );
  return h(
    'div',
    { class: 'controls', role: 'group', 'aria-label': 'Gallery controls' },
    h('span', { class: 'control' }, h('label', { for: 'overlay-opacity' }, 'Overlay opacity'), slider, output),
    h('span', { class: 'control' }, h('label', { for: 'overlay-scale' }, 'Colour scale'), scaleSelect),
    colours,
    h('span', { class: 'control' }, h('label', { for: 'gallery-sort' }, 'Order'), sortSelect),
  );
}

function statusLine(
  filter: CellFilter | null,
  visible: Group[],
  total: number,
  classes: string[],
  store: Store,
): (Node | string)[] {
  if (!filter) return [`All ${count(total)} explained images, grouped by confusion-matrix cell.`];
  const n = visible.reduce((sum, g) => sum + g.samples.length, 0);
  return [
    n === 0
      ? `No explained images for ${cellTitle(filter, classes)}. `
      : `Showing ${cellTitle(filter, classes)}: ${plural(n, 'image')}. `,
    h(
      'button',
      { type: 'button', class: 'button secondary', onclick: () => store.update({ filter: null }) },
      'Show all cells',
    ),
  ];
}

function groupView(group: Group, classes: string[], host: Host, state: ViewState, painting: Painting): HTMLElement {
  const direction = state.sort === 'confidence-asc' ? 1 : -1;
  const sorted = [...group.samples].sort((a, b) => direction * (a.confidence - b.confidence));
  const kind = CELL_LABELS[group.samples[0].cell]?.long ?? group.samples[0].cell;
  return h(
    'section',
    { class: 'gallery-group' },
    h(
      'h3',
      {},
      `${cellTitle(group.key, classes)} `,
      h('span', { class: 'hint' }, `${kind} · ${plural(sorted.length, 'image')}`),
    ),
    h('ul', { class: 'samples' }, ...sorted.map((s) => sampleCard(s, classes, host, state, painting))),
  );
}

function sampleCard(
  sample: ExplainedSample,
  classes: string[],
  host: Host,
  state: ViewState,
  painting: Painting,
): HTMLElement {
  return h(
    'li',
    { class: 'sample' },
    h(
      'div',
      { class: 'pair' },
      h('figure', {}, image(host, sample.original, `input: ${sample.path}`), h('figcaption', {}, 'input')),
      h(
        'figure',
        {},
        h('div', { class: 'stack' }, image(host, sample.original, ''), overlay(sample, host, state, painting)),
        h('figcaption', {}, 'Grad-CAM'),
      ),
    ),
    h(
      'p',
      { class: 'sample-meta' },
      `predicted ${classes[sample.predicted] ?? sample.predicted} (${percent(sample.confidence)})`,
      h('br'),
      h(
        'span',
        { class: 'hint' },
        `true ${classes[sample.true] ?? sample.true} · ${percent(sample.backgroundEnergy, 0)} of the map off the cell`,
      ),
    ),
    imagePath(host, sample.path),
  );
}

/** The map over the input: painted from the raw map when the run has it, else the PNG of the chosen scale. */
function overlay(sample: ExplainedSample, host: Host, state: ViewState, painting: Painting): HTMLElement {
  const label = `Grad-CAM: ${sample.path}`;
  if (!isCam(sample.cam))
    return image(host, state.scale === 'shared' ? sample.overlayShared : sample.overlay, label, 'overlay');
  const canvas = h('canvas', {
    class: 'overlay',
    width: painting.size,
    height: painting.size,
    role: 'img',
    'aria-label': label,
  });
  paintCam(canvas, sample.cam, state.colormap, scaleOf(state, painting));
  painting.canvases.push({ canvas, cam: sample.cam });
  return canvas;
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
    if (!group)
      groups.set(
        key,
        (group = { key: { split: sample.split, true: sample.true, predicted: sample.predicted }, samples: [] }),
      );
    group.samples.push(sample);
  }
  const splitOrder = (s: string) => (s === 'val' ? 0 : 1);
  return [...groups.values()].sort(
    (a, b) =>
      splitOrder(a.key.split) - splitOrder(b.key.split) || a.key.true - b.key.true || a.key.predicted - b.key.predicted,
  );
}
