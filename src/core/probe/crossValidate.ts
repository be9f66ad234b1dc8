/**
 * How well a linear probe predicts a target (the fold/site/batch, or the diagnosis) from frozen features,
 * judged on images whose SUBJECT it never saw: group k-fold cross-validation by subject. Cells of one patient
 * share stain, smear and day; a probe cross-validated by image would recognise the patient and, since each
 * patient sits in one fold, "predict the fold" through them. Where no subject is known, images are the unit
 * and the result says so.
 *
 * The uncertainty is a cluster bootstrap over the same units (subjects): resample them with replacement,
 * recompute balanced accuracy from their out-of-fold predictions, take the 2.5 and 97.5 percentiles. It
 * treats the fitted probes as fixed (no refitting per resample), so it covers which subjects happened to be
 * in the dataset, not the variability of training — the usual compromise, and cheap enough to run always.
 */
import { createRng } from '../random.js';
import type { ClassRecall, CrossValidatedProbe } from '../run/runFile.js';
import { fitLogistic, predictProbabilities, type LogisticOptions } from './logistic.js';

export interface ProbeInput {
  /** `n × d` row-major features. */
  features: Float32Array;
  dimension: number;
  /** Target class per row, -1 for a row the target does not label (left out). */
  labels: Int32Array;
  classes: string[];
  /** Subject per row; undefined where unknown. */
  subjects: readonly (string | undefined)[];
  seed: number;
  /** Most folds (default 5). */
  folds?: number;
  /** Bootstrap resamples (default 2000). */
  resamples?: number;
  logistic?: LogisticOptions;
  signal?: AbortSignal;
  /** After each fold is fitted. */
  onFold?: (done: number, total: number) => void;
}

export const DEFAULT_FOLDS = 5;
export const DEFAULT_RESAMPLES = 2000;
const INTERVAL_LEVEL = 0.95;

export type { ClassRecall, CrossValidatedProbe };

/** Too few subjects (or images) with a value of the target to hold any out. */
export class TooFewUnitsError extends Error {}

/**
 * Fits the folds one after another, yielding to the event loop between them: a fold on a large dataset takes
 * seconds of synchronous arithmetic, and a child process must still hear cancel and send its heartbeat.
 */
export async function crossValidateProbe(input: ProbeInput): Promise<CrossValidatedProbe> {
  const { features, dimension: d, labels, classes } = input;
  const k = classes.length;
  const rows = [...labels.keys()].filter((i) => labels[i] >= 0);
  const withSubject = rows.filter((i) => input.subjects[i] !== undefined).length;
  // Subjects as the unit only when (nearly) every image has one; a few without are their own units.
  const unit: 'subject' | 'image' = withSubject > 0 && withSubject >= rows.length * 0.5 ? 'subject' : 'image';
  const unitOf = (i: number) =>
    unit === 'subject' && input.subjects[i] !== undefined ? `s:${input.subjects[i]}` : `i:${i}`;
  const unitRows = new Map<string, number[]>();
  for (const i of rows) {
    const key = unitOf(i);
    if (!unitRows.has(key)) unitRows.set(key, []);
    unitRows.get(key)!.push(i);
  }
  const units = [...unitRows.keys()];
  if (units.length < 2)
    throw new TooFewUnitsError(`it needs at least two ${unit}s with a value to hold one out; there is ${units.length}`);
  const folds = Math.min(input.folds ?? DEFAULT_FOLDS, units.length);
  const foldOfUnit = stratifiedFolds(
    units,
    (u) =>
      majority(
        unitRows.get(u)!.map((i) => labels[i]),
        k,
      ),
    folds,
    input.seed,
  );

  const predicted = new Int32Array(labels.length).fill(-1);
  for (let f = 0; f < folds; f++) {
    input.signal?.throwIfAborted();
    const train = rows.filter((i) => foldOfUnit.get(unitOf(i)) !== f);
    const test = rows.filter((i) => foldOfUnit.get(unitOf(i)) === f);
    const model = fitLogistic(
      gather(features, train, d),
      train.map((i) => labels[i]),
      train.length,
      d,
      input.logistic,
    );
    const probabilities = predictProbabilities(model, gather(features, test, d), test.length, k);
    test.forEach((row, t) => (predicted[row] = argmaxRow(probabilities, t, k)));
    input.onFold?.(f + 1, folds);
    await new Promise((next) => setImmediate(next));
  }

  // Per unit, its images' confusion counts: the bootstrap resamples these.
  const unitConfusion = units.map((u) => {
    const counts = new Float64Array(k * k);
    for (const i of unitRows.get(u)!) counts[labels[i] * k + predicted[i]]++;
    return counts;
  });
  const total = sumCounts(unitConfusion, k);
  const unitsPerClass = new Array<number>(k).fill(0);
  for (const u of units) for (const c of new Set(unitRows.get(u)!.map((i) => labels[i]))) unitsPerClass[c]++;
  const perClass: ClassRecall[] = classes.map((className, c) => {
    const support = rowSum(total, c, k);
    return { className, recall: support > 0 ? total[c * k + c] / support : null, support, units: unitsPerClass[c] };
  });
  const correct = classes.reduce((sum, _, c) => sum + total[c * k + c], 0);
  return {
    classes,
    images: rows.length,
    unit,
    units: units.length,
    folds,
    balancedAccuracy: balancedAccuracy(total, k),
    accuracy: correct / rows.length,
    chance: 1 / k,
    interval: bootstrapInterval(unitConfusion, k, input.resamples ?? DEFAULT_RESAMPLES, input.seed),
    perClass,
    confusion: classes.map((_, r) => classes.map((__, c) => total[r * k + c])),
    singleUnitClasses: classes.filter((_, c) => unitsPerClass[c] === 1),
  };
}

/**
 * Units dealt to folds like cards, class by class after a seeded shuffle, so every fold holds units of every
 * class it can (scikit-learn's StratifiedGroupKFold aims at the same; this is its simplest form).
 */
function stratifiedFolds(
  units: string[],
  classOf: (unit: string) => number,
  folds: number,
  seed: number,
): Map<string, number> {
  const shuffled = createRng(seed)
    .fork('probe/folds')
    .shuffle([...units].sort());
  const byClass = [...shuffled].sort((a, b) => classOf(a) - classOf(b));
  return new Map(byClass.map((unit, i) => [unit, i % folds]));
}

function majority(values: number[], k: number): number {
  const counts = new Array<number>(k).fill(0);
  for (const v of values) counts[v]++;
  return counts.indexOf(Math.max(...counts));
}

function gather(features: Float32Array, rows: number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((row, i) => out.set(features.subarray(row * d, (row + 1) * d), i * d));
  return out;
}

function argmaxRow(values: Float64Array, row: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (values[row * k + c] > values[row * k + best]) best = c;
  return best;
}

function rowSum(counts: Float64Array, r: number, k: number): number {
  let sum = 0;
  for (let c = 0; c < k; c++) sum += counts[r * k + c];
  return sum;
}

function sumCounts(parts: Float64Array[], k: number): Float64Array {
  const total = new Float64Array(k * k);
  for (const part of parts) for (let j = 0; j < k * k; j++) total[j] += part[j];
  return total;
}

/** Mean recall over the classes present (a resample may miss one). */
export function balancedAccuracy(counts: Float64Array, k: number): number {
  let sum = 0;
  let present = 0;
  for (let c = 0; c < k; c++) {
    const support = rowSum(counts, c, k);
    if (support === 0) continue;
    sum += counts[c * k + c] / support;
    present++;
  }
  return present === 0 ? 0 : sum / present;
}

function bootstrapInterval(
  unitConfusion: Float64Array[],
  k: number,
  resamples: number,
  seed: number,
): CrossValidatedProbe['interval'] {
  const rng = createRng(seed).fork('probe/bootstrap');
  const values = new Float64Array(resamples);
  const counts = new Float64Array(k * k);
  for (let b = 0; b < resamples; b++) {
    counts.fill(0);
    for (let draw = 0; draw < unitConfusion.length; draw++) {
      const part = unitConfusion[rng.int(unitConfusion.length)];
      for (let j = 0; j < k * k; j++) counts[j] += part[j];
    }
    values[b] = balancedAccuracy(counts, k);
  }
  values.sort();
  const at = (q: number) => values[Math.min(resamples - 1, Math.max(0, Math.floor(q * resamples)))];
  const tail = (1 - INTERVAL_LEVEL) / 2;
  return { level: INTERVAL_LEVEL, lower: at(tail), upper: at(1 - tail), resamples };
}
