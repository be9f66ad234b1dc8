/**
 * Data-parallel training on several cores. The wasm backend runs single-threaded in Node (tfjs#3830), so
 * one training process uses one core; here the batch is split into shards, `workers − 1` worker threads
 * each compute the gradient of one shard with their own tfjs + ResNet-18 copy, and the main thread
 * computes one shard itself, sums, and applies the optimiser. The model and optimiser state live only on
 * the main thread: workers receive the weights every step.
 *
 * Exactness: every shard's gradient is `accumulatedGradient` (accumulation.ts): the real `trainStep` on
 * micro-batches that fit the wasm heap, each scaled back by its weight sum; dividing the total by the whole
 * batch's weight sum gives the gradient of the single-process loss, up to float rounding — except that
 * BatchNorm normalises each shard (and each micro-batch) with its own batch statistics (as PyTorch DDP
 * without SyncBatchNorm, and gradient accumulation, do). With one worker this is plain gradient
 * accumulation on the main thread.
 *
 * Running BatchNorm statistics: each shard updates the running mean/variance from its own batch; the main
 * model gets their average weighted by shard size. Because the update is linear (0.9·old + 0.1·batch) and
 * every shard starts from the same old value, the running mean ends exactly as if updated with the whole
 * batch's mean; the running variance misses the between-shard part of the variance (and uses each shard's
 * n − 1 correction). `num_batches_tracked` advances once per step, as in a single process.
 *
 * Shared memory: one SharedArrayBuffer holds every float parameter and buffer (state_dict order, the
 * int32 `num_batches_tracked` excepted), written by the main thread before each step and copied by the
 * workers into their variables. Each worker owns one more such buffer with the same layout, into which it
 * writes its gradients (already multiplied by its weight sum) and its updated running statistics.
 * Steps are synchronised with postMessage: a step takes hundreds of milliseconds, a message well under one.
 *
 * Inference (evaluation after each epoch) uses the same threads: `infer` splits a batch the same way and
 * each thread runs the eval-mode forward pass on its part. The weights are published once per version
 * (they only change in `step`), since a worker that reloads them also has XNNPACK repack every filter.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { Worker } from 'node:worker_threads';
import type { Batch } from '../data/batches.js';
import { forward, numClassesOf, resnet18ParamSpecs, type ResNet18Params } from '../model/resnet18.js';
import {
  accumulatedGradient,
  evenBounds,
  inferenceBatchSize,
  microBatchSize,
  MIN_BATCH_NORM_IMAGES,
  type ShardResult,
} from './accumulation.js';
import type { Optimizer } from './optimizers.js';
import { startWorker } from '../worker.js';

export interface DataParallelOptions {
  numClasses: number;
  imageSize: number;
  /**
   * Ways the batch is split, the main thread included: `workers − 1` threads are started, so 2 uses two
   * cores. 1 starts no thread: the main thread accumulates the whole batch's micro-batches itself.
   */
  workers: number;
  /**
   * Largest micro-batch each thread computes at once (gradient accumulation, accumulation.ts); default
   * `microBatchSize(imageSize, workers)`, what fits the wasm heap and the process's memory budget.
   */
  microBatch?: number;
}

export interface DataParallelTrainer {
  /** One optimisation step; the result means what `trainStep`'s does (loss of the whole batch, correct count). */
  step(
    params: ResNet18Params,
    trainable: ReadonlyMap<string, tf.Variable>,
    optimizer: Optimizer,
    batch: Batch,
    weights: number[],
    learningRate: number,
  ): Promise<{ loss: number; correct: number }>;
  /**
   * Eval-mode logits `[n, numClasses]` (row-major) of the NHWC images `x`, on every core. Results equal
   * `forward(params, x, { training: false })` up to float rounding.
   */
  infer(params: ResNet18Params, x: Float32Array, n: number): Promise<Float32Array>;
  /** Where the training steps' time went so far (the benchmark prints the shares). */
  readonly timings: StepTimings;
  /** Terminates the worker threads; resolves once they have exited. */
  dispose(): Promise<void>;
}

/** Milliseconds summed over all steps, on the main thread's clock. */
export interface StepTimings {
  steps: number;
  /** Copying the weights into shared memory for the workers. */
  publish: number;
  /** The main thread's own shard: forward, backward, gradients read back. */
  ownShard: number;
  /** Waiting for the workers after the own shard was done. */
  wait: number;
  /** Summing the shards' gradients and averaging the running statistics. */
  reduce: number;
  optimizer: number;
}

/** Where each float parameter or buffer sits in the shared buffers. */
export interface StateLayout {
  entries: { name: string; shape: number[]; offset: number; size: number; isRunningStat: boolean }[];
  byName: Map<string, { offset: number; size: number }>;
  /** Total floats. */
  length: number;
}

export function stateLayout(numClasses: number): StateLayout {
  const entries: StateLayout['entries'] = [];
  let offset = 0;
  for (const spec of resnet18ParamSpecs(numClasses)) {
    // The int32 batch counter is advanced by the main thread's own forward pass, never shared.
    if (spec.role === 'bnBatchCount') continue;
    const size = spec.shape.reduce((a, b) => a * b, 1);
    entries.push({
      name: spec.name,
      shape: spec.shape,
      offset,
      size,
      isRunningStat: spec.role === 'bnRunningMean' || spec.role === 'bnRunningVar',
    });
    offset += size;
  }
  return { entries, byName: new Map(entries.map((e) => [e.name, { offset: e.offset, size: e.size }])), length: offset };
}

/** Copies the float parameters and buffers of `params` into `target` (the layout of `stateLayout`). */
export function writeState(params: ResNet18Params, layout: StateLayout, target: Float32Array): void {
  for (const entry of layout.entries) target.set(params.get(entry.name)!.dataSync() as Float32Array, entry.offset);
}

/** Messages between the main thread and a gradient worker. */
export interface WorkerInit {
  numClasses: number;
  imageSize: number;
  microBatch: number;
  state: SharedArrayBuffer;
  out: SharedArrayBuffer;
}
/** `version` numbers the weights in shared memory: a worker reloads them only when it changed. */
export type ToWorker =
  | { type: 'step'; version: number; x: Float32Array; y: Int32Array; weights: number[]; trainable: string[] }
  | { type: 'infer'; version: number; x: Float32Array; n: number };
export type FromWorker =
  | { type: 'ready' }
  | ({ type: 'done' } & ShardResult)
  | { type: 'logits'; logits: Float32Array }
  | { type: 'error'; message: string };

/**
 * Eval-mode logits of `n` NHWC images as a host array, in parts of at most `inferenceBatchSize(size)`
 * images: a tidy keeps all of a forward pass's activations until it ends (0.9 GB for 16 images at 224 px).
 * Eval-mode BatchNorm uses the running statistics, so the parts change nothing but the memory.
 */
export function inferLogits(params: ResNet18Params, x: Float32Array, n: number, size: number): Float32Array {
  const imageLength = size * size * 3;
  const parts = evenBounds(n, Math.max(1, Math.ceil(n / inferenceBatchSize(size))));
  const numClasses = numClassesOf(params);
  const logits = new Float32Array(n * numClasses);
  for (const [start, end] of parts) {
    const images = tf.tensor4d(x.subarray(start * imageLength, end * imageLength), [end - start, size, size, 3]);
    const part = tf.tidy(() => forward(params, images, { training: false }).logits.dataSync());
    images.dispose();
    logits.set(part, start * numClasses);
  }
  return logits;
}

/** The worker's entry: `gradientWorker.ts` under tsx, the `gradientWorker.js` bundle next to dist/trainer.js. */
function startGradientWorker(workerData: WorkerInit): Worker {
  return startWorker(__filename, 'gradientWorker', workerData);
}

class GradientWorker {
  private readonly worker: Worker;
  readonly out: Float32Array;
  readonly ready: Promise<void>;
  private pending?: { resolve: (result: FromWorker) => void; reject: (error: Error) => void };
  private failure?: Error;
  readonly exited: Promise<void>;

  constructor(options: Required<DataParallelOptions>, state: SharedArrayBuffer, layout: StateLayout) {
    const outBuffer = new SharedArrayBuffer(layout.length * Float32Array.BYTES_PER_ELEMENT);
    this.out = new Float32Array(outBuffer);
    this.worker = startGradientWorker({
      numClasses: options.numClasses,
      imageSize: options.imageSize,
      microBatch: options.microBatch,
      state,
      out: outBuffer,
    });
    let onReady!: () => void;
    this.ready = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      this.fail = (error) => {
        this.failure ??= error;
        reject(error);
        this.pending?.reject(error);
        this.pending = undefined;
      };
    });
    // A worker that fails before the first step must not surface as an unhandled rejection.
    this.ready.catch(() => undefined);
    this.worker.on('message', (message: FromWorker) => {
      if (message.type === 'ready') onReady();
      else if (message.type === 'error') this.fail(new Error(`Gradient worker: ${message.message}`));
      else {
        const pending = this.pending;
        this.pending = undefined;
        pending?.resolve(message);
      }
    });
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.once('exit', (code) => this.fail(new Error(`Gradient worker exited (code ${code})`)));
  }

  private fail: (error: Error) => void = () => undefined;

  run(message: ToWorker): Promise<FromWorker> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      // The shard is a fresh slice: hand its memory over instead of copying it.
      this.worker.postMessage(message, [message.x.buffer as ArrayBuffer]);
    });
  }

  async terminate(): Promise<void> {
    await this.worker.terminate();
    await this.exited;
  }
}

/** Contiguous shards of near-equal size; at least two examples each, since BatchNorm needs them. */
function shardBounds(n: number, ways: number): [number, number][] {
  return evenBounds(n, Math.max(1, Math.min(ways, Math.floor(n / MIN_BATCH_NORM_IMAGES))));
}

export function createDataParallelTrainer(options: DataParallelOptions): DataParallelTrainer {
  const { numClasses, imageSize, workers } = options;
  if (!Number.isInteger(workers) || workers < 1)
    throw new RangeError(`workers must be a whole number ≥ 1, got ${workers}`);
  const microBatch = options.microBatch ?? microBatchSize(imageSize, workers);
  if (!Number.isInteger(microBatch) || microBatch < 1)
    throw new RangeError(`microBatch must be a whole number ≥ 1, got ${microBatch}`);
  const layout = stateLayout(numClasses);
  const stateBuffer = new SharedArrayBuffer(layout.length * Float32Array.BYTES_PER_ELEMENT);
  const state = new Float32Array(stateBuffer);
  /** The main thread's gradient, and after each step's reduce the whole batch's, in place: 45 MB, allocated once. */
  const mainOut = new Float32Array(layout.length);
  const threads = Array.from(
    { length: workers - 1 },
    () => new GradientWorker({ ...options, microBatch }, stateBuffer, layout),
  );
  let busy = false;
  let disposed = false;
  /** Which weights the shared state holds: bumped by each publish; `published` is false after a step changed them. */
  let version = 0;
  let published = false;
  const publish = (params: ResNet18Params) => {
    writeState(params, layout, state);
    version++;
    published = true;
  };
  const imageLength = imageSize * imageSize * 3;
  const timings: StepTimings = { steps: 0, publish: 0, ownShard: 0, wait: 0, reduce: 0, optimizer: 0 };
  let clock = 0;
  /** Adds the time since the last lap to `phase`. */
  const lap = (phase: Exclude<keyof StepTimings, 'steps'>) => {
    const now = performance.now();
    timings[phase] += now - clock;
    clock = now;
  };

  /** Runs `body` as the only operation in flight, after every worker started. */
  async function exclusive<T>(body: () => Promise<T>): Promise<T> {
    if (disposed) throw new Error('The data-parallel trainer has been disposed');
    if (busy) throw new Error('A data-parallel step is already running');
    busy = true;
    try {
      await Promise.all(threads.map((thread) => thread.ready));
      return await body();
    } finally {
      busy = false;
    }
  }

  const infer: DataParallelTrainer['infer'] = (params, x, n) =>
    exclusive(async () => {
      // One image per shard is fine here: eval-mode BatchNorm uses the running statistics.
      const bounds = evenBounds(n, Math.max(1, Math.min(threads.length + 1, n)));
      if (bounds.length > 1 && !published) publish(params);
      const remote = Promise.allSettled(
        bounds.slice(1).map(([start, end], k) =>
          threads[k].run({
            type: 'infer',
            version,
            x: x.slice(start * imageLength, end * imageLength),
            n: end - start,
          }),
        ),
      );
      const [start, end] = bounds[0];
      const own = inferLogits(params, x.subarray(start * imageLength, end * imageLength), end - start, imageSize);
      const settled = await remote;
      const failed = settled.find((result) => result.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const logits = new Float32Array(n * numClasses);
      logits.set(own, 0);
      settled.forEach((result, k) => {
        const message = (result as PromiseFulfilledResult<FromWorker>).value as { logits: Float32Array };
        logits.set(message.logits, bounds[k + 1][0] * numClasses);
      });
      return logits;
    });

  const step: DataParallelTrainer['step'] = (params, trainable, optimizer, batch, weights, learningRate) =>
    exclusive(async () => {
      const n = batch.y.length;
      const bounds = shardBounds(n, threads.length + 1);
      const shardOf = ([start, end]: [number, number]): Batch => ({
        x: batch.x.slice(start * imageLength, end * imageLength),
        y: batch.y.slice(start, end),
        paths: batch.paths.slice(start, end),
      });
      const trainableNames = [...trainable.keys()];
      clock = performance.now();
      // Workers start only after the weights are published, and before the main thread's own shard
      // mutates the main model's running statistics.
      if (bounds.length > 1) publish(params);
      // The step changes the weights: the next inference publishes them again.
      published = false;
      lap('publish');
      const remote = bounds.slice(1).map((range, k) => {
        const shard = shardOf(range);
        return threads[k].run({ type: 'step', version, x: shard.x, y: shard.y, weights, trainable: trainableNames });
      });
      // Settle every worker even if one fails, so none is still writing when the next step starts.
      const remoteSettled = Promise.allSettled(remote);
      const own = accumulatedGradient(
        params,
        trainableNames,
        shardOf(bounds[0]),
        imageSize,
        numClasses,
        weights,
        layout.byName,
        mainOut,
        microBatch,
      );
      lap('ownShard');
      const settled = await remoteSettled;
      lap('wait');
      const failed = settled.find((result) => result.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      const results = [
        own,
        ...settled.map((result) => (result as PromiseFulfilledResult<FromWorker>).value as ShardResult),
      ];
      const workerOuts = threads.slice(0, bounds.length - 1).map((thread) => thread.out);

      const totalWeight = results.reduce((sum, r) => sum + r.weightSum, 0);
      const gradients = new Map<string, tf.Tensor>();
      for (const [name, variable] of trainable) {
        const { offset, size } = layout.byName.get(name)!;
        // ~11 M floats per step on the serial path, between the shards and the update: one flat pass per
        // worker, in place (a per-element loop over the workers measured ~10× slower, 2 % of a step).
        const end = offset + size;
        for (const out of workerOuts) for (let i = offset; i < end; i++) mainOut[i] += out[i];
        for (let i = offset; i < end; i++) mainOut[i] /= totalWeight;
        gradients.set(name, tf.tensor(mainOut.subarray(offset, end), variable.shape));
      }
      lap('reduce');
      optimizer.step(trainable, gradients, learningRate);
      for (const gradient of gradients.values()) gradient.dispose();
      lap('optimizer');

      if (bounds.length > 1) {
        for (const entry of layout.entries.filter((e) => e.isRunningStat)) {
          const variable = params.get(entry.name)!;
          // The main shard's value is in the variable itself; the workers' are in their out buffers.
          const averaged = (variable.dataSync() as Float32Array).map(
            (value) => (value * (bounds[0][1] - bounds[0][0])) / n,
          );
          bounds.slice(1).forEach(([start, end], k) => {
            const out = workerOuts[k];
            for (let i = 0; i < entry.size; i++) averaged[i] += (out[entry.offset + i] * (end - start)) / n;
          });
          tf.tidy(() => variable.assign(tf.tensor(averaged, variable.shape)));
        }
      }
      lap('reduce');
      timings.steps++;
      const lossSum = results.reduce((sum, r) => sum + r.lossSum, 0);
      return { loss: lossSum / totalWeight, correct: results.reduce((sum, r) => sum + r.correct, 0) };
    });

  return {
    step,
    infer,
    timings,
    async dispose() {
      disposed = true;
      await Promise.all(threads.map((thread) => thread.terminate()));
    },
  };
}
