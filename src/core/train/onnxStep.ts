/**
 * Full training steps on onnxruntime's native CPU kernels, on every core: the step graph
 * (onnxTrainingGraph.ts) computes the loss, the logits, every parameter's gradient and the BatchNorm batch
 * statistics; the weights stay in the tfjs variables, which the optimiser (optimizers.ts) updates as on the
 * tfjs path, so checkpoints, resuming and evaluation do not change. One session per batch size (a run has
 * one, its last short batch being dropped).
 *
 * Unlike the data-parallel wasm path, BatchNorm sees the whole batch at once, as in PyTorch — unless the
 * step would outgrow the memory budget (onnxMicroBatch): then the batch runs through the graph in equal
 * micro-batches whose gradients are summed into the one optimiser step (gradient accumulation; the targets
 * are weighted over the whole batch, so the sum is the whole batch's gradient but for BatchNorm, which
 * normalises each micro-batch by itself). The running statistics then move once per step, by the
 * size-weighted average of the micro-batches' statistics, as on the wasm path (accumulation.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism, totalmem } from 'node:os';
import type { Batch } from '../data/batches.js';
import { openSession, type OnnxRuntime, type OnnxSession, type OnnxTensor } from '../infer/onnxRuntime.js';
import { updateRunningStatistics, type ResNet18Params } from '../model/resnet18.js';
import {
  gradientOutput,
  meanOutput,
  resnet18TrainingGraph,
  STEP_IMAGES,
  STEP_LOGITS,
  STEP_LOSS,
  STEP_TARGETS,
  varianceOutput,
  type TrainingGraph,
} from './onnxTrainingGraph.js';
import { MIN_MICRO_BATCH } from './accumulation.js';
import type { Optimizer } from './optimizers.js';

/**
 * RSS of a step per input pixel of each image, all of onnxruntime's buffers for the forward activations and
 * the backward pass together: measured 1.72 GB at 128 px and 3.86 GB at 224 px, batch 32, 2 threads, so
 * (3.86 − 1.72) GB / (32 · (224² − 128²)) ≈ 2.0 kB, with ~0.7 GB for the process, tfjs and the weights.
 */
const STEP_BYTES_PER_IMAGE_PIXEL = 2000;
/** The step may take a quarter of the machine's memory, and at least the wasm path's 1.5 GB. */
function stepBudgetBytes(): number {
  return Math.max(1.5e9, totalmem() / 4);
}

/**
 * The largest micro-batch whose step fits the budget (MIN_MICRO_BATCH at least), or `batchSize` when the
 * whole batch does: 224 px at batch 32 needs ~3.2 GB, one step on a machine with 16 GB.
 */
export function onnxMicroBatch(batchSize: number, imageSize: number, budgetBytes = stepBudgetBytes()): number {
  const fits = Math.floor(budgetBytes / (STEP_BYTES_PER_IMAGE_PIXEL * imageSize * imageSize));
  return Math.min(batchSize, Math.max(MIN_MICRO_BATCH, fits));
}

export interface OnnxStepper {
  readonly threads: number;
  /** One optimisation step; the result means what `trainStep`'s does (mean weighted loss, correct count). */
  step(
    params: ResNet18Params,
    trainable: ReadonlyMap<string, tf.Variable>,
    optimizer: Optimizer,
    batch: Batch,
    weights: readonly number[],
    learningRate: number,
  ): Promise<{ loss: number; correct: number }>;
  dispose(): Promise<void>;
}

export function createOnnxStepper(
  ort: OnnxRuntime,
  options: {
    numClasses: number;
    imageSize: number;
    threads?: number;
    /** Profile the sessions (openSession); the benchmark's per-operator shares. */
    profileFilePrefix?: string;
    /** Most images per graph run; default onnxMicroBatch of each batch. */
    microBatch?: number;
  },
): OnnxStepper {
  const { numClasses, imageSize } = options;
  const threads = options.threads ?? availableParallelism();
  const sessions = new Map<number, Promise<{ graph: TrainingGraph; session: OnnxSession }>>();

  function sessionFor(batchSize: number) {
    let opened = sessions.get(batchSize);
    if (!opened) {
      const graph = resnet18TrainingGraph(batchSize, imageSize, numClasses);
      opened = openSession(ort, graph.model, threads, options.profileFilePrefix).then((session) => ({
        graph,
        session,
      }));
      sessions.set(batchSize, opened);
    }
    return opened;
  }

  /**
   * One graph run on images `x` (a part of the batch, `targets` weighted over the whole batch): adds the
   * gradients into `sums` and its BatchNorm statistics, weighted by its images, into `statistics`; returns
   * the part's share of the loss.
   */
  async function runPart(
    params: ResNet18Params,
    x: Float32Array,
    targets: Float32Array,
    labels: Int32Array,
    sums: Map<string, Float32Array>,
    statistics: Map<string, BatchStatistics>,
  ): Promise<{ loss: number; correct: number }> {
    const n = labels.length;
    const { graph, session } = await sessionFor(n);
    const feeds: Record<string, OnnxTensor> = {
      [STEP_IMAGES]: new ort.Tensor('float32', x, [n, imageSize, imageSize, 3]),
      [STEP_TARGETS]: new ort.Tensor('float32', targets, [n, numClasses]),
    };
    for (const name of graph.parameters) {
      const variable = params.get(name);
      if (!variable) throw new Error(`ResNet-18 parameters have no "${name}"`);
      feeds[name] = new ort.Tensor('float32', variable.dataSync() as Float32Array, variable.shape);
    }
    const outputs = await session.run(feeds);
    try {
      for (const name of graph.parameters) {
        const gradient = outputs[gradientOutput(name)].data as Float32Array;
        const sum = sums.get(name);
        if (!sum) sums.set(name, gradient.slice());
        else for (let i = 0; i < sum.length; i++) sum[i] += gradient[i];
      }
      for (const { name, valuesPerChannel } of graph.batchNorms) {
        if (valuesPerChannel < 2)
          throw new Error(`BatchNorm "${name}" needs more than one value per channel in training mode`);
        const mean = outputs[meanOutput(name)].data as Float32Array;
        const variance = outputs[varianceOutput(name)].data as Float32Array;
        let sum = statistics.get(name);
        if (!sum) {
          sum = { mean: new Float64Array(mean.length), unbiasedVariance: new Float64Array(mean.length), count: 0 };
          statistics.set(name, sum);
        }
        const unbiased = valuesPerChannel / (valuesPerChannel - 1);
        for (let c = 0; c < mean.length; c++) {
          sum.mean[c] += mean[c] * n;
          sum.unbiasedVariance[c] += variance[c] * unbiased * n;
        }
        sum.count += valuesPerChannel;
      }
      return {
        loss: (outputs[STEP_LOSS].data as Float32Array)[0],
        correct: countCorrect(outputs[STEP_LOGITS].data as Float32Array, labels, numClasses),
      };
    } finally {
      for (const output of Object.values(outputs)) output.dispose();
    }
  }

  return {
    threads,
    async step(params, trainable, optimizer, batch, weights, learningRate) {
      const n = batch.y.length;
      const targets = weightedTargets(batch.y, weights, numClasses);
      const pixels = imageSize * imageSize * 3;
      const parts = Math.ceil(n / (options.microBatch ?? onnxMicroBatch(n, imageSize)));
      const sums = new Map<string, Float32Array>();
      const statistics = new Map<string, BatchStatistics>();
      let loss = 0;
      let correct = 0;
      for (let part = 0; part < parts; part++) {
        // Equal parts (sizes differ by one at most), so at most two sessions are built.
        const [from, to] = [Math.round((part * n) / parts), Math.round(((part + 1) * n) / parts)];
        const result = await runPart(
          params,
          batch.x.subarray(from * pixels, to * pixels),
          targets.subarray(from * numClasses, to * numClasses),
          batch.y.subarray(from, to),
          sums,
          statistics,
        );
        loss += result.loss;
        correct += result.correct;
      }
      const gradients = new Map<string, tf.Tensor>();
      for (const [name, variable] of trainable) gradients.set(name, tf.tensor(sums.get(name)!, variable.shape));
      optimizer.step(trainable, gradients, learningRate);
      for (const gradient of gradients.values()) gradient.dispose();
      for (const [name, { mean, unbiasedVariance, count }] of statistics)
        tf.tidy(() =>
          // The biased variance whose unbiased form over `count` values is the micro-batches' average.
          updateRunningStatistics(
            params,
            name,
            tf.tensor1d(Float32Array.from(mean, (value) => value / n)),
            tf.tensor1d(Float32Array.from(unbiasedVariance, (value) => ((value / n) * (count - 1)) / count)),
            count,
          ),
        );
      return { loss, correct };
    },
    async dispose() {
      const opened = await Promise.allSettled(sessions.values());
      sessions.clear();
      for (const result of opened) if (result.status === 'fulfilled') await result.value.session.release();
    },
  };
}

/** A BatchNorm's statistics summed over a step's micro-batches, each weighted by its images. */
interface BatchStatistics {
  mean: Float64Array;
  unbiasedVariance: Float64Array;
  /** Values per channel over the whole batch. */
  count: number;
}

/** One-hot labels scaled by w[label] / Σ w over the batch: the graph's loss is then CrossEntropyLoss(weight=w). */
function weightedTargets(labels: Int32Array, weights: readonly number[], numClasses: number): Float32Array {
  let total = 0;
  for (const label of labels) total += weights[label];
  const targets = new Float32Array(labels.length * numClasses);
  labels.forEach((label, i) => (targets[i * numClasses + label] = weights[label] / total));
  return targets;
}

/** How many rows of `logits` have their largest value at the label (the first one on ties, as argMax). */
function countCorrect(logits: Float32Array, labels: Int32Array, numClasses: number): number {
  let correct = 0;
  labels.forEach((label, i) => {
    let best = 0;
    for (let c = 1; c < numClasses; c++) if (logits[i * numClasses + c] > logits[i * numClasses + best]) best = c;
    if (best === label) correct++;
  });
  return correct;
}
