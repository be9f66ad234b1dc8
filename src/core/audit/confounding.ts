/**
 * Confounding: a structural group (fold, site, batch, date — folders or table columns) that is strongly
 * associated with the classes. When one hospital holds 90 % of the ALL images, a model can learn the hospital
 * (stain, scanner, day) and still look accurate on a validation set drawn from the same hospitals.
 */
import type { Labeler } from '../labels.js';
import { chiSquareIndependence } from './stats.js';
import { MAX_EXAMPLE_PATHS, formatCount, listNames, type Finding } from './findings.js';
import { crossTabulate } from './labelCandidates.js';

/** A way the images are grouped that is not the diagnosis. */
export interface Grouping {
  /** Where the grouping comes from, as the user reads it: `folders at depth 1`, `column site of meta.csv`. */
  where: string;
  /** What one group is, and several, in a word: fold/folds, site/sites, batch/batches. */
  one: string;
  many: string;
  groupOf: (path: string) => string | undefined;
  evidence: Record<string, unknown>;
}

/** Cramér's V at or above this is a strong association (Cohen's "large" effect for 1 degree of freedom ≈ 0.5). */
export const CONFOUNDING_MIN_CRAMERS_V = 0.3;
export const CONFOUNDING_MAX_P_VALUE = 0.001;
const MIN_IMAGES = 20;

export function findConfounding(paths: string[], labelOf: Labeler, groupings: Grouping[]): Finding[] {
  const findings: Finding[] = [];
  for (const grouping of groupings) {
    const table = crossTabulate(paths, grouping.groupOf, labelOf);
    if (table.rows.length < 2 || table.columns.length < 2) continue;
    const test = chiSquareIndependence(table.counts);
    if (test.n < MIN_IMAGES || test.degreesOfFreedom === 0) continue;
    if (test.cramersV < CONFOUNDING_MIN_CRAMERS_V || test.pValue > CONFOUNDING_MAX_P_VALUE) continue;
    const example = strongestCell(table.rows, table.columns, table.counts);
    findings.push({
      code: 'confounded-groups',
      severity: 'warning',
      message:
        `The ${grouping.many} (${grouping.where}: ${listNames(table.rows)}) are strongly associated with the classes ` +
        `(Cramér's V = ${test.cramersV.toFixed(2)}, p = ${formatP(test.pValue)}): ${example.group} holds ` +
        `${(example.share * 100).toFixed(0)} % of the ${example.cls} images (${formatCount(example.count)} of ` +
        `${formatCount(example.classTotal)}). A model can learn the ${grouping.one} and look accurate; ` +
        `validate across ${grouping.many} (hold one out) or balance them, and compare per-${grouping.one} metrics.`,
      evidence: {
        ...grouping.evidence,
        contingency: table,
        cramersV: Number(test.cramersV.toFixed(4)),
        pValue: test.pValue,
        chiSquare: Number(test.chiSquare.toFixed(3)),
        degreesOfFreedom: test.degreesOfFreedom,
        n: test.n,
      },
      paths: table.rows
        .map((group) => paths.find((p) => grouping.groupOf(p) === group && labelOf(p) !== undefined)!)
        .slice(0, MAX_EXAMPLE_PATHS),
    });
  }
  return findings;
}

/** The group holding the largest share of some class, among groups holding more of it than of all images. */
function strongestCell(rows: string[], columns: string[], counts: number[][]) {
  const n = counts.flat().reduce((a, b) => a + b, 0);
  let best = { group: rows[0], cls: columns[0], share: 0, count: 0, classTotal: 0 };
  columns.forEach((cls, c) => {
    const classTotal = counts.reduce((sum, row) => sum + row[c], 0);
    rows.forEach((group, r) => {
      const share = counts[r][c] / classTotal;
      const groupShare = counts[r].reduce((a, b) => a + b, 0) / n;
      if (share > groupShare && share > best.share) best = { group, cls, share, count: counts[r][c], classTotal };
    });
  });
  return best;
}

function formatP(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4);
}
