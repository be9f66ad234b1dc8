/**
 * Full training steps on onnxruntime's native CPU kernels, on every core: the step graph
 * (onnxTrainingGraph.ts) computes the loss, the logits, every parameter's gradient and the BatchNorm batch
 * statistics; the weights stay in the tfjs variables, which the optimiser (optimizers.ts) updates as on the
 * tfjs path, so checkpoints, resuming and evaluation do not change. One session per batch size (a run has
 * one, its last short batch being dropped).
 *
 * Unlike the data-parallel wasm path, BatchNorm sees the whole batch at once, as in PyTorch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
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
import type { Optimizer } from './optimizers.js';

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

  return {
    threads,
    async step(params, trainable, optimizer, batch, weights, learningRate) {
      const n = batch.y.length;
      const { graph, session } = await sessionFor(n);
      const feeds: Record<string, OnnxTensor> = {
        [STEP_IMAGES]: new ort.Tensor('float32', batch.x, [n, imageSize, imageSize, 3]),
        [STEP_TARGETS]: new ort.Tensor('float32', weightedTargets(batch.y, weights, numClasses), [n, numClasses]),
      };
      for (const name of graph.parameters) {
        const variable = params.get(name);
        if (!variable) throw new Error(`ResNet-18 parameters have no "${name}"`);
        feeds[name] = new ort.Tensor('float32', variable.dataSync() as Float32Array, variable.shape);
      }
      const outputs = await session.run(feeds);
      try {
        const gradients = new Map<string, tf.Tensor>();
        for (const [name, variable] of trainable)
          gradients.set(name, tf.tensor(outputs[gradientOutput(name)].data as Float32Array, variable.shape));
        optimizer.step(trainable, gradients, learningRate);
        for (const gradient of gradients.values()) gradient.dispose();
        for (const { name, valuesPerChannel } of graph.batchNorms)
          tf.tidy(() =>
            updateRunningStatistics(
              params,
              name,
              tf.tensor1d(outputs[meanOutput(name)].data as Float32Array),
              tf.tensor1d(outputs[varianceOutput(name)].data as Float32Array),
              valuesPerChannel,
            ),
          );
        return {
          loss: (outputs[STEP_LOSS].data as Float32Array)[0],
          correct: countCorrect(outputs[STEP_LOGITS].data as Float32Array, batch.y, numClasses),
        };
      } finally {
        for (const output of Object.values(outputs)) output.dispose();
      }
    },
    async dispose() {
      const opened = await Promise.allSettled(sessions.values());
      sessions.clear();
      for (const result of opened) if (result.status === 'fulfilled') await result.value.session.release();
    },
  };
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
