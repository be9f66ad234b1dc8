/** Names of confusion-matrix cells, shared by the matrix and the Grad-CAM gallery headings. */
import type { ConfusionCell } from '../../src/core/run/runFile.js';

export const CELL_LABELS: Record<ConfusionCell, { short: string; long: string }> = {
  'true-positive': { short: 'TP', long: 'true positive' },
  'false-positive': { short: 'FP', long: 'false positive' },
  'true-negative': { short: 'TN', long: 'true negative' },
  'false-negative': { short: 'FN', long: 'false negative' },
  correct: { short: '', long: 'correct' },
  wrong: { short: '', long: 'wrong' },
};

/** As the explainer names cells: by the positive class when there is one, else just right or wrong. */
export function cellKind(trueClass: number, predicted: number, positiveIndex: number): ConfusionCell {
  if (positiveIndex < 0) return trueClass === predicted ? 'correct' : 'wrong';
  const actual = trueClass === positiveIndex;
  const called = predicted === positiveIndex;
  if (actual) return called ? 'true-positive' : 'false-negative';
  return called ? 'false-positive' : 'true-negative';
}
