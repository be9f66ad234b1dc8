/** Headline and per-class metrics for validation and test, side by side. */
import type { ClassificationMetrics } from '../../src/core/metrics.js';
import type { RunFile } from '../../src/core/run/runFile.js';
import { h, notAvailable, section } from './dom.js';
import { count, fixed } from './format.js';
import { evaluatedSplits, missingSplitNote, noMetricsNote, type EvaluatedSplit } from './splits.js';

interface Row {
  label: string;
  hint?: string;
  value: (m: ClassificationMetrics) => string;
}

const ROWS: Row[] = [
  { label: 'images', value: (m) => count(m.sampleCount) },
  { label: 'accuracy', value: (m) => fixed(m.accuracy) },
  {
    label: 'balanced accuracy',
    hint: 'mean recall over classes; not fooled by imbalance',
    value: (m) => fixed(m.balancedAccuracy),
  },
  { label: 'weighted F1', hint: 'the C-NMC 2019 ranking metric', value: (m) => fixed(m.weightedF1) },
  { label: 'macro F1', value: (m) => fixed(m.macroF1) },
  { label: 'ROC AUC', value: (m) => fixed(m.rocAuc) },
  { label: 'sensitivity', hint: 'recall of the positive class', value: (m) => withPositive(m, m.sensitivity) },
  { label: 'specificity', hint: 'recall of the other classes', value: (m) => withPositive(m, m.specificity) },
  {
    label: 'expected calibration error',
    hint: '15 bins; lower is better',
    value: (m) => fixed(m.expectedCalibrationError),
  },
  { label: 'log loss', value: (m) => fixed(m.logLoss) },
];

function withPositive(m: ClassificationMetrics, value: number | null): string {
  return m.positiveClass === null ? fixed(null) : `${fixed(value)} (${m.positiveClass})`;
}

export function metricsSection(run: RunFile): HTMLElement {
  const splits = evaluatedSplits(run);
  if (splits.length === 0) return section('metrics', 'Metrics', notAvailable(noMetricsNote(run)));
  const note = missingSplitNote(run);
  return section(
    'metrics',
    'Metrics',
    h(
      'p',
      { class: 'lead' },
      run.bestEpoch === null
        ? 'Computed with the final weights.'
        : `Computed with the best weights (epoch ${run.bestEpoch}, lowest validation loss).`,
    ),
    headlineTable(splits),
    note ? notAvailable(note) : null,
    h('div', { class: 'side-by-side' }, ...splits.map((s) => h('div', {}, perClassTable(s)))),
  );
}

function headlineTable(splits: EvaluatedSplit[]): HTMLElement {
  return h(
    'table',
    { class: 'grid metrics' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'metric'),
        ...splits.map((s) => h('th', { scope: 'col', class: 'num' }, s.name)),
      ),
    ),
    h(
      'tbody',
      {},
      ...ROWS.map((row) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, row.label, row.hint ? h('span', { class: 'hint' }, ` ${row.hint}`) : null),
          ...splits.map((s) => h('td', { class: 'num' }, row.value(s.metrics))),
        ),
      ),
    ),
  );
}

function perClassTable({ name, metrics }: EvaluatedSplit): HTMLElement {
  const columns = ['class', 'precision', 'recall', 'F1', 'support', 'ROC AUC (one vs rest)'];
  return h(
    'table',
    { class: 'grid per-class' },
    h('caption', {}, `Per class, ${name}`),
    h('thead', {}, h('tr', {}, ...columns.map((c, i) => h('th', { scope: 'col', class: i > 0 ? 'num' : null }, c)))),
    h(
      'tbody',
      {},
      ...metrics.perClass.map((c) =>
        h(
          'tr',
          {},
          h(
            'th',
            { scope: 'row' },
            c.className,
            c.className === metrics.positiveClass ? h('span', { class: 'hint' }, ' positive') : null,
          ),
          h('td', { class: 'num' }, fixed(c.precision)),
          h('td', { class: 'num' }, fixed(c.recall)),
          h('td', { class: 'num' }, fixed(c.f1)),
          h('td', { class: 'num' }, count(c.support)),
          h('td', { class: 'num' }, fixed(c.rocAuc)),
        ),
      ),
    ),
  );
}
