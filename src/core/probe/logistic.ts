/**
 * Multinomial logistic regression with an L2 penalty on standardised features, in plain TypeScript: the
 * linear probe of the batch-effect check. It minimises the objective scikit-learn's
 * `LogisticRegression(multi_class="multinomial", C=C)` minimises,
 *
 *     C · Σᵢ −log softmax(W xᵢ + b)_{yᵢ}  +  ½ ‖W‖²      (the intercepts b are not penalised),
 *
 * with L-BFGS, so coefficients and probabilities agree with scikit-learn's to the optimiser's tolerance
 * (checked in test/probe-logistic.test.ts). Features are standardised with the training rows' mean and
 * population standard deviation (StandardScaler); a constant feature is left at zero.
 */

export interface LogisticOptions {
  /** Inverse regularisation strength, as scikit-learn's `C` (default `DEFAULT_PROBE_C`). */
  C?: number;
  /** Largest L-BFGS iterations (default 500). */
  maxIterations?: number;
  /** Stop when the largest gradient component of the per-image objective is below this (default 1e-6). */
  tolerance?: number;
}

/**
 * 0.1 rather than scikit-learn's 1: a probe has as many features (512) as a small dataset has images, and a
 * weaker penalty lets it memorise the training subjects without predicting better across subjects.
 */
export const DEFAULT_PROBE_C = 0.1;

export interface Standardiser {
  mean: Float64Array;
  scale: Float64Array;
}

export interface LogisticModel {
  /** Classes the model was fitted on (indices into the caller's classes); others get probability 0. */
  classes: number[];
  /** `classes.length × d`, row-major, on standardised features. */
  weights: Float64Array;
  intercepts: Float64Array;
  standardiser: Standardiser;
  dimension: number;
  iterations: number;
  converged: boolean;
}

/** Mean and population standard deviation of each column of the `n × d` row-major `x`. */
export function fitStandardiser(x: Float32Array | Float64Array, n: number, d: number): Standardiser {
  const mean = new Float64Array(d);
  const scale = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++) {
      const delta = x[i * d + j] - mean[j];
      scale[j] += delta * delta;
    }
  // A constant column (a dead ReLU channel) carries nothing; scale 1 keeps it at zero, as StandardScaler does.
  for (let j = 0; j < d; j++) scale[j] = Math.sqrt(scale[j] / n) || 1;
  return { mean, scale };
}

export function standardise(x: Float32Array | Float64Array, n: number, d: number, s: Standardiser): Float64Array {
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[i * d + j] = (x[i * d + j] - s.mean[j]) / s.scale[j];
  return out;
}

/**
 * Fits the probe on `n` rows of `d` features with labels `y` in [0, numClasses). Classes absent from `y`
 * are left out of the model: it gives them probability 0 (a class the training rows never show cannot be
 * predicted, which is exactly what a held-out subject of a one-subject group should reveal).
 */
export function fitLogistic(
  x: Float32Array | Float64Array,
  y: ArrayLike<number>,
  n: number,
  d: number,
  options: LogisticOptions = {},
): LogisticModel {
  const C = options.C ?? DEFAULT_PROBE_C;
  if (!(C > 0)) throw new RangeError(`C must be positive, got ${C}`);
  const classes = [...new Set(Array.from(y))].sort((a, b) => a - b);
  const standardiser = fitStandardiser(x, n, d);
  const z = standardise(x, n, d, standardiser);
  const k = classes.length;
  const target = Int32Array.from(y, (label) => classes.indexOf(label));
  if (k < 2) {
    // One class: it is always the answer.
    return {
      classes,
      weights: new Float64Array(k * d),
      intercepts: new Float64Array(k),
      standardiser,
      dimension: d,
      iterations: 0,
      converged: true,
    };
  }
  // The objective divided by C·n: same minimiser, and a gradient whose size does not grow with the dataset.
  const penalty = 1 / (C * n);
  const objective = (theta: Float64Array, gradient: Float64Array) =>
    softmaxLoss(theta, gradient, z, target, n, d, k, penalty);
  const result = lbfgs(objective, new Float64Array(k * d + k), {
    maxIterations: options.maxIterations ?? 500,
    tolerance: options.tolerance ?? 1e-6,
  });
  return {
    classes,
    weights: result.x.slice(0, k * d),
    intercepts: result.x.slice(k * d),
    standardiser,
    dimension: d,
    iterations: result.iterations,
    converged: result.converged,
  };
}

/** Class probabilities `n × numClasses` (row-major) of raw (unstandardised) feature rows. */
export function predictProbabilities(
  model: LogisticModel,
  x: Float32Array | Float64Array,
  n: number,
  numClasses: number,
): Float64Array {
  const d = model.dimension;
  const z = standardise(x, n, d, model.standardiser);
  const k = model.classes.length;
  const out = new Float64Array(n * numClasses);
  const scores = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let s = model.intercepts[c];
      for (let j = 0; j < d; j++) s += model.weights[c * d + j] * z[i * d + j];
      scores[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += scores[c] = Math.exp(scores[c] - max);
    for (let c = 0; c < k; c++) out[i * numClasses + model.classes[c]] = scores[c] / sum;
  }
  return out;
}

/** Mean cross-entropy + ½·penalty·‖W‖² and its gradient; θ = [W (k × d), b (k)]. */
function softmaxLoss(
  theta: Float64Array,
  gradient: Float64Array,
  z: Float64Array,
  y: Int32Array,
  n: number,
  d: number,
  k: number,
  penalty: number,
): number {
  gradient.fill(0);
  const scores = new Float64Array(k);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    const row = i * d;
    let max = -Infinity;
    for (let c = 0; c < k; c++) {
      let s = theta[k * d + c];
      const w = c * d;
      for (let j = 0; j < d; j++) s += theta[w + j] * z[row + j];
      scores[c] = s;
      if (s > max) max = s;
    }
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(scores[c] - max);
    const logSum = max + Math.log(sum);
    loss += logSum - scores[y[i]];
    for (let c = 0; c < k; c++) {
      const residual = (Math.exp(scores[c] - logSum) - (c === y[i] ? 1 : 0)) / n;
      if (residual === 0) continue;
      const w = c * d;
      for (let j = 0; j < d; j++) gradient[w + j] += residual * z[row + j];
      gradient[k * d + c] += residual;
    }
  }
  loss /= n;
  let squares = 0;
  for (let p = 0; p < k * d; p++) {
    squares += theta[p] * theta[p];
    gradient[p] += penalty * theta[p];
  }
  return loss + 0.5 * penalty * squares;
}

interface LbfgsResult {
  x: Float64Array;
  iterations: number;
  converged: boolean;
}

/** Limited-memory BFGS (10 pairs) with a backtracking Armijo line search; the objective is smooth and convex. */
function lbfgs(
  f: (x: Float64Array, gradient: Float64Array) => number,
  start: Float64Array,
  options: { maxIterations: number; tolerance: number },
): LbfgsResult {
  const memory = 10;
  const size = start.length;
  let x = start.slice();
  let g = new Float64Array(size);
  let value = f(x, g);
  const s: Float64Array[] = [];
  const yHistory: Float64Array[] = [];
  const rho: number[] = [];
  const direction = new Float64Array(size);
  const alpha = new Array<number>(memory);
  for (let iteration = 0; iteration < options.maxIterations; iteration++) {
    if (maxAbs(g) < options.tolerance) return { x, iterations: iteration, converged: true };
    // Two-loop recursion: direction = −H·g.
    for (let i = 0; i < size; i++) direction[i] = -g[i];
    for (let m = s.length - 1; m >= 0; m--) {
      alpha[m] = rho[m] * dot(s[m], direction);
      axpy(-alpha[m], yHistory[m], direction);
    }
    const last = s.length - 1;
    const gamma =
      last >= 0 ? dot(s[last], yHistory[last]) / dot(yHistory[last], yHistory[last]) : 1 / Math.max(1, norm(g));
    for (let i = 0; i < size; i++) direction[i] *= gamma;
    for (let m = 0; m < s.length; m++) {
      const beta = rho[m] * dot(yHistory[m], direction);
      axpy(alpha[m] - beta, s[m], direction);
    }
    let slope = dot(g, direction);
    if (slope >= 0) {
      // Not a descent direction (curvature information went stale): restart from steepest descent.
      s.length = yHistory.length = rho.length = 0;
      for (let i = 0; i < size; i++) direction[i] = -g[i] / Math.max(1, norm(g));
      slope = dot(g, direction);
    }
    let step = 1;
    const candidate = new Float64Array(size);
    const candidateGradient = new Float64Array(size);
    let candidateValue = Infinity;
    let accepted = false;
    for (let tries = 0; tries < 40 && !accepted; tries++) {
      for (let i = 0; i < size; i++) candidate[i] = x[i] + step * direction[i];
      candidateValue = f(candidate, candidateGradient);
      accepted = candidateValue <= value + 1e-4 * step * slope;
      step /= 2;
    }
    // No step decreases the objective any more: this is as close to the minimum as float64 gets.
    if (!accepted) return { x, iterations: iteration, converged: maxAbs(g) < options.tolerance * 100 };
    const sk = new Float64Array(size);
    const yk = new Float64Array(size);
    for (let i = 0; i < size; i++) {
      sk[i] = candidate[i] - x[i];
      yk[i] = candidateGradient[i] - g[i];
    }
    const curvature = dot(sk, yk);
    if (curvature > 1e-12) {
      s.push(sk);
      yHistory.push(yk);
      rho.push(1 / curvature);
      if (s.length > memory) {
        s.shift();
        yHistory.shift();
        rho.shift();
      }
    }
    const improvement = value - candidateValue;
    x = candidate;
    g = candidateGradient;
    value = candidateValue;
    if (improvement <= 1e-15 * Math.max(1, Math.abs(value)) && maxAbs(g) < options.tolerance * 100)
      return { x, iterations: iteration + 1, converged: true };
  }
  return { x, iterations: options.maxIterations, converged: maxAbs(g) < options.tolerance };
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

function axpy(scale: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] += scale * x[i];
}

function norm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}

function maxAbs(a: Float64Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]));
  return max;
}
