/**
 * Two runs side by side (Compare Runs…, `leukemia-audit compare`): the rows of core/run/compare.ts —
 * kind, label source, structural flag, verdict, headline metrics — then each run's confusion matrix (or, for
 * an evaluation whose outputs are not the classes, its output × label contingency table). The
 * panel and the static comparison report both draw it with this code.
 */
import { comparisonRows, headlineMetrics, type ComparedRun } from '../../src/core/run/compare.js';
import { matrix } from './confusion.js';
import { h, notAvailable, section } from './dom.js';
import { badge } from './elements.js';
import { contingencyTable } from './evaluation.js';
import { DEFAULT_STATE, Store } from './state.js';

export function renderComparison(root: HTMLElement, runs: readonly ComparedRun[]): void {
  const names = runs.map((c) => c.runDir.split(/[\\/]/).filter(Boolean).pop() ?? c.runDir);
  const rows = comparisonRows(runs);
  const table = h(
    'table',
    { class: 'metrics comparison' },
    h('thead', {}, h('tr', {}, h('td', {}), ...names.map((n) => h('th', { scope: 'col' }, n)))),
    h(
      'tbody',
      {},
      ...rows.map((r) =>
        h(
          'tr',
          { class: r.differs ? 'differs' : '' },
          h('th', { scope: 'row' }, r.label, r.differs ? badge('differs', 'warning') : null),
          ...r.values.map((v) => h('td', {}, v)),
        ),
      ),
    ),
  );
  // Read-only matrices: nothing to filter on this page.
  const store = new Store(DEFAULT_STATE, () => undefined);
  const matrices = runs.map((c, i) => {
    const headline = headlineMetrics(c.run);
    const association = c.run.evaluation?.association;
    // Outputs that are not the classes (an unmapped evaluation): no confusion matrix, but the output × label table.
    if (!headline && association) return h('div', {}, h('h3', {}, names[i]), contingencyTable(association));
    if (!headline)
      return h('div', {}, h('h3', {}, names[i]), notAvailable('No confusion matrix: this run has no metrics.'));
    const split = headline.split === 'test' ? 'test' : 'val';
    const name = headline.split === 'test' ? 'test' : 'validation';
    return h('div', {}, h('h3', {}, names[i]), matrix({ split, name, metrics: headline.metrics }, false, store));
  });
  const structural = runs.some((c) => c.run.dataset.labelsAreStructural);
  root.replaceChildren(
    ...[
      h('header', { class: 'page-header' }, h('h1', {}, `Comparison: ${names.join(' vs ')}`)),
      structural
        ? h(
            'div',
            { class: 'banner banner-error', role: 'alert' },
            h('strong', {}, 'A run here was trained or evaluated on structural labels'),
            ' (folds, splits or batches): its metrics say how well it tells those groups apart, not the diagnosis.',
          )
        : null,
      section('comparison', 'Side by side', table),
      section(
        'comparison-confusion',
        runs.some((c) => !headlineMetrics(c.run) && c.run.evaluation)
          ? 'Confusion matrices and output × label tables'
          : 'Confusion matrices',
        h('div', { class: 'side-by-side' }, ...matrices),
      ),
    ].filter((part) => part !== null),
  );
}
