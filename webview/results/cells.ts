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
