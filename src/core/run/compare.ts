/**
 * Two runs side by side: the fold-label model next to the all/hem one. The rows are built here once, pure,
 * so the CLI's text table and the results page (panel and static report) say the same thing.
 */
import type { ClassificationMetrics } from '../metrics.js';
import type { RunFile } from './runFile.js';

export interface ComparedRun {
  runDir: string;
  run: RunFile;
}

export interface ComparisonRow {
  label: string;
  values: string[];
  /** The values differ and the difference matters to the reader (labels, structural flag). */
  differs: boolean;
}

/** The split a run is judged on: an evaluation's test set, a training run's validation (else test) split. */
export function headlineMetrics(run: RunFile): { split: string; metrics: ClassificationMetrics } | null {
  const { validation, test } = run.metrics ?? {};
  if (run.kind === 'evaluation') return test ? { split: 'test', metrics: test } : null;
  if (validation) return { split: 'validation', metrics: validation };
  return test ? { split: 'test', metrics: test } : null;
}

const fixed = (value: number | null | undefined) =>
  typeof value === 'number' && Number.isFinite(value) ? value.toFixed(3) : '—';

export function comparisonRows(runs: readonly ComparedRun[]): ComparisonRow[] {
  const attempt = (value: (c: ComparedRun) => string) => (c: ComparedRun) => {
    try {
      return value(c);
    } catch {
      return '—';
    }
  };
  /** `flag`: whether a difference is flagged, or what must differ for it to be (default: the values). */
  const row = (
    label: string,
    value: (c: ComparedRun) => string,
    flag: boolean | ((c: ComparedRun) => string) = false,
  ): ComparisonRow => {
    const values = runs.map(attempt(value));
    const compared = typeof flag === 'function' ? runs.map(attempt(flag)) : values;
    return { label, values, differs: flag !== false && new Set(compared).size > 1 };
  };
  const metric = (pick: (m: ClassificationMetrics) => number | null) => (c: ComparedRun) => {
    const headline = headlineMetrics(c.run);
    return headline ? fixed(pick(headline.metrics)) : '—';
  };
  return [
    row('kind', (c) => c.run.kind ?? 'training'),
    row('status', (c) => c.run.status),
    row('dataset', (c) => c.run.dataset.root),
    // `auto` and `folder:2` that resolve to the same folder level are the same labels: not flagged.
    row(
      'label source',
      (c) => labelSource(c.run),
      (c) => describedSources(c.run) || c.run.settings.labels,
    ),
    row('classes', (c) => c.run.dataset.classes.join(', '), true),
    row(
      'structural labels',
      (c) => (c.run.dataset.labelsAreStructural ? 'yes — folds, splits or batches' : 'no'),
      true,
    ),
    row('outputs', (c) => c.run.evaluation?.outputs.join(', ') ?? c.run.dataset.classes.join(', ')),
    row('verdict', (c) => c.run.evaluation?.association.verdict ?? probeVerdicts(c.run) ?? '—'),
    row('judged on', (c) => {
      const headline = headlineMetrics(c.run);
      if (headline) return `${headline.split} (${headline.metrics.sampleCount} images)`;
      const association = c.run.evaluation?.association;
      // Outputs that are not the classes: judged by how much they say about the labels, not by accuracy.
      return association
        ? `output × label table (${association.n} images, Cramér's V ${association.cramersV.toFixed(2)})`
        : 'no metrics';
    }),
    row(
      'accuracy',
      metric((m) => m.accuracy),
    ),
    row(
      'balanced accuracy',
      metric((m) => m.balancedAccuracy),
    ),
    row(
      'weighted F1',
      metric((m) => m.weightedF1),
    ),
    row(
      'ROC AUC',
      metric((m) => m.rocAuc),
    ),
  ];
}

function labelSource(run: RunFile): string {
  const described = describedSources(run);
  return `${run.settings.labels}${described ? ` → ${described}` : ''}`;
}

/** Where the run's labels came from, as resolved ("folder level 2 + labels.csv: diagnosis"); '' when unknown. */
function describedSources(run: RunFile): string {
  return (run.dataset.spec?.labelSources ?? [])
    .map((s) =>
      s.kind === 'folder' ? `folder level ${s.depth}` : s.kind === 'csv' ? `${s.file}: ${s.labelColumn}` : 'file name',
    )
    .join(' + ');
}

/** The CLI's table: one column per run. */
export function formatComparison(runs: readonly ComparedRun[]): string {
  const rows = comparisonRows(runs);
  const header = ['', ...runs.map((c) => c.runDir.split(/[\\/]/).filter(Boolean).pop() ?? c.runDir)];
  const table = [header, ...rows.map((r) => [`${r.differs ? '* ' : ''}${r.label}`, ...r.values])];
  const widths = header.map((_, i) => Math.min(60, Math.max(...table.map((line) => line[i].length))));
  return table
    .map((line) =>
      line
        .map((cell, i) => cell.padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A probe run's verdicts, the group's first: "the fold can be predicted …; the diagnosis can be …". */
function probeVerdicts(run: RunFile): string | undefined {
  const verdicts = [run.probe?.group, run.probe?.diagnosis].filter((r) => r).map((r) => r!.verdict);
  return verdicts.length > 0 ? verdicts.join('; ') : undefined;
}
