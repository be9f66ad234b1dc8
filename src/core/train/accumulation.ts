/**
 * Gradient accumulation: one shard's gradient as the sum of the gradients of micro-batches small enough for
 * the wasm heap. tfjs keeps every forward activation and every intermediate gradient of a step alive until
 * the step ends, about 1.6 kB per input pixel of each image (measured on wasm: 26 MB per image at 128 px,
 * 80 MB at 224 px), and wasm memory is a 32-bit address space that only grows: a 224 px batch of 48 would
 * outgrow its 4 GiB. Splitting the batch bounds that working set by the micro-batch instead.
 *
 * Exactness: each micro-batch runs the real `trainStep`, whose loss is its weighted mean; scaling its
 * gradient back by its weight sum and dividing the total by the whole batch's weight sum gives the gradient
 * of the whole batch's loss, up to float rounding — except that BatchNorm normalises each micro-batch with
 * that micro-batch's own statistics, which is what gradient accumulation does in PyTorch too. Small
 * micro-batches make those statistics noisier, hence the floor of MIN_MICRO_BATCH on the automatic choice.
 *
 * Running BatchNorm statistics: every micro-batch starts from the step's running mean/variance, and the
 * shard ends with their average weighted by micro-batch size, as the data-parallel shards are combined
 * (dataParallel.ts): the running mean ends exactly as after one pass over the whole shard, the running
 * variance misses the between-micro-batch variance. `num_batches_tracked` advances once per shard.
 * (PyTorch's accumulation instead applies the momentum once per micro-batch.)
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Batch } from '../data/batches.js';
import { numClassesOf, resnet18ParamSpecs, type ResNet18Params } from '../model/resnet18.js';
import type { Optimizer } from './optimizers.js';
import { trainStep } from './step.js';

/** wasm32: tfjs's wasm heap cannot grow past 4 GiB. */
export const WASM_HEAP_LIMIT_BYTES = 4 * 2 ** 30;
/**
 * Peak tensor bytes of a training step per input pixel of each image: the growth of tf.profile's peakBytes
 * from batch 8 to 16 at 128 px on wasm, 1.56 kB (4.3 kB before the fused BatchNorm and the buffer-sharing
 * Identity, wasmKernels.ts, stopped keeping extra copies of the activations); a little more, for the
 * allocator's fragmentation.
 */
const STEP_BYTES_PER_IMAGE_PIXEL = 1700;
/** Weights, their gradients, Adam's two slots and the update's temporaries: 11.2 M floats each. */
const STEP_FIXED_BYTES = 5 * 45e6;
/**
 * The step working set of one training process, all its threads together. 1.5 GB keeps a 128 px run on
 * two threads under 2 GB of RSS (issue 12), each thread computing its 16 images of a batch of 32 at once,
 * and leaves room on a laptop.
 */
const PROCESS_STEP_BUDGET_BYTES = 1.5e9;
/** A training-mode BatchNorm needs two images (one image's 1×1 layer4 map has no variance). */
export const MIN_BATCH_NORM_IMAGES = 2;
/**
 * The automatic micro-batch never goes below this, even past the budget: BatchNorm statistics of fewer
 * images are noisy enough to hurt training (Wu & He, Group Normalization, 2018: ResNet-50 error rises
 * steeply below 4–8 images per BatchNorm batch). At 448 px on two threads this floor, not the budget, decides.
 */
export const MIN_MICRO_BATCH = 4;

/** The share of the wasm heap a step may plan for: the estimate is not the allocator's exact peak. */
const HEAP_HEADROOM = 0.9;

/**
 * The micro-batch for one of `threads` threads at `imageSize`: the largest whose step fits the process's
 * working-set budget, but at least MIN_MICRO_BATCH as long as that fits the wasm heap; throws when not even
 * MIN_BATCH_NORM_IMAGES images fit.
 */
export function microBatchSize(imageSize: number, threads: number): number {
  const perImage = STEP_BYTES_PER_IMAGE_PIXEL * imageSize * imageSize;
  const fitting = (bytes: number) => Math.floor((bytes - STEP_FIXED_BYTES) / perImage);
  const heapFit = fitting(HEAP_HEADROOM * WASM_HEAP_LIMIT_BYTES);
  const choice = Math.min(heapFit, Math.max(MIN_MICRO_BATCH, fitting(PROCESS_STEP_BUDGET_BYTES / threads)));
  if (choice < MIN_BATCH_NORM_IMAGES)
    throw new RangeError(
      `--image-size ${imageSize} is too large for the wasm engine: a training step on ${MIN_BATCH_NORM_IMAGES} images ` +
        `needs about ${((STEP_FIXED_BYTES + MIN_BATCH_NORM_IMAGES * perImage) / 2 ** 30).toFixed(1)} GiB, over its 4 GiB heap`,
    );
  return choice;
}

/** Peak tensor bytes of an eval-mode forward pass per input pixel of each image (measured 1.16 kB on wasm). */
const INFERENCE_BYTES_PER_IMAGE_PIXEL = 1200;
/** Per thread: evaluation runs after the training step, so its working set need not add to the step's. */
const INFERENCE_BUDGET_BYTES = 400e6;

/** Images one eval-mode forward pass takes at once (at least one): 20 at 128 px, 6 at 224 px. */
export function inferenceBatchSize(imageSize: number): number {
  return Math.max(1, Math.floor(INFERENCE_BUDGET_BYTES / (INFERENCE_BYTES_PER_IMAGE_PIXEL * imageSize * imageSize)));
}

/**
 * `n` examples as contiguous parts of near-equal size, as few as allow at most `largest` each, and never
 * fewer than `smallest` each (when `n` allows two parts at all).
 */
export function partBounds(n: number, largest: number, smallest = MIN_BATCH_NORM_IMAGES): [number, number][] {
  return evenBounds(n, Math.max(1, Math.min(Math.ceil(n / Math.max(1, largest)), Math.floor(n / smallest))));
}

/** `[start, end)` of `count` contiguous parts of `n` examples whose sizes differ by at most one. */
export function evenBounds(n: number, count: number): [number, number][] {
  return Array.from({ length: count }, (_, k) => [Math.floor((k * n) / count), Math.floor(((k + 1) * n) / count)]);
}

export interface ShardResult {
  /** The shard's weighted loss sum (not mean). */
  lossSum: number;
  correct: number;
  weightSum: number;
}

/** Where each trainable parameter's gradient goes in the caller's flat buffer. */
export type GradientOffsets = ReadonlyMap<string, { offset: number }>;

/**
 * The gradient of the shard's weighted *sum* of losses, written into `out` at each trainable parameter's
 * offset, accumulated over micro-batches of at most `microBatch` examples. Leaves the running BatchNorm
 * statistics of `params` as one training pass over the shard would (see the file comment).
 */
export function accumulatedGradient(
  params: ResNet18Params,
  trainableNames: readonly string[],
  batch: Batch,
  size: number,
  numClasses: number,
  weights: number[],
  offsets: GradientOffsets,
  out: Float32Array,
  microBatch: number,
): ShardResult {
  const imageLength = size * size * 3;
  const parts = partBounds(batch.y.length, microBatch);
  const statistics = parts.length > 1 ? new RunningStatistics(params) : undefined;
  const total: ShardResult = { lossSum: 0, correct: 0, weightSum: 0 };
  parts.forEach(([start, end], index) => {
    const part: Batch = {
      x: batch.x.subarray(start * imageLength, end * imageLength),
      y: batch.y.subarray(start, end),
      paths: batch.paths.slice(start, end),
    };
    const result = partGradient(params, trainableNames, part, size, numClasses, weights, offsets, out, index > 0);
    total.lossSum += result.lossSum;
    total.correct += result.correct;
    total.weightSum += result.weightSum;
    statistics?.collect((end - start) / batch.y.length);
  });
  statistics?.finish();
  return total;
}

/** One micro-batch's weighted-sum gradient, written into `out` or, with `add`, added to it. */
function partGradient(
  params: ResNet18Params,
  trainableNames: readonly string[],
  part: Batch,
  size: number,
  numClasses: number,
  weights: number[],
  offsets: GradientOffsets,
  out: Float32Array,
  add: boolean,
): ShardResult {
  let weightSum = 0;
  for (const label of part.y) weightSum += weights[label];
  const trainable = new Map(trainableNames.map((name) => [name, params.get(name)!]));
  // `trainStep` divides by the weight sum; multiplying back undoes that. A part whose weights are all zero
  // contributes nothing (`trainStep` itself gives 0/0 there).
  const scale = weightSum === 0 ? 0 : weightSum;
  const recorder: Optimizer = {
    name: 'sgd',
    step(_variables, gradients) {
      for (const [name, gradient] of gradients) {
        const { offset } = offsets.get(name)!;
        const data = gradient.dataSync();
        if (add) for (let i = 0; i < data.length; i++) out[offset + i] += data[i] * scale;
        else for (let i = 0; i < data.length; i++) out[offset + i] = data[i] * scale;
      }
    },
    exportState: () => new Map(),
    importState: () => undefined,
    dispose: () => undefined,
  };
  const { loss, correct } = trainStep(params, trainable, recorder, part, size, numClasses, weights, 0);
  return { lossSum: weightSum === 0 ? 0 : loss * weightSum, correct, weightSum };
}

/**
 * The running BatchNorm buffers around a step of several micro-batches: each micro-batch starts from the
 * values before the step, and the step ends with their size-weighted average and the batch count + 1.
 */
class RunningStatistics {
  private readonly before = new Map<string, Float32Array | Int32Array>();
  private readonly averaged = new Map<string, Float64Array>();

  constructor(private readonly params: ResNet18Params) {
    for (const { name, role } of resnet18ParamSpecs(numClassesOf(params))) {
      if (role !== 'bnRunningMean' && role !== 'bnRunningVar' && role !== 'bnBatchCount') continue;
      const variable = params.get(name)!;
      this.before.set(name, variable.dataSync().slice() as Float32Array | Int32Array);
      if (role !== 'bnBatchCount') this.averaged.set(name, new Float64Array(variable.size));
    }
  }

  /** Adds the values a micro-batch left, times `share` (its part of the shard), and restores the start. */
  collect(share: number): void {
    for (const [name, sum] of this.averaged) {
      const values = this.params.get(name)!.dataSync();
      for (let i = 0; i < sum.length; i++) sum[i] += values[i] * share;
    }
    this.restore((name) => this.before.get(name)!);
  }

  finish(): void {
    this.restore((name, start) =>
      name.endsWith('num_batches_tracked') ? Int32Array.of(start[0] + 1) : Float32Array.from(this.averaged.get(name)!),
    );
  }

  private restore(valueOf: (name: string, start: Float32Array | Int32Array) => Float32Array | Int32Array): void {
    for (const [name, start] of this.before) {
      const variable = this.params.get(name)!;
      tf.tidy(() => variable.assign(tf.tensor(valueOf(name, start), variable.shape, variable.dtype)));
    }
  }
}
