/**
 * Confusion-matrix cells of a run's predictions. Pure (no Node modules), so the webview can name cells
 * exactly as the explainer does.
 */
import type { ConfusionCell, Prediction, RunFile } from '../run/runFile.js';

/** Cells in the order they are reported: what the model gets right, then what it gets wrong. */
export const BINARY_CELLS: readonly ConfusionCell[] = [
  'true-positive',
  'true-negative',
  'false-positive',
  'false-negative',
];
export const MULTICLASS_CELLS: readonly ConfusionCell[] = ['correct', 'wrong'];

/**
 * The positive class of a run: the one its metrics used (ALL for C-NMC), else a class named `all` in a
 * binary run; null when the run has no natural positive class (cells are then correct/wrong).
 */
export function positiveClassIndex(run: Pick<RunFile, 'dataset' | 'metrics'>): number | null {
  const { classes } = run.dataset;
  if (classes.length !== 2) return null;
  const named = run.metrics.validation?.positiveClass ?? run.metrics.test?.positiveClass;
  const index = named ? classes.indexOf(named) : classes.findIndex((name) => name.toLowerCase() === 'all');
  return index >= 0 ? index : null;
}

export function confusionCell(
  prediction: Pick<Prediction, 'true' | 'predicted'>,
  positive: number | null,
): ConfusionCell {
  const right = prediction.true === prediction.predicted;
  if (positive === null) return right ? 'correct' : 'wrong';
  if (prediction.predicted === positive) return right ? 'true-positive' : 'false-positive';
  return right ? 'true-negative' : 'false-negative';
}
