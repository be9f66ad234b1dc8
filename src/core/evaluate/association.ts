/**
 * Does a model's output say anything about the true label? For a model whose outputs are not the dataset's
 * classes (the notebook's fold model answers fold_0/1/2 on an all/hem dataset) accuracy is undefined, but
 * the question still has an answer: cross-tabulate output × true label and measure the association —
 * Cramér's V and mutual information, with the chi-square test's p-value — then say it in plain words.
 * Pure (no Node modules), so the results view can use the same wording.
 */
import { chiSquareIndependence } from '../audit/stats.js';

export interface OutputAssociation {
  /** Row labels: the model's output names. */
  outputs: string[];
  /** Column labels: the dataset's classes. */
  classes: string[];
  /** `table[output][class]`: images the model gave that output whose true label is that class. */
  table: number[][];
  n: number;
  chiSquare: number;
  degreesOfFreedom: number;
  /** P(χ² ≥ observed) if output and label were independent. */
  pValue: number;
  /** 0 = the output says nothing about the label, 1 = it determines it. */
  cramersV: number;
  /** I(output; label) in bits, from the observed frequencies. */
  mutualInformationBits: number;
  /** The label's entropy in bits: the most the output could tell. */
  labelEntropyBits: number;
  /**
   * `none`: not significant, or V below 0.1 (Cohen's small effect); `weak`: significant but V below 0.3 —
   * the outputs lean towards a label without telling it; `strong`: V 0.3 or more (Cohen's medium effect).
   */
  level: 'none' | 'weak' | 'strong';
  /** The outputs carry diagnosis-grade information: `level` is `strong`. */
  informative: boolean;
  verdict: string;
}

/**
 * Cohen's conventions for V with one degree of freedom: 0.1 is a small effect, 0.3 a medium one. Below 0.1
 * the outputs say nothing worth naming, even when a large dataset makes it significant; below 0.3 they
 * lean towards a label (an undertrained model keys on whatever dominates the pixels) but do not tell it.
 */
export const MIN_WEAK_V = 0.1;
export const MIN_STRONG_V = 0.3;
export const SIGNIFICANCE = 0.01;

/** Cross-tabulates `outputOf[i]` (index into `outputs`) against `trueOf[i]` (index into `classes`). */
export function contingencyTable(
  outputOf: readonly number[],
  trueOf: readonly number[],
  outputCount: number,
  classCount: number,
): number[][] {
  const table = Array.from({ length: outputCount }, () => new Array<number>(classCount).fill(0));
  outputOf.forEach((output, i) => table[output][trueOf[i]]++);
  return table;
}

/** I(X; Y) in bits of a contingency table's empirical joint distribution. */
export function mutualInformationBits(table: readonly (readonly number[])[]): number {
  const n = table.flat().reduce((a, b) => a + b, 0);
  if (n === 0) return 0;
  const rows = table.map((row) => row.reduce((a, b) => a + b, 0));
  const columns = table[0]?.map((_, j) => table.reduce((sum, row) => sum + row[j], 0)) ?? [];
  let bits = 0;
  table.forEach((row, i) =>
    row.forEach((count, j) => {
      if (count > 0) bits += (count / n) * Math.log2((count * n) / (rows[i] * columns[j]));
    }),
  );
  return Math.max(0, bits);
}

function entropyBits(counts: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((h, c) => (c > 0 ? h - (c / n) * Math.log2(c / n) : h), 0);
}

export function associationLevel(test: { pValue: number; cramersV: number }): OutputAssociation['level'] {
  if (test.pValue >= SIGNIFICANCE || test.cramersV < MIN_WEAK_V) return 'none';
  return test.cramersV < MIN_STRONG_V ? 'weak' : 'strong';
}

/** The association of outputs with labels, with its verdict. */
export function outputAssociation(
  outputs: readonly string[],
  classes: readonly string[],
  table: number[][],
): OutputAssociation {
  const test = chiSquareIndependence(table);
  const level = associationLevel(test);
  const labelCounts = classes.map((_, j) => table.reduce((sum, row) => sum + row[j], 0));
  const association = {
    outputs: [...outputs],
    classes: [...classes],
    table,
    n: test.n,
    chiSquare: test.chiSquare,
    degreesOfFreedom: test.degreesOfFreedom,
    pValue: test.pValue,
    cramersV: test.cramersV,
    mutualInformationBits: mutualInformationBits(table),
    labelEntropyBits: entropyBits(labelCounts),
    level,
    informative: level === 'strong',
  };
  return { ...association, verdict: associationVerdict(association) };
}

/** "this model's outputs carry no information about all vs hem (Cramér's V 0.03, p = 0.41)". */
export function associationVerdict(a: Omit<OutputAssociation, 'verdict'>): string {
  const labels = a.classes.join(' vs ');
  const used = a.outputs.filter((_, i) => a.table[i].some((count) => count > 0));
  const figures = `Cramér's V ${a.cramersV.toFixed(2)}, mutual information ${a.mutualInformationBits.toFixed(3)} of ${a.labelEntropyBits.toFixed(3)} bits, p = ${formatP(a.pValue)}, ${a.n} images`;
  if (used.length <= 1) {
    return `this model's outputs carry no information about ${labels}: it answers ${used[0] ?? 'nothing'} for every image (${figures})`;
  }
  if (a.level === 'none') return `this model's outputs carry no information about ${labels} (${figures})`;
  if (a.level === 'weak')
    return `this model's outputs carry little information about ${labels}: they lean towards a label without telling it (${figures})`;
  return `this model's outputs carry information about ${labels} (${figures})`;
}

export function formatP(p: number): string {
  if (p < 1e-4) return p === 0 ? '< 1e-300' : p.toExponential(1);
  return p.toFixed(p < 0.01 ? 4 : 2);
}
