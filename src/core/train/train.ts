/**
 * A training run from dataset folder to run folder: audit, labels, subject-aware split, cached
 * preprocessing, ResNet-18 training with a checkpoint after every epoch, evaluation and run.json.
 */
import * as tf from '@tensorflow/tfjs-core';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { scanAndAudit } from '../audit/runAudit.js';
import { batchCount, batches, classWeights, examplesFor, type Example } from '../data/batches.js';
import { prepareImages, type PreparedImages } from '../data/cache.js';
import { assignSplits, findSubjectOverlap, subjectReader, summariseSplits, type SplitName } from '../data/splits.js';
import { selectBackend } from '../engine/backend.js';
import { runFolderName } from '../editor/runs.js';
import { combinedLabeler } from '../labels.js';
import { argmax, computeClassificationMetrics, type ClassificationMetrics } from '../metrics.js';
import {
  countParameters,
  createResNet18,
  disposeModel,
  forward,
  trainableByName,
  type ResNet18Params,
} from '../model/resnet18.js';
import { exportStateDict, loadStateDict } from '../model/stateDict.js';
import {
  CHECKPOINT_FILE,
  MODEL_FILE,
  readRunFile,
  writeRunFile,
  type EpochRecord,
  type Prediction,
  type RunFile,
} from '../run/runFile.js';
import { resolveWeights } from '../weights/resolveWeights.js';
import { readSafetensors, writeSafetensors, type HostTensor } from '../weights/safetensors.js';
import type { TrainEventSink } from './events.js';
import { resolveLabels } from './labelChoice.js';
import { createOptimizer, scheduledLearningRate, type Optimizer } from './optimizers.js';
import { explainRun } from '../explain/runExplanations.js';
import { createDataParallelTrainer } from './dataParallel.js';
import { FeatureStore, frozenPrefix } from './featureStore.js';
import { trainStep } from './step.js';
import type { TrainSettings } from './settings.js';

export class TrainingCancelled extends Error {
  constructor() {
    super('Training was cancelled');
  }
}

const OPTIMIZER_PREFIX = 'optimizer/';

export async function trainRun(settings: TrainSettings, emit: TrainEventSink, signal?: AbortSignal): Promise<RunFile> {
  const root = resolve(settings.dataset);
  const runDir = resolve(settings.out ?? join(root, '..', 'leukemia-audit-runs', runFolderName(new Date())));
  const previous = settings.resume && existsSync(join(runDir, CHECKPOINT_FILE)) ? await readRunFile(runDir) : undefined;
  if (settings.resume && !previous)
    emit({ type: 'log', level: 'warning', message: `Nothing to resume in ${runDir}; starting from scratch.` });
  // Audit (headers only: training decodes every image anyway, and reports the ones it cannot).
  emit({ type: 'phase', phase: 'audit', done: 0, total: 1 });
  const { report, scan, csvTables } = await scanAndAudit(root, {
    subjectPattern: settings.subjectPattern,
    checkPixels: false,
    signal,
  });
  const imagePaths = scan.images.map((img) => img.path);
  const labels = resolveLabels(settings.labels, report, imagePaths);
  if (labels.structural) {
    emit({
      type: 'log',
      level: 'warning',
      message:
        'Training on labels the audit judged structural (folds, splits or batches): this model predicts the folder, not the diagnosis. The run is marked as such.',
    });
  }
  const labelOf = combinedLabeler(labels.sources, csvTables);
  const subjectOf = subjectReader(report.spec.subjectPattern, csvTables);
  const spec = { ...report.spec, labelSources: labels.sources };
  // Structural labels make the audit's folds meaningless as a split; an explicit request overrides the audit.
  if (labels.structural || settings.split === 'subject-disjoint')
    spec.split = { kind: 'subject-disjoint', seed: settings.seed, validationFraction: 0.2 };
  const assignment = assignSplits(spec, imagePaths, labelOf, subjectOf);
  const notes = [...assignment.notes];
  if (assignment.imagesSplitWithoutSubject > 0) {
    notes.push(
      `${assignment.imagesSplitWithoutSubject} images have no subject id; they were split image by image, so their patients may appear in both training and validation.`,
    );
  }
  const overlap = findSubjectOverlap(assignment.splitOf, subjectOf);
  if (overlap.length > 0)
    notes.push(`${overlap.length} subjects appear in more than one split (e.g. ${overlap[0].subject}).`);
  for (const note of notes) emit({ type: 'log', level: 'warning', message: note });

  const classes = [...new Set([...assignment.splitOf.keys()].map((p) => labelOf(p)!))].sort();
  if (classes.length < 2)
    throw new Error(
      `Training needs at least two classes; the chosen labels give ${classes.length} (${classes.join(', ')}).`,
    );
  const pathsBySplit = (split: SplitName) => [...assignment.splitOf].filter(([, s]) => s === split).map(([p]) => p);
  const trainPaths = pathsBySplit('train');
  const valPaths = pathsBySplit('val');
  const testPaths = pathsBySplit('test');
  if (trainPaths.length === 0) throw new Error('The split left no training images.');

  // Weights before the slow image preparation: a bad path or an offline download fails fast.
  const initial = previous
    ? undefined
    : await resolveWeights(settings.weights, {
        numClasses: classes.length,
        signal,
        onProgress: (done, total) => emit({ type: 'phase', phase: 'weights', done, total: total ?? 0 }),
      });
  if (initial) {
    emit({
      type: 'log',
      level: 'info',
      message:
        `Initial weights: ${initial.source}` +
        (initial.headMismatch
          ? `; fc re-initialised for ${classes.length} classes (the checkpoint has ${initial.checkpointClasses})`
          : ''),
    });
  }

  await mkdir(runDir, { recursive: true });
  const backend = await selectBackend(settings.backend);
  emit({ type: 'started', runDir, backend: backend.name });

  emit({ type: 'phase', phase: 'prepare', done: 0, total: assignment.splitOf.size });
  const prepared = await prepareImages(root, [...trainPaths, ...valPaths, ...testPaths], {
    size: settings.imageSize,
    crop: settings.crop,
    signal,
    onProgress: (done, total) => emit({ type: 'phase', phase: 'prepare', done, total }),
  });
  for (const skipped of prepared.skipped)
    emit({ type: 'log', level: 'warning', message: `Skipped ${skipped.path}: ${skipped.detail}` });
  const usable = (paths: string[]) =>
    examplesFor(
      paths.filter((p) => prepared.keys.has(p)),
      labelOf,
      classes,
    );
  const trainExamples = usable(trainPaths);
  const valExamples = usable(valPaths);
  const testExamples = usable(testPaths);
  const weights = classWeights(classes.map((_, c) => trainExamples.filter((e) => e.label === c).length));

  const frozenUpTo = frozenPrefix(settings.strategy);
  const ways = dataParallelWays(settings, backend.name);
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
  const parallel =
    ways > 1
      ? createDataParallelTrainer({ numClasses: classes.length, imageSize: settings.imageSize, workers: ways })
      : undefined;
  if (parallel) emit({ type: 'log', level: 'info', message: `Training data-parallel over ${ways} cores.` });
  const params = createResNet18(classes.length, settings.seed);
  if (initial) loadStateDict(params, initial.dict, { allowHeadMismatch: true, headSeed: settings.seed });
  const optimizer = createOptimizer(settings.optimizer);
  const trainable = trainableByName(params, settings.strategy);
  const run: RunFile = previous ?? {
    schema: 'leukemia-audit/run',
    version: 1,
    createdAt: new Date().toISOString(),
    updatedAt: '',
    status: 'running',
    error: null,
    settings,
    backend,
    dataset: {
      root,
      spec,
      findings: report.findings,
      labelsAreStructural: labels.structural,
      classes,
      splits: summariseSplits(assignment.splitOf, labelOf, subjectOf),
      skipped: [...report.unreadable, ...prepared.skipped],
      notes,
    },
    model: {
      architecture: 'resnet18',
      imageSize: settings.imageSize,
      numClasses: classes.length,
      parameters: countParameters(params),
      weightsFile: MODEL_FILE,
    },
    history: [],
    bestEpoch: null,
    metrics: { validation: null, test: null },
    predictions: [],
    initialWeights: initial?.checkpoint ?? null,
  };
  run.status = 'running';
  run.backend = backend;

  let startEpoch = 1;
  if (previous) {
    const checkpoint = await readSafetensors(join(runDir, CHECKPOINT_FILE));
    const modelState = new Map<string, HostTensor>();
    const optimizerState = new Map<string, HostTensor>();
    for (const [name, tensor] of checkpoint.tensors) {
      if (name.startsWith(OPTIMIZER_PREFIX)) optimizerState.set(name.slice(OPTIMIZER_PREFIX.length), tensor);
      else modelState.set(name, tensor);
    }
    loadStateDict(params, modelState);
    optimizer.importState(optimizerState);
    startEpoch = Number(checkpoint.metadata.epoch) + 1;
    run.history = run.history.filter((h) => h.epoch < startEpoch);
    emit({ type: 'log', level: 'info', message: `Resuming ${runDir} after epoch ${startEpoch - 1}.` });
  }
  await writeRunFile(runDir, run);

  const batchOptions = { batchSize: settings.batchSize, seed: settings.seed };
  const stepsPerEpoch = batchCount(trainExamples.length, {
    batchSize: settings.batchSize,
    dropLast: trainExamples.length > settings.batchSize,
  });
  const totalSteps = stepsPerEpoch * settings.epochs;
  let bestLoss = Math.min(
    Infinity,
    ...run.history.filter((h) => h.epoch === run.bestEpoch).map((h) => h.valLoss ?? Infinity),
  );
  let epochsWithoutImprovement = run.bestEpoch === null ? 0 : run.history.length - run.bestEpoch;

  let features: FeatureStore | undefined;
  try {
    // finetune/linear: the frozen prefix runs once, in eval mode; epochs train the rest on its cached output.
    if (frozenUpTo) {
      emit({ type: 'phase', phase: 'features', done: 0, total: trainExamples.length });
      features = await FeatureStore.build(
        join(runDir, `.features-${process.pid}.f32`),
        params,
        prepared,
        trainExamples,
        frozenUpTo,
        settings.batchSize,
        (done, total) => emit({ type: 'phase', phase: 'features', done, total }),
        signal,
      );
    }
    const featureInput =
      features && frozenUpTo ? { after: frozenUpTo, exampleShape: features.exampleShape } : undefined;

    for (let epoch = startEpoch; epoch <= settings.epochs; epoch++) {
      const started = performance.now();
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batchIndex = 0;
      let learningRate = settings.learningRate;
      const dropLast = trainExamples.length > settings.batchSize;
      const epochBatches = features
        ? features.batches(settings.batchSize, settings.seed, epoch, dropLast)
        : batches(prepared, trainExamples, { ...batchOptions, epoch, sampling: 'shuffle', augment: true, dropLast });
      for await (const batch of epochBatches) {
        if (signal?.aborted) throw new TrainingCancelled();
        const step = (epoch - 1) * stepsPerEpoch + batchIndex;
        learningRate = scheduledLearningRate(settings.learningRate, settings.schedule, step, totalSteps);
        const result = parallel
          ? await parallel.step(params, trainable, optimizer, batch, weights, learningRate)
          : trainStep(
              params,
              trainable,
              optimizer,
              batch,
              prepared.size,
              classes.length,
              weights,
              learningRate,
              featureInput,
            );
        lossSum += result.loss * batch.y.length;
        correct += result.correct;
        seen += batch.y.length;
        batchIndex++;
        const elapsed = (performance.now() - started) / 1000;
        const imagesPerSecond = seen / elapsed;
        const remainingImages =
          (stepsPerEpoch - batchIndex) * settings.batchSize +
          (settings.epochs - epoch) * stepsPerEpoch * settings.batchSize;
        emit({
          type: 'progress',
          epoch,
          epochs: settings.epochs,
          batch: batchIndex,
          batches: stepsPerEpoch,
          loss: lossSum / seen,
          accuracy: correct / seen,
          imagesPerSecond,
          etaSeconds: remainingImages / imagesPerSecond,
        });
        await yieldToEventLoop(); // lets a cancel message in between batches
      }
      const trainSeconds = (performance.now() - started) / 1000;
      const validation =
        valExamples.length > 0
          ? await evaluate(params, prepared, valExamples, classes, batchOptions.batchSize, signal)
          : undefined;
      const record: EpochRecord = {
        epoch,
        trainLoss: lossSum / Math.max(1, seen),
        trainAccuracy: correct / Math.max(1, seen),
        valLoss: validation ? validation.loss : null,
        valAccuracy: validation ? validation.metrics.accuracy : null,
        valBalancedAccuracy: validation ? validation.metrics.balancedAccuracy : null,
        learningRate,
        seconds: (performance.now() - started) / 1000,
        imagesPerSecond: seen / trainSeconds,
      };
      const monitored = validation ? validation.loss : record.trainLoss;
      const best = monitored < bestLoss;
      if (best) {
        bestLoss = monitored;
        run.bestEpoch = epoch;
        epochsWithoutImprovement = 0;
        await writeSafetensors(join(runDir, MODEL_FILE), exportStateDict(params), {
          format: 'pt',
          classes: JSON.stringify(classes),
          imageSize: String(settings.imageSize),
          crop: settings.crop,
        });
      } else {
        epochsWithoutImprovement++;
      }
      run.history.push(record);
      await saveCheckpoint(runDir, params, optimizer, epoch);
      await writeRunFile(runDir, run);
      emit({ type: 'epoch', record, best });
      if (settings.patience > 0 && epochsWithoutImprovement >= settings.patience && epoch < settings.epochs) {
        emit({
          type: 'log',
          level: 'info',
          message: `Stopping early: validation loss has not improved for ${settings.patience} epochs.`,
        });
        break;
      }
    }

    // Final evaluation with the best weights.
    const bestWeights = await readSafetensors(join(runDir, MODEL_FILE));
    loadStateDict(params, bestWeights.tensors);
    run.predictions = [];
    for (const [split, examples] of [
      ['val', valExamples],
      ['test', testExamples],
    ] as const) {
      if (examples.length === 0) continue;
      emit({ type: 'phase', phase: 'evaluate', done: 0, total: examples.length });
      const result = await evaluate(params, prepared, examples, classes, batchOptions.batchSize, signal);
      run.metrics[split === 'val' ? 'validation' : 'test'] = result.metrics;
      result.predictions.forEach((probabilities, i) => {
        const example = examples[i];
        run.predictions.push({
          path: example.path,
          split,
          subject: subjectOf(example.path) ?? null,
          true: example.label,
          predicted: argmax(probabilities),
          probabilities,
        } satisfies Prediction);
      });
    }
    // Explanations are a bonus on a finished run: a failure here is reported, not fatal. explainRun reads
    // the predictions from run.json, so they are written first.
    await writeRunFile(runDir, run);
    try {
      run.explanations = await explainRun(runDir, {
        layer: explanationLayer(settings.imageSize),
        seed: settings.seed,
        signal,
        onProgress: (done, total) => emit({ type: 'phase', phase: 'explain', done, total }),
        onLog: (message) => emit({ type: 'log', level: 'warning', message }),
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      emit({
        type: 'log',
        level: 'warning',
        message: `Grad-CAM explanations could not be computed: ${(error as Error).message}`,
      });
    }
    run.status = 'completed';
    await writeRunFile(runDir, run);
    return run;
  } catch (error) {
    run.status = error instanceof TrainingCancelled || signal?.aborted ? 'cancelled' : 'failed';
    run.error = (error as Error).message;
    await writeRunFile(runDir, run);
    throw error;
  } finally {
    await features?.dispose();
    await parallel?.dispose();
    optimizer.dispose();
    disposeModel(params);
  }
}

async function evaluate(
  params: ResNet18Params,
  prepared: PreparedImages,
  examples: Example[],
  classes: string[],
  batchSize: number,
  signal?: AbortSignal,
): Promise<{ loss: number; metrics: ClassificationMetrics; predictions: number[][] }> {
  const predictions: number[][] = [];
  let lossSum = 0;
  for await (const batch of batches(prepared, examples, { batchSize, seed: 0, epoch: 0, sampling: 'sequential' })) {
    if (signal?.aborted) throw new TrainingCancelled();
    const n = batch.y.length;
    const { probabilities, losses } = tf.tidy(() => {
      const { logits } = forward(params, tf.tensor4d(batch.x, [n, prepared.size, prepared.size, 3]), {
        training: false,
      });
      const logProbabilities = tf.logSoftmax(logits);
      const picked = tf.neg(
        tf.sum(tf.mul(tf.oneHot(tf.tensor1d(batch.y, 'int32'), classes.length), logProbabilities), 1),
      );
      return { probabilities: tf.exp(logProbabilities).arraySync() as number[][], losses: picked.dataSync() };
    });
    predictions.push(...probabilities.map(normaliseRow));
    for (const l of losses) lossSum += l;
    await yieldToEventLoop();
  }
  const metrics = computeClassificationMetrics({
    classes,
    yTrue: examples.map((e) => e.label),
    probabilities: predictions,
  });
  return { loss: lossSum / examples.length, metrics, predictions };
}

/** float32 softmax rows can sum to 1 ± 1e-7; metrics validate the sum, so renormalise in float64. */
function normaliseRow(row: number[]): number[] {
  const sum = row.reduce((a, b) => a + b, 0);
  return row.map((p) => p / sum);
}

async function saveCheckpoint(
  runDir: string,
  params: ResNet18Params,
  optimizer: Optimizer,
  epoch: number,
): Promise<void> {
  const tensors = exportStateDict(params);
  for (const [name, tensor] of optimizer.exportState()) tensors.set(OPTIMIZER_PREFIX + name, tensor);
  await writeSafetensors(join(runDir, CHECKPOINT_FILE), tensors, {
    format: 'pt',
    epoch: String(epoch),
    optimizer: optimizer.name,
  });
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
 * Grad-CAM's layer for a run: `layer4` (the usual choice, 7×7 at 224 px) unless its map would be coarser
 * than 6×6 — at the demo's 48 px, layer4 is 2×2 and says nothing about where in the cell the model looks —
 * then the deepest layer that still is. Each stage halves the resolution: maxpool S/4, layer1 S/4, layer2
 * S/8, layer3 S/16, layer4 S/32.
 */
export function explanationLayer(imageSize: number): string {
  const MIN_SIDE = 6;
  for (const [layer, stride] of [
    ['layer4', 32],
    ['layer3', 16],
    ['layer2', 8],
  ] as const) {
    if (Math.ceil(imageSize / stride) >= MIN_SIDE) return layer;
  }
  return 'layer1';
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolveYield) => setImmediate(resolveYield));
}
