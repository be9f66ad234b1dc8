/**
 * Classification metrics for evaluating a classifier from its predicted class probabilities.
 *
 * Pure functions over plain arrays so the same code runs in the trainer, the CLI and the extension.
 * Definitions follow scikit-learn (the reference the C-NMC 2019 challenge and most papers use), so numbers
 * reported here can be compared with published ones; `test/metrics.test.ts` checks parity against sklearn.
 *
 * Every value of `ClassificationMetrics` is finite or `null`: it goes through `JSON.stringify` unchanged,
 * where NaN or Infinity would silently turn into `null` or break the webview's charts.
 */

export interface ClassificationInput {
  /** Class names, in the order of the probability columns. */
  classes: string[];
  /** True class index of each sample. */
  yTrue: number[];
  /** One row per sample, one column per class; each row sums to 1 (e.g. softmax output). */
  probabilities: number[][];
  /**
   * Name of the class that counts as "positive" for sensitivity, specificity and the ROC curve.
   * Default: the class named `all` (any case) if there is one — in C-NMC the leukemic blasts (ALL) are
   * what a screening test must find — else the second class when there are exactly two.
   */
  positiveClass?: string;
}

export interface ConfusionMatrix {
  /** `counts[t][p]`: samples of true class t predicted as class p. */
  counts: number[][];
  /** Each row divided by its sum, i.e. per-class recall on the diagonal; a class with no samples has a row of 0. */
  rowNormalized: number[][];
}

export interface ClassMetrics {
  className: string;
  /** 0 when the class is never predicted (sklearn `zero_division=0`). */
  precision: number;
  /** 0 when the class has no samples. */
  recall: number;
  f1: number;
  /** Number of samples whose true class this is. */
  support: number;
  /** One-vs-rest ROC AUC of this class's probability; null when the class has no samples or every sample has it. */
  rocAuc: number | null;
}

export interface RocCurve {
  positiveClass: string;
  /** Points in order of decreasing threshold, starting at (0, 0). */
  fpr: number[];
  tpr: number[];
  /** Probability of the positive class at or above which a sample is called positive; `null` stands for +∞. */
  thresholds: (number | null)[];
  /** Number of points before downsampling for display (one per distinct score, plus the origin). */
  fullLength: number;
}

export interface ReliabilityBin {
  /** The bin holds confidences in (lower, upper]; the first bin also holds exactly 0. */
  lower: number;
  upper: number;
  count: number;
  /** Mean of the max probability over the bin's samples; null for an empty bin. */
  meanConfidence: number | null;
  /** Fraction of the bin's samples whose argmax is the true class; null for an empty bin. */
  accuracy: number | null;
}

export interface ClassificationMetrics {
  classes: string[];
  sampleCount: number;
  /** null when there is no natural positive class (more than two classes, none named `all`, none given). */
  positiveClass: string | null;
  confusionMatrix: ConfusionMatrix;
  accuracy: number;
  /** Mean recall over the classes that have samples (as sklearn, which skips classes absent from y_true). */
  balancedAccuracy: number;
  perClass: ClassMetrics[];
  /** Unweighted mean of per-class F1 over all `classes`, including ones absent from the data (they score 0). */
  macroF1: number;
  /** Per-class F1 weighted by support: the C-NMC 2019 challenge's ranking metric. */
  weightedF1: number;
  /**
   * Binary: ROC AUC of the positive class's probability. Multi-class: macro mean of one-vs-rest AUCs.
   * null when undefined, i.e. when some class has no samples (or, binary, every sample is of one class).
   */
  rocAuc: number | null;
  /** Recall of the positive class (one-vs-rest); null when there is no positive class. */
  sensitivity: number | null;
  /** Recall of "not the positive class" (one-vs-rest); null when there is no positive class. */
  specificity: number | null;
  /**
   * Expected calibration error over `reliability`'s bins:
   *   Σ_bins (n_bin / n) · |accuracy_bin − meanConfidence_bin|,
   * where confidence is the max probability of a sample and accuracy whether its argmax is the true class
   * (Guo et al. 2017, "On Calibration of Modern Neural Networks", with their 15 equal-width bins).
   */
  expectedCalibrationError: number;
  /** Mean cross-entropy of the true class, with probabilities clipped as sklearn's `log_loss` does. */
  logLoss: number;
  /** ROC curve of the positive class (one-vs-rest); null without a positive class or when it or its rest is absent. */
  rocCurve: RocCurve | null;
  /** The calibration bins behind `expectedCalibrationError`, for a reliability diagram. */
  reliability: ReliabilityBin[];
}

export const CALIBRATION_BIN_COUNT = 15;
export const MAX_ROC_CURVE_POINTS = 200;

/**
 * sklearn's `log_loss` clips probabilities to [ε, 1 − ε] with ε = float64 machine epsilon, so a confident
 * wrong answer costs about 36 nats instead of infinity.
 */
const LOG_LOSS_EPSILON = Number.EPSILON;

/** Rows of a softmax in float32 sum to 1 within ~1e-6; a larger gap means logits or garbage were passed. */
const ROW_SUM_TOLERANCE = 1e-3;

export function computeClassificationMetrics(input: ClassificationInput): ClassificationMetrics {
  validateInput(input);
  const { classes, yTrue, probabilities } = input;
  const classCount = classes.length;
  const sampleCount = yTrue.length;
  const yPred = probabilities.map(argmax);
  const positiveIndex = resolvePositiveIndex(classes, input.positiveClass);

  const counts = confusionCounts(classCount, yTrue, yPred);
  const support = counts.map(sum);
  const predictedCount = classes.map((_, p) => sum(counts.map((row) => row[p])));
  const truePositives = classes.map((_, c) => counts[c][c]);

  const recall = classes.map((_, c) => safeDivide(truePositives[c], support[c]));
  const precision = classes.map((_, c) => safeDivide(truePositives[c], predictedCount[c]));
  // 2·TP / (2·TP + FP + FN) equals 2PR / (P + R) whenever both are defined, and is 0 exactly when sklearn's
  // zero_division=0 makes it 0, without the rounding of going through P and R.
  const f1 = classes.map((_, c) => safeDivide(2 * truePositives[c], support[c] + predictedCount[c]));
  const classAucs = classes.map((_, c) =>
    rocAucFromRanks(
      yTrue.map((y) => y === c),
      probabilities.map((row) => row[c]),
    ),
  );

  const presentClasses = classes.map((_, c) => c).filter((c) => support[c] > 0);
  const reliability = reliabilityBins(yTrue, yPred, probabilities);

  return {
    classes: [...classes],
    sampleCount,
    positiveClass: positiveIndex === null ? null : classes[positiveIndex],
    confusionMatrix: {
      counts,
      rowNormalized: counts.map((row, t) => row.map((n) => safeDivide(n, support[t]))),
    },
    accuracy: sum(truePositives) / sampleCount,
    balancedAccuracy: mean(presentClasses.map((c) => recall[c])),
    perClass: classes.map((className, c) => ({
      className,
      precision: precision[c],
      recall: recall[c],
      f1: f1[c],
      support: support[c],
      rocAuc: classAucs[c],
    })),
    macroF1: mean(f1),
    weightedF1: sum(f1.map((f, c) => f * support[c])) / sampleCount,
    rocAuc: overallRocAuc(classAucs, positiveIndex),
    ...sensitivityAndSpecificity(counts, positiveIndex),
    expectedCalibrationError: expectedCalibrationError(reliability, sampleCount),
    logLoss: logLoss(yTrue, probabilities),
    rocCurve:
      positiveIndex === null
        ? null
        : displayRocCurve(
            classes[positiveIndex],
            yTrue.map((y) => y === positiveIndex),
            probabilities.map((row) => row[positiveIndex]),
          ),
    reliability,
  };
}

/** Index of the largest value; ties go to the lowest index, as numpy's argmax. */
export function argmax(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/**
 * ROC AUC as the Mann–Whitney statistic: the probability that a random positive scores above a random
 * negative, ties counting one half. Equal to the area under sklearn's `roc_curve` (what `roc_auc_score`
 * integrates), but computed from average ranks in O(n log n) with exact handling of tied scores.
 * null when there are no positives or no negatives.
 */
export function rocAucFromRanks(isPositive: readonly boolean[], scores: readonly number[]): number | null {
  const positives = isPositive.filter(Boolean).length;
  const negatives = isPositive.length - positives;
  if (positives === 0 || negatives === 0) return null;
  const order = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let positiveRankSum = 0;
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && scores[order[end]] === scores[order[start]]) end++;
    const averageRank = (start + 1 + end) / 2; // ranks are 1-based: start+1 … end
    for (let k = start; k < end; k++) if (isPositive[order[k]]) positiveRankSum += averageRank;
    start = end;
  }
  return (positiveRankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * The full ROC curve, as sklearn's `roc_curve(..., drop_intermediate=False)`: one point per distinct score,
 * in order of decreasing threshold, after an initial (0, 0) point whose threshold (+∞) is `null`.
 * null when there are no positives or no negatives (one of the rates would divide by zero).
 */
export function rocCurve(
  isPositive: readonly boolean[],
  scores: readonly number[],
): { fpr: number[]; tpr: number[]; thresholds: (number | null)[] } | null {
  const positives = isPositive.filter(Boolean).length;
  const negatives = isPositive.length - positives;
  if (positives === 0 || negatives === 0) return null;
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const fpr = [0];
  const tpr = [0];
  const thresholds: (number | null)[] = [null];
  let truePositives = 0;
  let falsePositives = 0;
  for (let k = 0; k < order.length; k++) {
    if (isPositive[order[k]]) truePositives++;
    else falsePositives++;
    const lastOfItsScore = k === order.length - 1 || scores[order[k + 1]] !== scores[order[k]];
    if (lastOfItsScore) {
      fpr.push(falsePositives / negatives);
      tpr.push(truePositives / positives);
      thresholds.push(scores[order[k]]);
    }
  }
  return { fpr, tpr, thresholds };
}

/**
 * Picks at most `maxPoints` evenly spaced indices of a curve, always keeping both ends,
 * so a chart of tens of thousands of samples stays light while keeping its shape.
 */
export function downsampleIndices(length: number, maxPoints: number): number[] {
  if (length <= maxPoints) return Array.from({ length }, (_, i) => i);
  return Array.from({ length: maxPoints }, (_, i) => Math.round((i * (length - 1)) / (maxPoints - 1)));
}

function displayRocCurve(positiveClass: string, isPositive: boolean[], scores: number[]): RocCurve | null {
  const full = rocCurve(isPositive, scores);
  if (full === null) return null;
  const kept = downsampleIndices(full.fpr.length, MAX_ROC_CURVE_POINTS);
  return {
    positiveClass,
    fpr: kept.map((i) => full.fpr[i]),
    tpr: kept.map((i) => full.tpr[i]),
    thresholds: kept.map((i) => full.thresholds[i]),
    fullLength: full.fpr.length,
  };
}

/** Binary: the positive class's AUC. Multi-class: sklearn's `multi_class='ovr', average='macro'`. */
function overallRocAuc(classAucs: (number | null)[], positiveIndex: number | null): number | null {
  if (classAucs.length === 2) return classAucs[positiveIndex ?? 1];
  if (classAucs.some((auc) => auc === null)) return null;
  return mean(classAucs as number[]);
}

function sensitivityAndSpecificity(
  counts: number[][],
  positiveIndex: number | null,
): { sensitivity: number | null; specificity: number | null } {
  if (positiveIndex === null) return { sensitivity: null, specificity: null };
  const truePositives = counts[positiveIndex][positiveIndex];
  const actualPositives = sum(counts[positiveIndex]);
  const predictedPositives = sum(counts.map((row) => row[positiveIndex]));
  const total = sum(counts.map(sum));
  const actualNegatives = total - actualPositives;
  const trueNegatives = actualNegatives - (predictedPositives - truePositives);
  return {
    sensitivity: safeDivide(truePositives, actualPositives),
    specificity: safeDivide(trueNegatives, actualNegatives),
  };
}

function reliabilityBins(yTrue: number[], yPred: number[], probabilities: number[][]): ReliabilityBin[] {
  const count = new Array<number>(CALIBRATION_BIN_COUNT).fill(0);
  const confidenceSum = new Array<number>(CALIBRATION_BIN_COUNT).fill(0);
  const correct = new Array<number>(CALIBRATION_BIN_COUNT).fill(0);
  probabilities.forEach((row, i) => {
    const confidence = row[yPred[i]];
    const bin = calibrationBinOf(confidence);
    count[bin]++;
    confidenceSum[bin] += confidence;
    if (yPred[i] === yTrue[i]) correct[bin]++;
  });
  return count.map((n, b) => ({
    lower: b / CALIBRATION_BIN_COUNT,
    upper: (b + 1) / CALIBRATION_BIN_COUNT,
    count: n,
    meanConfidence: n === 0 ? null : confidenceSum[b] / n,
    accuracy: n === 0 ? null : correct[b] / n,
  }));
}

function expectedCalibrationError(bins: ReliabilityBin[], sampleCount: number): number {
  let total = 0;
  for (const { count, accuracy, meanConfidence } of bins) {
    if (accuracy !== null && meanConfidence !== null) {
      total += (count / sampleCount) * Math.abs(accuracy - meanConfidence);
    }
  }
  return total;
}

/**
 * Bins are (b/15, (b+1)/15]. Comparing against the same `(b + 1) / 15` the bins report as `upper`, rather
 * than computing `ceil(c · 15) − 1`, keeps a confidence sitting on an edge (0.4, 0.8, …) in the bin the
 * reported edges say.
 */
function calibrationBinOf(confidence: number): number {
  for (let b = 0; b < CALIBRATION_BIN_COUNT - 1; b++) {
    if (confidence <= (b + 1) / CALIBRATION_BIN_COUNT) return b;
  }
  return CALIBRATION_BIN_COUNT - 1;
}

/** sklearn 1.2 `log_loss`: clip each probability to [ε, 1 − ε], renormalise the row, average −ln p(true). */
function logLoss(yTrue: number[], probabilities: number[][]): number {
  const clip = (p: number) => Math.min(1 - LOG_LOSS_EPSILON, Math.max(LOG_LOSS_EPSILON, p));
  const losses = probabilities.map((row, i) => {
    const clipped = row.map(clip);
    return -Math.log(clipped[yTrue[i]] / sum(clipped));
  });
  return mean(losses);
}

function confusionCounts(classCount: number, yTrue: number[], yPred: number[]): number[][] {
  const counts = Array.from({ length: classCount }, () => new Array<number>(classCount).fill(0));
  yTrue.forEach((t, i) => counts[t][yPred[i]]++);
  return counts;
}

function resolvePositiveIndex(classes: string[], positiveClass: string | undefined): number | null {
  if (positiveClass !== undefined) {
    const index = classes.indexOf(positiveClass);
    if (index < 0) {
      throw new Error(`Positive class "${positiveClass}" is not one of the classes: ${classes.join(', ')}.`);
    }
    return index;
  }
  const all = classes.findIndex((name) => name.toLowerCase() === 'all');
  if (all >= 0) return all;
  return classes.length === 2 ? 1 : null;
}

function validateInput({ classes, yTrue, probabilities }: ClassificationInput): void {
  if (classes.length < 2) throw new Error(`Need at least two classes, got ${classes.length}.`);
  if (new Set(classes).size !== classes.length) {
    throw new Error(`Class names must be distinct: ${classes.join(', ')}.`);
  }
  if (yTrue.length === 0) throw new Error('No samples to evaluate.');
  if (yTrue.length !== probabilities.length) {
    throw new Error(`${yTrue.length} labels but ${probabilities.length} probability rows.`);
  }
  yTrue.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= classes.length) {
      throw new Error(`Sample ${i}: label ${y} is not a class index in 0…${classes.length - 1}.`);
    }
  });
  probabilities.forEach((row, i) => {
    if (row.length !== classes.length) {
      throw new Error(`Sample ${i}: ${row.length} probabilities for ${classes.length} classes.`);
    }
    if (!row.every((p) => Number.isFinite(p) && p >= 0)) {
      throw new Error(`Sample ${i}: probabilities must be finite and non-negative, got [${row.join(', ')}].`);
    }
    const total = sum(row);
    if (Math.abs(total - 1) > ROW_SUM_TOLERANCE) {
      throw new Error(
        `Sample ${i}: probabilities sum to ${total}, not 1 — were logits passed instead of softmax output?`,
      );
    }
  });
}

/** sklearn's `zero_division=0`: a ratio with nothing to count is 0, not NaN. */
function safeDivide(numerator: number, denominator: number): number {
  return denominator === 0 ? 0 : numerator / denominator;
}

function sum(values: readonly number[]): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function mean(values: readonly number[]): number {
  return sum(values) / values.length;
}
