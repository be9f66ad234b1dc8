/**
 * The embedded engine: ResNet-18 in tfjs (wasm, or tfjs-node when it installs) on images prepared by the
 * cache. Full training's steps run on onnxruntime when it loads (onnxStep.ts; the tfjs variables keep the
 * weights and the optimiser updates them), else on tfjs, data-parallel over worker threads; the head-only
 * strategies train on cached features of a frozen prefix.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { batchCount, batches, classWeights, type Example } from '../data/batches.js';
import type { PreparedImages } from '../data/cache.js';
import { countParameters, createResNet18, disposeModel, trainableByName } from '../model/resnet18.js';
import { exportStateDict, loadStateDict } from '../model/stateDict.js';
import { CHECKPOINT_FILE, MODEL_FILE } from '../run/runFile.js';
import { checkpointMetadata, readCheckpointMetadata } from '../run/runFileIo.js';
import type { ResolvedWeights } from '../weights/resolveWeights.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../weights/safetensors.js';
import { createInferenceEngine } from '../infer/engine.js';
import { choiceFromEnvironment, tryLoadOnnxRuntime, type OnnxRuntime } from '../infer/onnxRuntime.js';
import { microBatchSize } from './accumulation.js';
import { createDataParallelTrainer, inferLogits } from './dataParallel.js';
import { createOnnxStepper, onnxMicroBatch } from './onnxStep.js';
import { TrainingCancelled, type EngineData, type EpochSoFar, type TrainingEngine } from './engine.js';
import type { TrainEventSink } from './events.js';
import { FeatureStore, frozenPrefix } from './featureStore.js';
import { createOptimizer, scheduledLearningRate } from './optimizers.js';
import type { TrainSettings } from './settings.js';
import { trainStep } from './step.js';

const OPTIMIZER_PREFIX = 'optimizer/';

export interface TfjsEngineOptions {
  settings: TrainSettings;
  data: EngineData;
  prepared: PreparedImages;
  /** Initial weights; absent when training from scratch or resuming. */
  initial?: ResolvedWeights;
  backend: string;
  /** onnxruntime, when it computes the steps (chooseOnnxSteps). */
  onnxSteps?: OnnxRuntime;
  /** Where the frozen prefix's cached features are written (finetune/linear). */
  runDir: string;
  emit: TrainEventSink;
  signal?: AbortSignal;
}

export function createTfjsEngine(options: TfjsEngineOptions): TrainingEngine {
  const { settings, data, prepared, initial, emit, signal } = options;
  const numClasses = data.classes.length;
  const frozenUpTo = frozenPrefix(settings.strategy);
  if (frozenUpTo && settings.workers > 1) {
    emit({
      type: 'log',
      level: 'info',
      message: `--workers ${settings.workers} is ignored with --strategy ${settings.strategy}: only the head trains, on cached features.`,
    });
  }
  if (frozenUpTo && settings.weights === 'none') {
    emit({
      type: 'log',
      level: 'warning',
      message: `--strategy ${settings.strategy} freezes randomly initialised layers (--weights none); it is meant for pretrained weights.`,
    });
  }
  const native = options.onnxSteps;
  const ways = native ? 1 : dataParallelWays(settings, options.backend);
  const microBatch = native ? undefined : accumulatedMicroBatch(settings, options.backend, ways);
  const parallel =
    ways > 1 || microBatch
      ? createDataParallelTrainer({ numClasses, imageSize: settings.imageSize, workers: ways, microBatch })
      : undefined;
  if (ways > 1) emit({ type: 'log', level: 'info', message: `Training data-parallel over ${ways} cores.` });
  if (microBatch)
    emit({
      type: 'log',
      level: 'info',
      message:
        `Gradient accumulation: each core computes its part of a batch of ${settings.batchSize} in micro-batches of at most ` +
        `${microBatch} images (the step at ${settings.imageSize} px would outgrow the memory budget); one optimiser step per batch, ` +
        `BatchNorm statistics per micro-batch.`,
    });
  const stepper = native ? createOnnxStepper(native, { numClasses, imageSize: prepared.size }) : undefined;
  if (stepper) {
    const onnxMicro = onnxMicroBatch(settings.batchSize, prepared.size);
    if (onnxMicro < settings.batchSize)
      emit({
        type: 'log',
        level: 'info',
        message:
          `Gradient accumulation: each batch of ${settings.batchSize} runs through onnxruntime in micro-batches of at most ` +
          `${onnxMicro} images (the step at ${prepared.size} px would outgrow a quarter of this machine's memory); one optimiser ` +
          `step per batch, BatchNorm statistics per micro-batch.`,
      });
    if (settings.workers > 1)
      emit({
        type: 'log',
        level: 'info',
        message: `--workers ${settings.workers} is ignored: onnxruntime's steps use every core by themselves.`,
      });
  }
  const params = createResNet18(numClasses, settings.seed);
  if (initial) loadStateDict(params, initial.dict, { allowHeadMismatch: true, headSeed: settings.seed });
  const optimizer = createOptimizer(settings.optimizer);
  const trainable = trainableByName(params, settings.strategy);
  const weights = classWeights(data.classes.map((_, c) => data.train.filter((e) => e.label === c).length));
  const dropLast = data.train.length > settings.batchSize;
  const stepsPerEpoch = batchCount(data.train.length, { batchSize: settings.batchSize, dropLast });
  const totalSteps = stepsPerEpoch * settings.epochs;
  let features: FeatureStore | undefined;

  /** finetune/linear: the frozen prefix runs once, in eval mode; epochs train the rest on its cached output. */
  async function featureStore(): Promise<FeatureStore | undefined> {
    if (!frozenUpTo || features) return features;
    emit({ type: 'phase', phase: 'features', done: 0, total: data.train.length });
    features = await FeatureStore.build(
      join(options.runDir, `.features-${process.pid}.f32`),
      params,
      prepared,
      data.train,
      frozenUpTo,
      settings.batchSize,
      (done, total) => emit({ type: 'phase', phase: 'features', done, total }),
      signal,
      (message) =>
        emit({ type: 'log', level: 'info', message: `features of the frozen ${frozenUpTo} prefix: ${message}` }),
    );
    return features;
  }

  return {
    parameters: countParameters(params),
    stepsPerEpoch,

    async resume(runDir) {
      const file = join(runDir, CHECKPOINT_FILE);
      const checkpoint = await readSafetensors(file);
      const info = readCheckpointMetadata(checkpoint.metadata, file);
      const modelState = new Map<string, HostTensor>();
      const optimizerState = new Map<string, HostTensor>();
      for (const [name, tensor] of checkpoint.tensors) {
        if (name.startsWith(OPTIMIZER_PREFIX)) optimizerState.set(name.slice(OPTIMIZER_PREFIX.length), tensor);
        else modelState.set(name, tensor);
      }
      loadStateDict(params, modelState);
      optimizer.importState(optimizerState);
      return info;
    },

    async trainEpoch(epoch, onStep) {
      const cached = await featureStore();
      const featureInput = cached && frozenUpTo ? { after: frozenUpTo, exampleShape: cached.exampleShape } : undefined;
      const soFar: EpochSoFar = {
        batch: 0,
        batches: stepsPerEpoch,
        lossSum: 0,
        correct: 0,
        seen: 0,
        learningRate: settings.learningRate,
      };
      const epochBatches = cached
        ? cached.batches(settings.batchSize, settings.seed, epoch, dropLast)
        : batches(prepared, data.train, {
            batchSize: settings.batchSize,
            seed: settings.seed,
            epoch,
            sampling: 'shuffle',
            augment: true,
            dropLast,
          });
      for await (const batch of epochBatches) {
        if (signal?.aborted) throw new TrainingCancelled();
        const step = (epoch - 1) * stepsPerEpoch + soFar.batch;
        soFar.learningRate = scheduledLearningRate(settings.learningRate, settings.schedule, step, totalSteps);
        const result = stepper
          ? await stepper.step(params, trainable, optimizer, batch, weights, soFar.learningRate)
          : parallel
            ? await parallel.step(params, trainable, optimizer, batch, weights, soFar.learningRate)
            : trainStep(
                params,
                trainable,
                optimizer,
                batch,
                prepared.size,
                numClasses,
                weights,
                soFar.learningRate,
                featureInput,
              );
        soFar.lossSum += result.loss * batch.y.length;
        soFar.correct += result.correct;
        soFar.seen += batch.y.length;
        soFar.batch++;
        await onStep(soFar);
      }
      return soFar;
    },

    async evaluate(split) {
      const examples: Example[] = data[split];
      // With native steps, validation is native too: onnxruntime on every core, on this epoch's weights.
      const inference = stepper
        ? await createInferenceEngine({ params, imageSize: prepared.size, engine: 'onnxruntime' })
        : undefined;
      const probabilities: number[][] = [];
      let lossSum = 0;
      try {
        const sequential = { batchSize: settings.batchSize, seed: 0, epoch: 0, sampling: 'sequential' } as const;
        for await (const batch of batches(prepared, examples, sequential)) {
          if (signal?.aborted) throw new TrainingCancelled();
          const n = batch.y.length;
          // Every core when the data-parallel threads exist (evaluation is forward passes only).
          const logits = inference
            ? await inference.logits(batch.x, n)
            : parallel
              ? await parallel.infer(params, batch.x, n)
              : inferLogits(params, batch.x, n, prepared.size);
          for (let i = 0; i < n; i++) {
            const { probabilities: row, logProbability } = softmaxRow(
              logits.subarray(i * numClasses, (i + 1) * numClasses),
            );
            probabilities.push(row);
            lossSum -= logProbability[batch.y[i]];
          }
          await yieldToEventLoop();
        }
      } finally {
        await inference?.dispose();
      }
      return { loss: lossSum / examples.length, probabilities };
    },

    async saveModel(runDir, epoch) {
      await writeSafetensors(join(runDir, MODEL_FILE), exportStateDict(params), {
        format: 'pt',
        epoch: String(epoch),
        classes: JSON.stringify(data.classes),
        imageSize: String(settings.imageSize),
        crop: settings.crop,
      });
    },

    async saveCheckpoint(runDir, epoch, progress) {
      const tensors = exportStateDict(params);
      for (const [name, tensor] of optimizer.exportState()) tensors.set(OPTIMIZER_PREFIX + name, tensor);
      await writeSafetensors(join(runDir, CHECKPOINT_FILE), tensors, {
        format: 'pt',
        optimizer: optimizer.name,
        ...checkpointMetadata(epoch, progress),
      });
    },

    async loadModel(runDir) {
      loadStateDict(params, (await readSafetensors(join(runDir, MODEL_FILE))).tensors);
    },

    async dispose() {
      await features?.dispose();
      await parallel?.dispose();
      await stepper?.dispose();
      optimizer.dispose();
      disposeModel(params);
    },
  };
}

/** run.json's `backend.steps` when onnxruntime computes them: "onnxruntime (CPU), 2 threads". */
export function describeOnnxSteps(threads = availableParallelism()): string {
  return `onnxruntime (CPU), ${threads} thread${threads === 1 ? '' : 's'}`;
}

/** Environment variable choosing what computes full training steps: `auto` (default), `onnxruntime` or `tfjs`. */
export const TRAINING_STEPS_ENV = 'LEUKEMIA_AUDIT_TRAINING_STEPS';
const TRAINING_STEPS = ['auto', 'onnxruntime', 'tfjs'] as const;

/**
 * onnxruntime, when full training's steps should run on it: under `auto` whenever it loads (measured here on
 * 2 cores, 128 px, batch 32: ~2.5× the data-parallel wasm steps), else undefined with the reason logged.
 * The head-only strategies train a few layers on cached features and stay on tfjs.
 */
export function chooseOnnxSteps(
  settings: Pick<TrainSettings, 'strategy'>,
  emit: TrainEventSink,
): OnnxRuntime | undefined {
  const choice = choiceFromEnvironment(TRAINING_STEPS_ENV, TRAINING_STEPS);
  if (choice === 'tfjs' || settings.strategy !== 'full') return undefined;
  const { ort, unavailable } = tryLoadOnnxRuntime(choice === 'onnxruntime');
  if (unavailable) emit({ type: 'log', level: 'info', message: `Training steps on tfjs: ${unavailable}.` });
  return ort;
}

/**
 * How many ways to split each batch. Only the wasm backend is single-threaded (native TensorFlow threads
 * itself), and only full training has enough work per step. Measured here on 2 idle cores, ResNet-18,
 * batch 32 (scripts/bench-parallel.ts): ×1.67 at 128 px but ×0.89 at 48 px, where publishing weights and
 * summing gradients outweigh the halved compute — hence auto starts at 96 px.
 */
export function dataParallelWays(
  settings: Pick<TrainSettings, 'workers' | 'strategy' | 'imageSize'>,
  backend: string,
): number {
  if (settings.strategy !== 'full' || backend !== 'wasm') return 1;
  if (settings.workers > 0) return settings.workers;
  return settings.imageSize >= 96 ? Math.min(2, availableParallelism()) : 1;
}

/**
 * The micro-batch when full training on wasm must accumulate gradients (each thread's part of a batch
 * outgrows `microBatchSize`), else undefined. tfjs-node has no 4 GiB heap, and only full training keeps
 * the activations of the whole network.
 */
export function accumulatedMicroBatch(
  settings: Pick<TrainSettings, 'strategy' | 'imageSize' | 'batchSize'>,
  backend: string,
  ways: number,
): number | undefined {
  if (settings.strategy !== 'full' || backend !== 'wasm') return undefined;
  const microBatch = microBatchSize(settings.imageSize, ways);
  return Math.ceil(settings.batchSize / ways) > microBatch ? microBatch : undefined;
}

/** Softmax and log-softmax of one row of logits, in float64 (so the probabilities sum to 1 as metrics check). */
function softmaxRow(logits: Float32Array): { probabilities: number[]; logProbability: number[] } {
  const top = Math.max(...logits);
  const logSum = Math.log(logits.reduce((sum, z) => sum + Math.exp(z - top), 0));
  const logProbability = Array.from(logits, (z) => z - top - logSum);
  const exps = logProbability.map(Math.exp);
  const total = exps.reduce((a, b) => a + b, 0);
  return { probabilities: exps.map((p) => p / total), logProbability };
}

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolveYield) => setImmediate(resolveYield));
}
