/**
 * Training-mode BatchNorm as one forward kernel and one gradient kernel for the tfjs wasm backend.
 *
 * Composed from tfjs ops (moments, then scale and shift), a training-mode BatchNorm is about ten kernels
 * forward and twenty backward, and the wasm reductions over N·H·W transpose the whole activation first
 * so that the reduced axes are innermost: at 128 px the element-wise kernels, mostly BatchNorm's, took a
 * fifth of a training step. Here each kernel reads and writes the activations in place on the wasm heap,
 * in the NHWC order they are stored in: the forward pass reads x twice (moments, then normalisation) and
 * writes y once; the backward pass reads dy and x twice and writes dx once. Per-channel sums are kept in
 * float64, so the statistics of a quarter-million values per channel lose nothing to float32 rounding.
 *
 * This module imports tfjs-core only: the model asks `hasFusedBatchNorm()` whether the active backend has
 * the kernels (registered with the wasm training kernels, wasmKernels.ts) and otherwise keeps the
 * composed ops, which every backend runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { requireFloat32, type HeapBackend } from './wasmHeap.js';

export const BATCH_NORM_TRAINING = 'LeukemiaAuditBatchNormTraining';
export const BATCH_NORM_TRAINING_GRAD = 'LeukemiaAuditBatchNormTrainingGrad';

type TensorInfo = tf.TensorInfo;

interface BatchNormAttrs {
  epsilon: number;
}

/** Channels (the last axis) and values per channel of an NHWC (or any channels-last) activation. */
function channelsOf(x: TensorInfo): { channels: number; rows: number } {
  const channels = x.shape[x.shape.length - 1];
  const size = x.shape.reduce((a, b) => a * b, 1);
  return { channels, rows: size / channels };
}

/**
 * Per-channel mean and biased variance (divide by the count) in one pass: sums of x − k and (x − k)² in
 * float64, shifted by each channel's first value k so that the variance does not come out as a small
 * difference of large sums (with k a sample of the channel, |mean − k| is of the order of its spread).
 */
function channelMoments(
  x: Float32Array,
  rows: number,
  channels: number,
): { mean: Float64Array; variance: Float64Array } {
  const shift = Float64Array.from(x.subarray(0, channels));
  const sum = new Float64Array(channels);
  const sumSquares = new Float64Array(channels);
  for (let r = 0, base = 0; r < rows; r++, base += channels) {
    for (let c = 0; c < channels; c++) {
      const d = x[base + c] - shift[c];
      sum[c] += d;
      sumSquares[c] += d * d;
    }
  }
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const meanShifted = sum[c] / rows;
    mean[c] = shift[c] + meanShifted;
    variance[c] = Math.max(0, sumSquares[c] / rows - meanShifted * meanShifted);
  }
  return { mean, variance };
}

/**
 * Inputs x [..., C], weight [C], bias [C]; outputs y = (x − mean) / √(var + ε) · weight + bias, and the
 * batch mean and biased variance [C] (for the running statistics and the gradient).
 */
function batchNormTraining(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) {
  const { x, weight, bias } = args.inputs as { x: TensorInfo; weight: TensorInfo; bias: TensorInfo };
  const { epsilon } = args.attrs as unknown as BatchNormAttrs;
  requireFloat32(BATCH_NORM_TRAINING, x, weight, bias);
  const backend = args.backend as HeapBackend;
  const { channels, rows } = channelsOf(x);
  const y = backend.makeOutput(x.shape, 'float32');
  const meanOut = backend.makeOutput([channels], 'float32');
  const varianceOut = backend.makeOutput([channels], 'float32');
  // Views only after every allocation: growing the heap detaches earlier views.
  const xs = backend.typedArrayFromHeap(x);
  const ys = backend.typedArrayFromHeap(y);
  const { mean, variance } = channelMoments(xs, rows, channels);
  const w = backend.typedArrayFromHeap(weight);
  const b = backend.typedArrayFromHeap(bias);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    scale[c] = w[c] / Math.sqrt(variance[c] + epsilon);
    shift[c] = b[c] - mean[c] * scale[c];
  }
  for (let r = 0, base = 0; r < rows; r++, base += channels) {
    for (let c = 0; c < channels; c++) ys[base + c] = xs[base + c] * scale[c] + shift[c];
  }
  backend.typedArrayFromHeap(meanOut).set(mean);
  backend.typedArrayFromHeap(varianceOut).set(variance);
  return [y, meanOut, varianceOut];
}

/**
 * Inputs dy, x, weight, mean, variance; outputs dx, dweight, dbias. With x̂ = (x − mean)·s, s = 1/√(var + ε)
 * and M values per channel: dbias = Σ dy, dweight = Σ dy·x̂, dx = weight·s·(dy − dbias/M − x̂·dweight/M),
 * the gradient through the batch statistics included (as PyTorch's training-mode BatchNorm).
 */
function batchNormTrainingGrad(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) {
  const { dy, x, weight, mean, variance } = args.inputs as Record<
    'dy' | 'x' | 'weight' | 'mean' | 'variance',
    TensorInfo
  >;
  const { epsilon } = args.attrs as unknown as BatchNormAttrs;
  requireFloat32(BATCH_NORM_TRAINING_GRAD, dy, x, weight, mean, variance);
  const backend = args.backend as HeapBackend;
  const { channels, rows } = channelsOf(x);
  const dx = backend.makeOutput(x.shape, 'float32');
  const dweightOut = backend.makeOutput([channels], 'float32');
  const dbiasOut = backend.makeOutput([channels], 'float32');
  const dys = backend.typedArrayFromHeap(dy);
  const xs = backend.typedArrayFromHeap(x);
  const dxs = backend.typedArrayFromHeap(dx);
  const means = backend.typedArrayFromHeap(mean);
  const variances = backend.typedArrayFromHeap(variance);
  const w = backend.typedArrayFromHeap(weight);

  const sumDy = new Float64Array(channels);
  const sumDyCentred = new Float64Array(channels);
  for (let r = 0, base = 0; r < rows; r++, base += channels) {
    for (let c = 0; c < channels; c++) {
      const g = dys[base + c];
      sumDy[c] += g;
      sumDyCentred[c] += g * (xs[base + c] - means[c]);
    }
  }
  // dx = a·dy + b·x + k per channel, folded from the formula above.
  const a = new Float64Array(channels);
  const bx = new Float64Array(channels);
  const k = new Float64Array(channels);
  const dweight = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    const invStd = 1 / Math.sqrt(variances[c] + epsilon);
    dweight[c] = sumDyCentred[c] * invStd;
    a[c] = w[c] * invStd;
    bx[c] = (-a[c] * invStd * dweight[c]) / rows;
    k[c] = (-a[c] * sumDy[c]) / rows - bx[c] * means[c];
  }
  for (let r = 0, base = 0; r < rows; r++, base += channels) {
    for (let c = 0; c < channels; c++) dxs[base + c] = a[c] * dys[base + c] + bx[c] * xs[base + c] + k[c];
  }
  backend.typedArrayFromHeap(dweightOut).set(dweight);
  backend.typedArrayFromHeap(dbiasOut).set(sumDy);
  return [dx, dweightOut, dbiasOut];
}

const gradientConfig: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAINING,
  inputsToSave: ['x', 'weight'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [dy] = dys as tf.Tensor[];
    const [x, weight, mean, variance] = saved;
    // One kernel yields all three gradients; an unused one is freed with the backward pass's scope.
    const [dx, dweight, dbias] = tf
      .engine()
      .runKernel(BATCH_NORM_TRAINING_GRAD, { dy, x, weight, mean, variance }, attrs) as tf.Tensor[];
    return { x: () => dx, weight: () => dweight, bias: () => dbias };
  },
};

/** Registers both kernels for `backendName` (the wasm backend) and the forward kernel's gradient; idempotent. */
export function registerFusedBatchNorm(backendName: string): void {
  const kernels: tf.KernelConfig[] = [
    { kernelName: BATCH_NORM_TRAINING, backendName, kernelFunc: batchNormTraining as unknown as tf.KernelFunc },
    {
      kernelName: BATCH_NORM_TRAINING_GRAD,
      backendName,
      kernelFunc: batchNormTrainingGrad as unknown as tf.KernelFunc,
    },
  ];
  for (const config of kernels) {
    if (!tf.getKernel(config.kernelName, backendName)) tf.registerKernel(config);
  }
  if (!tf.getGradient(BATCH_NORM_TRAINING)) tf.registerGradient(gradientConfig);
}

/** True when the active backend has the fused training-mode BatchNorm. */
export function hasFusedBatchNorm(): boolean {
  return Boolean(tf.getKernel(BATCH_NORM_TRAINING, tf.getBackend()));
}

/**
 * Training-mode BatchNorm over the last axis with batch statistics, differentiable with respect to x,
 * weight and bias. Returns the output and the batch mean and biased variance (not differentiated: they
 * feed the running statistics). Needs `hasFusedBatchNorm()`.
 */
export function fusedBatchNormTraining<T extends tf.Tensor>(
  x: T,
  weight: tf.Tensor1D,
  bias: tf.Tensor1D,
  epsilon: number,
): { y: T; mean: tf.Tensor1D; variance: tf.Tensor1D } {
  const [y, mean, variance] = tf
    .engine()
    .runKernel(BATCH_NORM_TRAINING, { x, weight, bias }, { epsilon } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return { y: y as T, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
