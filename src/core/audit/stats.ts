/**
 * Small statistics the label audit needs: Pearson's chi-square test of independence on a contingency
 * table, with its p-value and Cramér's V. No dependency: the chi-square survival function is the
 * regularised upper incomplete gamma function Q(k/2, x/2), evaluated by its series or continued fraction.
 */

export interface IndependenceTest {
  chiSquare: number;
  degreesOfFreedom: number;
  /** P(χ² ≥ observed) under independence. 1 when the table is degenerate (a single row or column). */
  pValue: number;
  /** √(χ² / (n · (min(rows, cols) − 1))): 0 = independent, 1 = one determines the other. */
  cramersV: number;
  n: number;
}

/** Rows and columns whose totals are zero are dropped before testing (they carry no information). */
export function chiSquareIndependence(table: number[][]): IndependenceTest {
  const rows = table.filter((row) => row.some((v) => v > 0));
  const columnTotalsAll = columnTotals(rows);
  const keep = columnTotalsAll.map((total) => total > 0);
  const compact = rows.map((row) => row.filter((_, j) => keep[j]));
  const rowTotals = compact.map((row) => row.reduce((a, b) => a + b, 0));
  const colTotals = columnTotals(compact);
  const n = rowTotals.reduce((a, b) => a + b, 0);
  const r = compact.length;
  const c = colTotals.length;
  if (r < 2 || c < 2 || n === 0) return { chiSquare: 0, degreesOfFreedom: 0, pValue: 1, cramersV: 0, n };
  let chiSquare = 0;
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) {
      const expected = (rowTotals[i] * colTotals[j]) / n;
      const diff = compact[i][j] - expected;
      chiSquare += (diff * diff) / expected;
    }
  }
  const degreesOfFreedom = (r - 1) * (c - 1);
  return {
    chiSquare,
    degreesOfFreedom,
    pValue: chiSquareSurvival(chiSquare, degreesOfFreedom),
    cramersV: Math.sqrt(chiSquare / (n * (Math.min(r, c) - 1))),
    n,
  };
}

function columnTotals(table: number[][]): number[] {
  const totals: number[] = [];
  for (const row of table) row.forEach((v, j) => (totals[j] = (totals[j] ?? 0) + v));
  return totals;
}

export function chiSquareSurvival(x: number, degreesOfFreedom: number): number {
  if (x <= 0) return 1;
  return regularizedGammaQ(degreesOfFreedom / 2, x / 2);
}

/** Q(a, x) = Γ(a, x) / Γ(a). Series for x < a + 1, Lentz continued fraction otherwise. */
export function regularizedGammaQ(a: number, x: number): number {
  if (x < 0 || a <= 0) throw new RangeError(`regularizedGammaQ(${a}, ${x}) is undefined`);
  if (x === 0) return 1;
  const logPrefactor = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    let term = 1 / a;
    let sum = term;
    for (let k = 1; k < 1000; k++) {
      term *= x / (a + k);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(logPrefactor));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(logPrefactor) * h);
}

/** Lanczos approximation (g = 7, n = 9), accurate to ~1e-15 for a > 0. */
export function logGamma(a: number): number {
  const coefficients = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (a < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * a))) - logGamma(1 - a);
  const z = a - 1;
  let sum = coefficients[0];
  for (let i = 1; i < 9; i++) sum += coefficients[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(sum);
}
