/** The evaluated splits of a run, in display order, and what to say about the ones that are missing. */
import type { ClassificationMetrics } from '../../src/core/metrics.js';
import type { RunFile } from '../../src/core/run/runFile.js';

export interface EvaluatedSplit {
  split: 'val' | 'test';
  name: 'validation' | 'test';
  metrics: ClassificationMetrics;
}

export function evaluatedSplits(run: RunFile): EvaluatedSplit[] {
  const result: EvaluatedSplit[] = [];
  if (run.metrics?.validation) result.push({ split: 'val', name: 'validation', metrics: run.metrics.validation });
  if (run.metrics?.test) result.push({ split: 'test', name: 'test', metrics: run.metrics.test });
  return result;
}

/** Why there are no metrics at all, in terms of where the run is. */
export function noMetricsNote(run: RunFile): string {
  if (run.status === 'running') return 'No metrics yet: they are computed with the best weights when training ends.';
  if (run.status === 'failed') return 'No metrics: the run failed before evaluation.';
  if (run.status === 'cancelled') return 'No metrics: the run was cancelled before evaluation.';
  return 'No metrics in this run.';
}

/** The note under the metrics when one split is missing; null when both are there. */
export function missingSplitNote(run: RunFile): string | null {
  const splits = evaluatedSplits(run);
  if (splits.length !== 1) return null;
  return splits[0].split === 'val'
    ? 'No test metrics: the dataset has no labelled test split.'
    : 'No validation metrics in this run.';
}
