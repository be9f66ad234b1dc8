/**
 * Confusion matrices with counts and row percentages. Each cell is a button that filters the Grad-CAM
 * gallery to that cell's samples (pressed again, it clears the filter), so they work from the keyboard.
 */
import type { ClassificationMetrics } from '../../src/core/metrics.js';
import type { RunFile } from '../../src/core/run/runFile.js';
import { h, notAvailable, section } from './dom.js';
import { count, percent, plural } from './format.js';
import { confusionCell } from '../../src/core/explain/cells.js';
import { CELL_LABELS } from './cells.js';
import { evaluatedSplits, missingSplitNote, noMetricsNote, type EvaluatedSplit } from './splits.js';
import { sameFilter, type Store } from './state.js';

export function confusionSection(run: RunFile, store: Store): HTMLElement {
  const splits = evaluatedSplits(run);
  if (splits.length === 0) return section('confusion', 'Confusion matrix', notAvailable(noMetricsNote(run)));
  const explained = (run.explanations?.samples.length ?? 0) > 0;
  const note = missingSplitNote(run);
  return section(
    'confusion',
    'Confusion matrix',
    h(
      'p',
      { class: 'lead' },
      'Rows are the true class, columns the predicted one; the percentage is of the row (the diagonal is each class\u2019s recall).',
      explained ? ' Choose a cell to see its Grad-CAM examples.' : '',
    ),
    h('div', { class: 'side-by-side' }, ...splits.map((s) => matrix(s, explained, store))),
    note ? notAvailable(note) : null,
  );
}

/** One split's matrix; `interactive` cells filter the gallery through `store`. */
export function matrix({ split, name, metrics }: EvaluatedSplit, interactive: boolean, store: Store): HTMLElement {
  const { classes, confusionMatrix } = metrics;
  const positiveIndex = metrics.positiveClass === null ? null : classes.indexOf(metrics.positiveClass);
  const buttons: { button: HTMLButtonElement; t: number; p: number }[] = [];
  const cell = (t: number, p: number): HTMLElement => {
    const n = confusionMatrix.counts[t]?.[p] ?? 0;
    const share = confusionMatrix.rowNormalized[t]?.[p] ?? 0;
    const kind = CELL_LABELS[confusionCell({ true: t, predicted: p }, positiveIndex)];
    const content = [
      h('span', { class: 'cell-count' }, count(n)),
      h('span', { class: 'cell-share' }, percent(share)),
      kind.short ? h('span', { class: 'cell-kind', title: kind.long }, kind.short) : null,
    ];
    const label = `true ${classes[t]}, predicted ${classes[p]}: ${plural(n, 'image')}, ${percent(share)} of the row`;
    const td = h('td', { class: t === p ? 'diagonal' : 'off-diagonal' });
    // The cell's shade encodes the row share; the numbers carry it too, so colour is never the only cue.
    td.style.setProperty('--share', String(share));
    if (!interactive) {
      td.append(h('div', { class: 'cell-body', 'aria-label': label }, ...content));
      return td;
    }
    const button = h(
      'button',
      {
        type: 'button',
        class: 'cell-body cell-button',
        'aria-label': `${label}. Show Grad-CAM examples`,
        'aria-pressed': 'false',
        onclick: () => {
          const filter = { split, true: t, predicted: p };
          store.update({ filter: sameFilter(store.state.filter, filter) ? null : filter });
          if (store.state.filter)
            document.getElementById('gallery')?.scrollIntoView({ behavior: 'smooth', block: 'start' });
        },
      },
      ...content,
    );
    buttons.push({ button, t, p });
    td.append(button);
    return td;
  };
  const sync = () => {
    for (const { button, t, p } of buttons)
      button.setAttribute('aria-pressed', String(sameFilter(store.state.filter, { split, true: t, predicted: p })));
  };
  store.subscribe(sync);
  const table = h(
    'table',
    { class: 'confusion', id: `confusion-${split}` },
    h('caption', {}, `${name} (${count(metrics.sampleCount)} images)`),
    h(
      'thead',
      {},
      h('tr', {}, h('td', {}), h('th', { scope: 'colgroup', colspan: classes.length, class: 'axis' }, 'predicted')),
      h(
        'tr',
        {},
        h('th', { scope: 'col', class: 'axis' }, 'true ↓'),
        ...classes.map((c) => h('th', { scope: 'col' }, c)),
      ),
    ),
    h(
      'tbody',
      {},
      ...classes.map((c, t) => h('tr', {}, h('th', { scope: 'row' }, c), ...classes.map((_, p) => cell(t, p)))),
    ),
  );
  sync();
  return h('div', { class: 'confusion-wrap' }, table, positiveLegend(metrics));
}

function positiveLegend(metrics: ClassificationMetrics): HTMLElement | null {
  return metrics.positiveClass === null
    ? null
    : h('p', { class: 'hint' }, `Positive class: ${metrics.positiveClass} (TP, FN, FP, TN relative to it).`);
}
