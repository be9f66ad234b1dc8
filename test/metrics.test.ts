import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CALIBRATION_BIN_COUNT,
  MAX_ROC_CURVE_POINTS,
  computeClassificationMetrics,
  rocCurve,
  type ClassificationInput,
  type ClassificationMetrics,
} from '../src/core/metrics.js';
import { createRng } from '../src/core/random.js';
import { PYTHON, referenceUnavailable } from './helpers/python.js';

const TOLERANCE = 1e-9;

function assertClose(actual: number | null, expected: number | null, what: string): void {
  if (expected === null || actual === null) {
    assert.equal(actual, expected, what);
    return;
  }
  assert.ok(
    Math.abs(actual - expected) <= TOLERANCE,
    `${what}: got ${actual}, expected ${expected} (difference ${Math.abs(actual - expected)})`,
  );
}

function assertAllClose(actual: (number | null)[], expected: (number | null)[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((value, i) => assertClose(value, expected[i], `${what}[${i}]`));
}

/** NaN and ±Infinity do not survive JSON, so a lossless round trip proves every number is finite or null. */
function assertJsonSafe(metrics: ClassificationMetrics): void {
  assert.deepEqual(JSON.parse(JSON.stringify(metrics)), metrics);
}

// ---------------------------------------------------------------------------------------------------------
// (a) Hand-checked fixtures
// ---------------------------------------------------------------------------------------------------------

test('binary fixture: every metric matches the hand computation', () => {
  // Classes [hem, all]: 'all' is the positive class. p(all) per sample, true class in the comment:
  //   0.9 (all)  0.8 (all)  0.5 (all)  0.7 (all)  0.5 (hem)  0.1 (hem)
  // argmax, ties → lowest index (hem): all, all, hem, all, hem, hem
  const metrics = computeClassificationMetrics({
    classes: ['hem', 'all'],
    yTrue: [1, 1, 1, 1, 0, 0],
    probabilities: [0.9, 0.8, 0.5, 0.7, 0.5, 0.1].map((p) => [1 - p, p]),
  });
  assertJsonSafe(metrics);
  assert.equal(metrics.positiveClass, 'all');
  assert.equal(metrics.sampleCount, 6);
  // hem: 2 predicted hem, 0 all. all: 1 predicted hem (the 0.5 tie), 3 all.
  assert.deepEqual(metrics.confusionMatrix.counts, [
    [2, 0],
    [1, 3],
  ]);
  assert.deepEqual(metrics.confusionMatrix.rowNormalized, [
    [1, 0],
    [0.25, 0.75],
  ]);
  assertClose(metrics.accuracy, 5 / 6, 'accuracy');
  assertClose(metrics.balancedAccuracy, (1 + 3 / 4) / 2, 'balanced accuracy'); // 0.875
  const [hem, all] = metrics.perClass;
  // hem: TP 2, predicted 3, support 2 → P 2/3, R 1, F1 = 2·(2/3)/(5/3) = 0.8
  assertClose(hem.precision, 2 / 3, 'hem precision');
  assertClose(hem.recall, 1, 'hem recall');
  assertClose(hem.f1, 0.8, 'hem F1');
  assert.equal(hem.support, 2);
  // all: TP 3, predicted 3, support 4 → P 1, R 3/4, F1 = 2·0.75/1.75 = 6/7
  assertClose(all.precision, 1, 'all precision');
  assertClose(all.recall, 0.75, 'all recall');
  assertClose(all.f1, 6 / 7, 'all F1');
  assert.equal(all.support, 4);
  assertClose(metrics.macroF1, (0.8 + 6 / 7) / 2, 'macro F1'); // 29/35 ≈ 0.8286
  assertClose(metrics.weightedF1, (2 * 0.8 + 4 * (6 / 7)) / 6, 'weighted F1'); // 88/105 ≈ 0.8381
  // Positive/negative pairs (4 × 2 = 8): 0.9, 0.8 and 0.7 beat both negatives (6); 0.5 beats 0.1 and ties
  // 0.5 (1.5) → 7.5 / 8. The class-wise AUC of hem ranks the same pairs in reverse, so it is equal.
  assertClose(metrics.rocAuc, 0.9375, 'ROC AUC');
  assertClose(hem.rocAuc, 0.9375, 'hem AUC');
  assertClose(metrics.sensitivity, 0.75, 'sensitivity'); // 3 of 4 ALL found
  assertClose(metrics.specificity, 1, 'specificity'); // both HEM called HEM
  // Probability given to the true class: 0.9, 0.8, 0.5, 0.7, 0.5, 0.9
  assertClose(
    metrics.logLoss,
    -(Math.log(0.9) * 2 + Math.log(0.8) + Math.log(0.5) * 2 + Math.log(0.7)) / 6,
    'log loss',
  ); // ≈ 0.3650
  // Confidence (max prob) and correctness: 0.9 ✓, 0.8 ✓, 0.5 ✗, 0.7 ✓, 0.5 ✓, 0.9 ✓.
  // Bins are (b/15, (b+1)/15]:
  //   0.5 → bin 7 (2 samples, acc 0.5, conf 0.5, gap 0); 0.7 → bin 10 (gap 0.3);
  //   0.8 → bin 11, sitting exactly on its upper edge 12/15 (gap 0.2); 0.9 → bin 13 (2 samples, gap 0.1)
  //   ECE = (2·0 + 0.3 + 0.2 + 2·0.1) / 6 = 0.7 / 6 ≈ 0.1167
  assertClose(metrics.expectedCalibrationError, 0.7 / 6, 'ECE');
  assert.equal(metrics.reliability.length, CALIBRATION_BIN_COUNT);
  assert.deepEqual(
    metrics.reliability.map((bin) => bin.count),
    [0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 1, 0, 2, 0],
  );
  assert.equal(metrics.reliability[0].meanConfidence, null);
  assert.equal(metrics.reliability[0].accuracy, null);
  assertClose(metrics.reliability[7].accuracy, 0.5, 'bin 7 accuracy');
  assertClose(metrics.reliability[13].meanConfidence, 0.9, 'bin 13 confidence');
  // Thresholds on p(all), descending: ∞ → (0,0); 0.9 → 1 TP; 0.8 → 2; 0.7 → 3; 0.5 → 4 TP + 1 FP;
  // 0.1 → everything.
  assert.deepEqual(metrics.rocCurve, {
    positiveClass: 'all',
    fpr: [0, 0, 0, 0, 0.5, 1],
    tpr: [0, 0.25, 0.5, 0.75, 1, 1],
    thresholds: [null, 0.9, 0.8, 0.7, 0.5, 0.1],
    fullLength: 6,
  });
});

test('three-class fixture: every metric matches the hand computation', () => {
  // Rows are [p(ALL), p(HEM), p(Other)]; argmax with ties → lowest index.
  const input: ClassificationInput = {
    classes: ['ALL', 'HEM', 'Other'],
    yTrue: [0, 0, 1, 1, 2, 2],
    probabilities: [
      [0.7, 0.2, 0.1], // ALL   → ALL ✓ (conf 0.7)
      [0.4, 0.4, 0.2], // ALL   → ALL ✓ by the tie rule (conf 0.4)
      [0.3, 0.6, 0.1], // HEM   → HEM ✓ (conf 0.6)
      [0.5, 0.3, 0.2], // HEM   → ALL ✗ (conf 0.5)
      [0.2, 0.3, 0.5], // Other → Other ✓ (conf 0.5)
      [0.1, 0.6, 0.3], // Other → HEM ✗ (conf 0.6)
    ],
  };
  const metrics = computeClassificationMetrics(input);
  assertJsonSafe(metrics);
  assert.equal(metrics.positiveClass, 'ALL'); // found by name, case-insensitively
  assert.deepEqual(metrics.confusionMatrix.counts, [
    [2, 0, 0],
    [1, 1, 0],
    [0, 1, 1],
  ]);
  assert.deepEqual(metrics.confusionMatrix.rowNormalized, [
    [1, 0, 0],
    [0.5, 0.5, 0],
    [0, 0.5, 0.5],
  ]);
  assertClose(metrics.accuracy, 4 / 6, 'accuracy');
  assertClose(metrics.balancedAccuracy, (1 + 0.5 + 0.5) / 3, 'balanced accuracy');
  // Columns hold 3, 2, 1 predictions. ALL: P 2/3, R 1, F1 0.8. HEM: P 1/2, R 1/2, F1 0.5.
  // Other: P 1, R 1/2, F1 2·0.5/1.5 = 2/3.
  assertAllClose(
    metrics.perClass.map((c) => c.precision),
    [2 / 3, 0.5, 1],
    'precision',
  );
  assertAllClose(
    metrics.perClass.map((c) => c.recall),
    [1, 0.5, 0.5],
    'recall',
  );
  assertAllClose(
    metrics.perClass.map((c) => c.f1),
    [0.8, 0.5, 2 / 3],
    'F1',
  );
  assert.deepEqual(
    metrics.perClass.map((c) => c.support),
    [2, 2, 2],
  );
  assertClose(metrics.macroF1, (0.8 + 0.5 + 2 / 3) / 3, 'macro F1'); // 59/90 ≈ 0.6556
  assertClose(metrics.weightedF1, (0.8 + 0.5 + 2 / 3) / 3, 'weighted F1'); // equal supports
  // One-vs-rest AUCs, 2 positives × 4 negatives = 8 pairs each:
  //   ALL   p0: positives 0.7, 0.4 vs 0.3 0.5 0.2 0.1 → 4 + 3 = 7 → 0.875
  //   HEM   p1: positives 0.6, 0.3 vs 0.2 0.4 0.3 0.6 → 0.6 beats three and ties one (3.5),
  //             0.3 beats 0.2 and ties 0.3 (1.5) → 5/8 = 0.625
  //   Other p2: positives 0.5, 0.3 vs 0.1 0.2 0.1 0.2 → 8/8 = 1
  assertAllClose(
    metrics.perClass.map((c) => c.rocAuc),
    [0.875, 0.625, 1],
    'one-vs-rest AUC',
  );
  assertClose(metrics.rocAuc, (0.875 + 0.625 + 1) / 3, 'macro OvR AUC');
  // ALL vs rest: TP 2, FN 0, FP 1 (a HEM called ALL), TN 3.
  assertClose(metrics.sensitivity, 1, 'sensitivity');
  assertClose(metrics.specificity, 0.75, 'specificity');
  assertClose(
    metrics.logLoss,
    -(Math.log(0.7) + Math.log(0.4) + Math.log(0.6) + Math.log(0.3) + Math.log(0.5) + Math.log(0.3)) / 6,
    'log loss',
  );
  // Bins: 0.4 sits on 6/15 → bin 5 (acc 1, gap 0.6); 0.5 ×2 → bin 7 (acc ½, gap 0);
  //       0.6 ×2 sits on 9/15 → bin 8 (acc ½, gap 0.1); 0.7 → bin 10 (acc 1, gap 0.3)
  //   ECE = (0.6 + 0 + 2·0.1 + 0.3) / 6 = 1.1 / 6 ≈ 0.1833
  assertClose(metrics.expectedCalibrationError, 1.1 / 6, 'ECE');
  assert.deepEqual(
    metrics.reliability.map((bin) => bin.count),
    [0, 0, 0, 0, 0, 1, 0, 2, 2, 0, 1, 0, 0, 0, 0],
  );
  // With 'Other' as positive: TP 1, FN 1, FP 0, TN 4.
  const other = computeClassificationMetrics({ ...input, positiveClass: 'Other' });
  assert.equal(other.positiveClass, 'Other');
  assertClose(other.sensitivity, 0.5, 'Other sensitivity');
  assertClose(other.specificity, 1, 'Other specificity');
  assert.equal(other.rocCurve?.positiveClass, 'Other');
  assert.deepEqual(other.rocCurve?.tpr.at(-1), 1);
});

test('undefined quantities are null and zero divisions are 0', () => {
  // Three classes, none named 'all', and no HEM sample: no positive class, and the OvR AUC of class b
  // (and hence the macro AUC) is undefined, as sklearn's roc_auc_score raises.
  const metrics = computeClassificationMetrics({
    classes: ['a', 'b', 'c'],
    yTrue: [0, 0, 2, 2],
    probabilities: [
      [0.8, 0.1, 0.1],
      [0.2, 0.7, 0.1],
      [0.1, 0.1, 0.8],
      [0.3, 0.3, 0.4],
    ],
  });
  assertJsonSafe(metrics);
  assert.equal(metrics.positiveClass, null);
  assert.equal(metrics.sensitivity, null);
  assert.equal(metrics.specificity, null);
  assert.equal(metrics.rocCurve, null);
  assert.equal(metrics.rocAuc, null);
  assert.equal(metrics.perClass[1].rocAuc, null);
  // b: predicted once, never true → precision 0/1, recall 0/0 → 0, F1 0; its row normalises to zeros.
  assert.deepEqual(metrics.perClass[1], {
    className: 'b',
    precision: 0,
    recall: 0,
    f1: 0,
    support: 0,
    rocAuc: null,
  });
  assert.deepEqual(metrics.confusionMatrix.rowNormalized[1], [0, 0, 0]);
  // Balanced accuracy skips b (no samples): (1/2 + 1) / 2. Macro F1 keeps it as a 0.
  assertClose(metrics.balancedAccuracy, 0.75, 'balanced accuracy');
  assertClose(metrics.macroF1, (2 / 3 + 0 + 1) / 3, 'macro F1');
});

test('binary default positive class is the second one when none is named ALL', () => {
  const metrics = computeClassificationMetrics({
    classes: ['normal', 'blast'],
    yTrue: [0, 1],
    probabilities: [
      [0.9, 0.1],
      [0.2, 0.8],
    ],
  });
  assert.equal(metrics.positiveClass, 'blast');
});

test('the displayed ROC curve is downsampled to at most 200 points, keeping both ends', () => {
  const n = 1000;
  const yTrue = Array.from({ length: n }, (_, i) => i % 2);
  const scores = Array.from({ length: n }, (_, i) => (i + (i % 2) * 300) / (n + 300));
  const metrics = computeClassificationMetrics({
    classes: ['hem', 'all'],
    yTrue,
    probabilities: scores.map((p) => [1 - p, p]),
  });
  const curve = metrics.rocCurve!;
  assert.equal(curve.fullLength, n + 1);
  assert.equal(curve.fpr.length, MAX_ROC_CURVE_POINTS);
  assert.equal(curve.tpr.length, MAX_ROC_CURVE_POINTS);
  assert.equal(curve.thresholds.length, MAX_ROC_CURVE_POINTS);
  assert.deepEqual([curve.fpr[0], curve.tpr[0], curve.thresholds[0]], [0, 0, null]);
  assert.deepEqual([curve.fpr.at(-1), curve.tpr.at(-1)], [1, 1]);
  for (let i = 1; i < curve.fpr.length; i++) {
    assert.ok(curve.fpr[i] >= curve.fpr[i - 1] && curve.tpr[i] >= curve.tpr[i - 1], 'monotone');
  }
});

test('rejects inputs that cannot be evaluated', () => {
  const valid: ClassificationInput = {
    classes: ['hem', 'all'],
    yTrue: [0, 1],
    probabilities: [
      [1, 0],
      [0, 1],
    ],
  };
  const cases: [string, Partial<ClassificationInput>, RegExp][] = [
    ['one class', { classes: ['all'], probabilities: [[1], [1]] }, /two classes/],
    ['no samples', { yTrue: [], probabilities: [] }, /No samples/],
    ['length mismatch', { yTrue: [0] }, /1 labels but 2/],
    ['label out of range', { yTrue: [0, 2] }, /label 2/],
    ['short row', { probabilities: [[1, 0], [1]] }, /1 probabilities for 2/],
    [
      'logits',
      {
        probabilities: [
          [2.1, 0.3],
          [0, 1],
        ],
      },
      /logits/,
    ],
    [
      'negative',
      {
        probabilities: [
          [1.2, -0.2],
          [0, 1],
        ],
      },
      /non-negative/,
    ],
    [
      'NaN',
      {
        probabilities: [
          [NaN, 1],
          [0, 1],
        ],
      },
      /finite/,
    ],
    ['unknown positive class', { positiveClass: 'ALL' }, /not one of the classes/],
  ];
  for (const [what, change, message] of cases) {
    assert.throws(() => computeClassificationMetrics({ ...valid, ...change }), message, what);
  }
});

// ---------------------------------------------------------------------------------------------------------
// (b) Parity with scikit-learn on seeded random cases
// ---------------------------------------------------------------------------------------------------------

function softmax(logits: number[]): number[] {
  const top = Math.max(...logits);
  const exps = logits.map((z) => Math.exp(z - top));
  const total = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / total);
}

/** Samples whose true class gets a logit bonus of `separation`, plus uniform noise: a mediocre classifier. */
function noisyClassifier(
  random: () => number,
  classPrior: number[],
  sampleCount: number,
  separation: number,
): { yTrue: number[]; probabilities: number[][] } {
  const yTrue = Array.from({ length: sampleCount }, () => {
    let u = random();
    const index = classPrior.findIndex((p) => (u -= p) < 0);
    return index < 0 ? classPrior.length - 1 : index;
  });
  const probabilities = yTrue.map((y) =>
    softmax(classPrior.map((_, c) => (c === y ? separation : 0) + 4 * (random() - 0.5))),
  );
  return { yTrue, probabilities };
}

interface ParityCase {
  name: string;
  input: ClassificationInput;
}

function parityCases(): ParityCase[] {
  const rng = createRng('metrics-parity');
  const random = () => rng.next();
  const binary = ['hem', 'all'];
  const imbalanced = noisyClassifier(random, [0.9, 0.1], 400, 1.5);
  // Scores on a 0.1 grid: many tied scores for the AUC and the ROC curve, and exact 0.5/0.5 argmax ties.
  const coarse = noisyClassifier(random, [0.5, 0.5], 200, 1);
  const tied = coarse.probabilities.map((row) => {
    const p = Math.round(row[1] * 10) / 10;
    return [1 - p, p];
  });
  // Class c never wins the argmax (p(c) ≤ 0.1 while max(a, b) ≥ 0.45) although it has samples.
  const neverPredictedLabels = noisyClassifier(random, [0.4, 0.4, 0.2], 150, 0).yTrue;
  const neverPredicted = neverPredictedLabels.map(() => {
    const c = 0.1 * random();
    const a = (1 - c) * random();
    return [a, 1 - c - a, c];
  });
  const threeClass = noisyClassifier(random, [0.5, 0.3, 0.2], 300, 2);
  const noOther = noisyClassifier(random, [0.6, 0.4], 100, 1);
  const perfectLabels = Array.from({ length: 50 }, () => (random() < 0.3 ? 1 : 0));
  const manyPoints = noisyClassifier(random, [0.7, 0.3], 1000, 1);
  return [
    { name: 'binary, 10% positive', input: { classes: binary, ...imbalanced } },
    { name: 'binary, tied scores', input: { classes: binary, yTrue: coarse.yTrue, probabilities: tied } },
    {
      name: 'three classes, one never predicted',
      input: {
        classes: ['a', 'b', 'c'],
        yTrue: neverPredictedLabels,
        probabilities: neverPredicted,
        positiveClass: 'c',
      },
    },
    { name: 'three classes', input: { classes: ['ALL', 'HEM', 'other'], ...threeClass } },
    {
      name: 'three classes, one absent from the labels',
      input: {
        classes: ['x', 'y', 'z'],
        yTrue: noOther.yTrue,
        // Some probability mass on z, which has no samples, so it is sometimes predicted.
        probabilities: noOther.probabilities.map(([p, q]) => {
          const z = 0.5 * random();
          return [p * (1 - z), q * (1 - z), z];
        }),
      },
    },
    {
      name: 'perfect classifier',
      input: { classes: binary, yTrue: perfectLabels, probabilities: perfectLabels.map((y) => (y ? [0, 1] : [1, 0])) },
    },
    {
      name: 'binary, only one class in the labels',
      input: {
        classes: binary,
        yTrue: [1, 1, 1, 1],
        probabilities: [
          [0.2, 0.8],
          [0.6, 0.4],
          [0.5, 0.5],
          [0.1, 0.9],
        ],
      },
    },
    { name: 'binary, 1000 samples (downsampled curve)', input: { classes: binary, ...manyPoints } },
  ];
}

/**
 * Computes the same metrics with scikit-learn. ECE has no sklearn function; it is recomputed here with numpy
 * from its definition, with the same bin edges k/15, as an independent implementation.
 */
const SKLEARN_SCRIPT = String.raw`
import json, sys, warnings
import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, log_loss,
                             precision_recall_fscore_support, recall_score, roc_auc_score, roc_curve)

warnings.simplefilter("ignore")  # zero-division and absent-class warnings are expected in these cases

def auc_or_none(y, scores, **kwargs):
    try:
        return float(roc_auc_score(y, scores, **kwargs))
    except ValueError:  # "Only one class present in y_true": undefined
        return None

def floats(a):
    return [float(x) for x in a]

results = []
for case in json.load(open(sys.argv[1])):
    y = np.array(case["yTrue"])
    P = np.array(case["probabilities"], dtype=np.float64)
    K = P.shape[1]
    labels = list(range(K))
    pos = case["positiveIndex"]
    pred = P.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    if K == 2:
        auc = auc_or_none(y == pos, P[:, pos])
    else:
        auc = auc_or_none(y, P, multi_class="ovr", average="macro", labels=labels)
    r = {
        "counts": confusion_matrix(y, pred, labels=labels).tolist(),
        "rowNormalized": confusion_matrix(y, pred, labels=labels, normalize="true").tolist(),
        "accuracy": float(accuracy_score(y, pred)),
        "balancedAccuracy": float(balanced_accuracy_score(y, pred)),
        "precision": floats(precision), "recall": floats(recall), "f1": floats(f1), "support": support.tolist(),
        "classAuc": [auc_or_none(y == k, P[:, k]) for k in labels],
        "macroF1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "weightedF1": float(f1_score(y, pred, labels=labels, average="weighted", zero_division=0)),
        "rocAuc": auc,
        "logLoss": float(log_loss(y, P, labels=labels)),
        "sensitivity": None, "specificity": None, "roc": None,
    }
    if pos is not None:
        r["sensitivity"] = float(recall_score((y == pos).astype(int), (pred == pos).astype(int), zero_division=0))
        r["specificity"] = float(recall_score((y != pos).astype(int), (pred != pos).astype(int), zero_division=0))
        if 0 < (y == pos).sum() < len(y):
            fpr, tpr, thresholds = roc_curve(y == pos, P[:, pos], drop_intermediate=False)
            r["roc"] = {"fpr": floats(fpr), "tpr": floats(tpr), "thresholds": floats(thresholds[1:])}
    confidence = P.max(axis=1)
    edges = np.arange(16) / 15
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, 14)  # bin b holds (edges[b], edges[b+1]]
    correct = pred == y
    r["binCounts"] = np.bincount(bins, minlength=15).tolist()
    r["ece"] = float(sum(abs(correct[bins == b].mean() - confidence[bins == b].mean()) * (bins == b).sum()
                         for b in range(15) if (bins == b).any()) / len(y))
    results.append(r)
json.dump(results, sys.stdout)
`;

interface SklearnResult {
  counts: number[][];
  rowNormalized: number[][];
  accuracy: number;
  balancedAccuracy: number;
  precision: number[];
  recall: number[];
  f1: number[];
  support: number[];
  classAuc: (number | null)[];
  macroF1: number;
  weightedF1: number;
  rocAuc: number | null;
  logLoss: number;
  sensitivity: number | null;
  specificity: number | null;
  roc: { fpr: number[]; tpr: number[]; thresholds: number[] } | null;
  binCounts: number[];
  ece: number;
}

/** Why sklearn parity cannot be checked on this machine, or null when it can. */
function sklearnUnavailableReason(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import sklearn, numpy'], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error) return `${PYTHON} could not be run (${probe.error.message})`;
  if (probe.status !== 0)
    return `${PYTHON} cannot import scikit-learn/numpy: ${probe.stderr.trim().split('\n').at(-1)}`;
  return null;
}

function runSklearn(cases: ParityCase[]): SklearnResult[] {
  const dir = mkdtempSync(join(tmpdir(), 'metrics-parity-'));
  try {
    const file = join(dir, 'cases.json');
    const payload = cases.map(({ input }) => {
      // sklearn is told which class the metrics module chose, so the default rule is tested by the fixtures.
      const { positiveClass } = computeClassificationMetrics(input);
      return {
        yTrue: input.yTrue,
        probabilities: input.probabilities,
        positiveIndex: positiveClass === null ? null : input.classes.indexOf(positiveClass),
      };
    });
    writeFileSync(file, JSON.stringify(payload));
    const run = spawnSync(PYTHON, ['-c', SKLEARN_SCRIPT, file], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.status, 0, `sklearn script failed: ${run.error?.message ?? run.stderr}`);
    return JSON.parse(run.stdout) as SklearnResult[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function assertMatchesSklearn(ours: ClassificationMetrics, input: ClassificationInput, ref: SklearnResult): void {
  assertJsonSafe(ours);
  assert.deepEqual(ours.confusionMatrix.counts, ref.counts, 'confusion counts');
  ours.confusionMatrix.rowNormalized.forEach((row, t) => assertAllClose(row, ref.rowNormalized[t], `row ${t}`));
  assertClose(ours.accuracy, ref.accuracy, 'accuracy');
  assertClose(ours.balancedAccuracy, ref.balancedAccuracy, 'balanced accuracy');
  assertAllClose(
    ours.perClass.map((c) => c.precision),
    ref.precision,
    'precision',
  );
  assertAllClose(
    ours.perClass.map((c) => c.recall),
    ref.recall,
    'recall',
  );
  assertAllClose(
    ours.perClass.map((c) => c.f1),
    ref.f1,
    'F1',
  );
  assert.deepEqual(
    ours.perClass.map((c) => c.support),
    ref.support,
    'support',
  );
  assertAllClose(
    ours.perClass.map((c) => c.rocAuc),
    ref.classAuc,
    'one-vs-rest AUC',
  );
  assertClose(ours.macroF1, ref.macroF1, 'macro F1');
  assertClose(ours.weightedF1, ref.weightedF1, 'weighted F1');
  assertClose(ours.rocAuc, ref.rocAuc, 'ROC AUC');
  assertClose(ours.logLoss, ref.logLoss, 'log loss');
  assertClose(ours.sensitivity, ref.sensitivity, 'sensitivity');
  assertClose(ours.specificity, ref.specificity, 'specificity');
  assert.deepEqual(
    ours.reliability.map((bin) => bin.count),
    ref.binCounts,
    'calibration bin counts',
  );
  assertClose(ours.expectedCalibrationError, ref.ece, 'ECE');

  // The full curve must match sklearn point for point; the displayed one must be a subset of it.
  assert.equal(ours.rocCurve === null, ref.roc === null, 'ROC curve presence');
  if (ours.rocCurve === null || ref.roc === null) return;
  const positive = input.classes.indexOf(ours.rocCurve.positiveClass);
  const full = rocCurve(
    input.yTrue.map((y) => y === positive),
    input.probabilities.map((row) => row[positive]),
  )!;
  assertAllClose(full.fpr, ref.roc.fpr, 'ROC fpr');
  assertAllClose(full.tpr, ref.roc.tpr, 'ROC tpr');
  assert.equal(full.thresholds[0], null, 'first threshold is +∞');
  assertAllClose(full.thresholds.slice(1), ref.roc.thresholds, 'ROC thresholds');
  assert.equal(ours.rocCurve.fullLength, full.fpr.length);
  assert.ok(ours.rocCurve.fpr.length <= MAX_ROC_CURVE_POINTS);
  const { fpr: shownFpr, tpr: shownTpr } = ours.rocCurve;
  let cursor = 0;
  shownFpr.forEach((fpr, i) => {
    const isShownPoint = (k: number) => full.fpr[k] === fpr && full.tpr[k] === shownTpr[i];
    while (cursor < full.fpr.length && !isShownPoint(cursor)) cursor++;
    assert.ok(cursor < full.fpr.length, `displayed ROC point ${i} is on the full curve, in order`);
  });
}

test('matches scikit-learn on seeded random cases', async (t: TestContext) => {
  const unavailable = sklearnUnavailableReason();
  if (unavailable) {
    referenceUnavailable(t, `scikit-learn parity not checked: ${unavailable}`);
    return;
  }
  const cases = parityCases();
  const references = runSklearn(cases);
  for (const [i, { name, input }] of cases.entries()) {
    await t.test(name, () => assertMatchesSklearn(computeClassificationMetrics(input), input, references[i]));
  }
});
