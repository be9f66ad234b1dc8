/**
 * A training run from dataset folder to run folder, in phases a reader checks one by one:
 *   planRun          audit, labels, subject-aware split (no pixel is read)
 *   initialWeights   before the slow image preparation: a bad path or an offline download fails fast
 *   prepareData      cached preprocessing, the usable examples of each split
 *   initialiseRun    run.json, fresh or resumed from the last checkpoint
 *   trainEpoch       one epoch through the engine, then validation, the best model and a checkpoint
 *   finalEvaluation  the best weights on validation and test: metrics and predictions
 *   explainRun       Grad-CAM on the finished run
 * The loop plans, times, reports and writes run.json; the engine (engine.ts) computes.
 *
 * The PyTorch engine (torch/torchRun.ts) trains a whole plan in the user's Python, which owns its epochs,
 * data loading and checkpoints, so it does not fit the per-epoch seam: after planRun and initialWeights the
 * run goes to trainRunWithTorch, which shares run.json, the final predictions and explainRun with this loop.
 */
import { existsSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AuditReport } from '../audit/audit.js';
import { scanAndAudit } from '../audit/runAudit.js';
import type { CsvLabelTable } from '../audit/csvLabels.js';
import { classWeights, examplesFor, type Example } from '../data/batches.js';
import { prepareImages, type PreparedImages } from '../data/cache.js';
import { assignSplits, findSubjectOverlap, subjectReader, summariseSplits, type SplitName } from '../data/splits.js';
import type { DatasetSpec } from '../datasetSpec.js';
import { chooseEngine, type EngineChoice } from '../engine/choose.js';
import { resnet18ParameterCount } from '../model/resnet18.js';
import { trainWithTorch } from '../torch/torchRun.js';
import type { UnreadableEntry } from '../types.js';
import { claimRunFolder } from '../run/claim.js';
import { runFolderName } from '../run/runFolders.js';
import { explainRun } from '../explain/runExplanations.js';
import { combinedLabeler, type Labeler } from '../labels.js';
import { argmax, computeClassificationMetrics } from '../metrics.js';
import {
  CHECKPOINT_FILE,
  MODEL_FILE,
  RUN_FILE,
  type EpochRecord,
  type Prediction,
  type RunFile,
} from '../run/runFile.js';
import { readRunFile, writeRunFile } from '../run/runFileIo.js';
import { resolveWeights, type ResolvedWeights } from '../weights/resolveWeights.js';
import { TrainingCancelled, type EngineData, type TrainingEngine } from './engine.js';
import type { TrainEventSink } from './events.js';
import { resolveLabels, type ResolvedLabels } from './labelChoice.js';
import type { BackendChoice, TrainSettings } from './settings.js';
import { describeBackend } from '../engine/describe.js';
import { chooseOnnxSteps, createTfjsEngine, describeOnnxSteps, yieldToEventLoop } from './tfjsEngine.js';

/** What the audit and the label choice decided, before any pixel is read. */
export interface RunPlan {
  root: string;
  runDir: string;
  /** The run being resumed, when `--resume` found a checkpoint. */
  previous?: RunFile;
  report: AuditReport;
  spec: DatasetSpec;
  labels: ResolvedLabels;
  labelOf: Labeler;
  subjectOf: (path: string) => string | undefined;
  classes: string[];
  splitOf: Map<string, SplitName>;
  paths: Record<SplitName, string[]>;
  /** Warnings about the split, kept in run.json. */
  notes: string[];
}

export async function trainRun(settings: TrainSettings, emit: TrainEventSink, signal?: AbortSignal): Promise<RunFile> {
  const root = resolve(settings.dataset);
  // First, so that a folder in use or a run that would be overwritten is refused before any work.
  const folder = await claimRunFolder({
    out: settings.out && resolve(settings.out),
    runsFolder: resolve(settings.runsFolder ?? join(root, '..', 'leukemia-audit-runs')),
    name: runFolderName(new Date()),
    resume: settings.resume,
    force: settings.force ?? false,
  });
  if (folder.removed.length > 0)
    emit({
      type: 'log',
      level: 'info',
      message: `Removed ${folder.removed.length} files left by a stopped trainer in ${folder.runDir}: ${folder.removed.join(', ')}`,
    });
  try {
    return await trainInFolder(folder.runDir, settings, emit, signal);
  } catch (error) {
    // Folders made for a run that never got a run.json hold nothing worth keeping (its lock aside).
    if (folder.made.length > 0 && !existsSync(join(folder.runDir, RUN_FILE))) {
      await folder.lock.release();
      await rm(folder.runDir, { recursive: true, force: true });
      for (const parent of folder.made.slice(1)) await rmdir(parent).catch(() => undefined);
    }
    throw error;
  } finally {
    await folder.lock.release();
  }
}

async function trainInFolder(
  runDir: string,
  settings: TrainSettings,
  emit: TrainEventSink,
  signal?: AbortSignal,
): Promise<RunFile> {
  const plan = await planRun(settings, runDir, emit, signal);
  const initial = plan.previous ? undefined : await initialWeights(settings, plan.classes.length, emit, signal);
  const choice = await chooseEngine(resumedEngine(settings, plan.previous), emit);
  if (choice.kind === 'torch') return trainRunWithTorch(plan, settings, initial, choice, emit, signal);
  const onnxSteps = chooseOnnxSteps(settings, emit);
  const backend = onnxSteps ? { ...choice.backend, steps: describeOnnxSteps() } : choice.backend;
  emit({
    type: 'started',
    runDir: plan.runDir,
    backend: describeBackend(backend),
    labelsAreStructural: plan.labels.structural,
  });
  if (backend.steps) emit({ type: 'log', level: 'info', message: `Training steps: ${backend.steps}.` });

  const { prepared, data } = await prepareData(plan, settings, emit, signal);
  const engine = createTfjsEngine({
    settings,
    data,
    prepared,
    initial,
    backend: backend.name,
    onnxSteps,
    runDir: plan.runDir,
    emit,
    signal,
  });
  const run = initialRunFile(plan, settings, engine, backend, prepared);
  if (initial) run.initialWeights = initial.checkpoint;
  try {
    return await completeRun(run, plan, settings, emit, signal, async () => {
      const startEpoch = await resumeRun(run, plan, engine, emit);
      await writeRunFile(plan.runDir, run);
      await trainEpochs(run, startEpoch, plan, settings, engine, data, emit);
      await finalEvaluation(run, plan, engine, data, emit);
    });
  } finally {
    await engine.dispose();
  }
}

/**
 * Trains and predicts (`trainAndPredict` fills history, metrics and predictions), then explains and marks the
 * run completed; a failure or a cancel is recorded in run.json with its reason, and rethrown.
 */
async function completeRun(
  run: RunFile,
  plan: RunPlan,
  settings: TrainSettings,
  emit: TrainEventSink,
  signal: AbortSignal | undefined,
  trainAndPredict: () => Promise<void>,
): Promise<RunFile> {
  try {
    await trainAndPredict();
    // explainRun reads the predictions from run.json, so they are written first.
    await writeRunFile(plan.runDir, run);
    await explainFinishedRun(run, plan.runDir, settings, emit, signal);
    run.status = 'completed';
    await writeRunFile(plan.runDir, run);
    return run;
  } catch (error) {
    run.status = error instanceof TrainingCancelled || signal?.aborted ? 'cancelled' : 'failed';
    run.error = (error as Error).message;
    // With the disk full this write can fail too; the error to report stays the first one.
    await writeRunFile(plan.runDir, run).catch((second: Error) =>
      emit({ type: 'log', level: 'error', message: `run.json could not be marked ${run.status}: ${second.message}` }),
    );
    throw error;
  }
}

/** Audit (headers only: training decodes every image anyway, and reports the ones it cannot), labels, split. */
export async function planRun(
  settings: TrainSettings,
  runDir: string,
  emit: TrainEventSink,
  signal?: AbortSignal,
): Promise<RunPlan> {
  const root = resolve(settings.dataset);
  const previous = settings.resume && existsSync(join(runDir, CHECKPOINT_FILE)) ? await readRunFile(runDir) : undefined;
  if (settings.resume && !previous)
    emit({ type: 'log', level: 'warning', message: `Nothing to resume in ${runDir}; starting from scratch.` });
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
  const { spec, labelOf, subjectOf, splitOf, notes } = planSplit(settings, report, labels, csvTables, imagePaths);
  for (const note of notes) emit({ type: 'log', level: 'warning', message: note });

  const classes = [...new Set([...splitOf.keys()].map((p) => labelOf(p)!))].sort();
  if (classes.length < 2)
    throw new Error(
      `Training needs at least two classes; the chosen labels give ${classes.length} (${classes.join(', ')}).`,
    );
  const pathsOf = (split: SplitName) => [...splitOf].filter(([, s]) => s === split).map(([p]) => p);
  const paths = { train: pathsOf('train'), val: pathsOf('val'), test: pathsOf('test') };
  if (paths.train.length === 0) throw new Error('The split left no training images.');
  return { root, runDir, previous, report, spec, labels, labelOf, subjectOf, classes, splitOf, paths, notes };
}

/** The split of the labelled images, and the warnings it gives (images without subject, subjects in two splits). */
function planSplit(
  settings: TrainSettings,
  report: AuditReport,
  labels: ResolvedLabels,
  csvTables: CsvLabelTable[],
  imagePaths: string[],
) {
  const labelOf = combinedLabeler(labels.sources, csvTables);
  const subjectOf = subjectReader(report.spec.subjectPattern, csvTables, report.spec.subjectFolderDepth);
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
  return { spec, labelOf, subjectOf, splitOf: assignment.splitOf, notes };
}

async function initialWeights(
  settings: TrainSettings,
  numClasses: number,
  emit: TrainEventSink,
  signal?: AbortSignal,
): Promise<ResolvedWeights | undefined> {
  const initial = await resolveWeights(settings.weights, {
    numClasses,
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
          ? `; fc re-initialised for ${numClasses} classes (the checkpoint has ${initial.checkpointClasses})`
          : ''),
    });
  }
  return initial;
}

/** Decodes and resizes every planned image once (cached); the examples are the images that could be read. */
async function prepareData(
  plan: RunPlan,
  settings: TrainSettings,
  emit: TrainEventSink,
  signal?: AbortSignal,
): Promise<{ prepared: PreparedImages; data: EngineData }> {
  emit({ type: 'phase', phase: 'prepare', done: 0, total: plan.splitOf.size });
  const prepared = await prepareImages(plan.root, [...plan.paths.train, ...plan.paths.val, ...plan.paths.test], {
    size: settings.imageSize,
    crop: settings.crop,
    signal,
    onProgress: (done, total) => emit({ type: 'phase', phase: 'prepare', done, total }),
  });
  for (const skipped of prepared.skipped)
    emit({ type: 'log', level: 'warning', message: `Skipped ${skipped.path}: ${skipped.detail}` });
  const usable = (paths: string[]): Example[] =>
    examplesFor(
      paths.filter((p) => prepared.keys.has(p)),
      plan.labelOf,
      plan.classes,
    );
  const data = {
    classes: plan.classes,
    train: usable(plan.paths.train),
    val: usable(plan.paths.val),
    test: usable(plan.paths.test),
  };
  return { prepared, data };
}

/** A fresh run.json, or the one being resumed. */
function initialRunFile(
  plan: RunPlan,
  settings: TrainSettings,
  engine: TrainingEngine,
  backend: RunFile['backend'],
  prepared: PreparedImages,
): RunFile {
  const run = plan.previous ?? newRunFile(plan, settings, backend, prepared.skipped, engine.parameters);
  run.status = 'running';
  run.error = null;
  run.backend = backend;
  return run;
}

function newRunFile(
  plan: RunPlan,
  settings: TrainSettings,
  backend: RunFile['backend'],
  skipped: UnreadableEntry[],
  parameters: number,
): RunFile {
  return {
    schema: 'leukemia-audit/run',
    version: 1,
    createdAt: new Date().toISOString(),
    updatedAt: '',
    status: 'running',
    error: null,
    settings,
    backend,
    dataset: {
      root: plan.root,
      spec: plan.spec,
      findings: plan.report.findings,
      labelsAreStructural: plan.labels.structural,
      classes: plan.classes,
      splits: summariseSplits(plan.splitOf, plan.labelOf, plan.subjectOf),
      skipped: [...plan.report.unreadable, ...skipped],
      notes: plan.notes,
    },
    model: {
      architecture: 'resnet18',
      imageSize: settings.imageSize,
      numClasses: plan.classes.length,
      parameters,
      weightsFile: MODEL_FILE,
    },
    history: [],
    bestEpoch: null,
    metrics: { validation: null, test: null },
    predictions: [],
  };
}

/**
 * Restores the engine to the last checkpoint and run.json to what the checkpoint says was done; returns the
 * first epoch to train (1 for a new run). The checkpoint is the authority: it is written first after each
 * epoch, so run.json may lag one epoch behind it, and model.safetensors may lag when the checkpoint's own
 * epoch was the best — then its weights are the best weights and are written out again.
 */
async function resumeRun(run: RunFile, plan: RunPlan, engine: TrainingEngine, emit: TrainEventSink): Promise<number> {
  if (!plan.previous) return 1;
  const checkpoint = await engine.resume(plan.runDir);
  if (checkpoint.progress) {
    const recovered =
      checkpoint.progress.history.length - run.history.filter((h) => h.epoch <= checkpoint.epoch).length;
    if (recovered > 0)
      emit({
        type: 'log',
        level: 'info',
        message: `Recovered epoch ${checkpoint.epoch}'s record from the checkpoint.`,
      });
    run.history = checkpoint.progress.history;
    run.bestEpoch = checkpoint.progress.bestEpoch;
    if (run.bestEpoch === checkpoint.epoch) await engine.saveModel(plan.runDir, checkpoint.epoch);
  } else {
    // A checkpoint from before progress was stored in it: run.json's record of the epochs it covers.
    run.history = run.history.filter((h) => h.epoch <= checkpoint.epoch);
    if (run.bestEpoch !== null && run.bestEpoch > checkpoint.epoch) run.bestEpoch = null;
  }
  emit({ type: 'log', level: 'info', message: `Resuming ${plan.runDir} after epoch ${checkpoint.epoch}.` });
  return checkpoint.epoch + 1;
}

/** Epochs after the last one in the history, stopping early when validation loss stops improving. */
async function trainEpochs(
  run: RunFile,
  startEpoch: number,
  plan: RunPlan,
  settings: TrainSettings,
  engine: TrainingEngine,
  data: EngineData,
  emit: TrainEventSink,
): Promise<void> {
  let bestLoss = Math.min(
    Infinity,
    ...run.history.filter((h) => h.epoch === run.bestEpoch).map((h) => h.valLoss ?? Infinity),
  );
  let epochsWithoutImprovement = run.bestEpoch === null ? 0 : run.history.length - run.bestEpoch;
  for (let epoch = startEpoch; epoch <= settings.epochs; epoch++) {
    // Checked before the epoch, so a run resumed after it stopped early stays stopped.
    if (settings.patience > 0 && epochsWithoutImprovement >= settings.patience) {
      emit({
        type: 'log',
        level: 'info',
        message: `Stopping early: validation loss has not improved for ${settings.patience} epochs.`,
      });
      return;
    }
    const record = await trainEpoch(epoch, settings, engine, data, emit);
    const monitored = record.valLoss ?? record.trainLoss;
    const best = monitored < bestLoss;
    if (best) {
      bestLoss = monitored;
      epochsWithoutImprovement = 0;
    } else {
      epochsWithoutImprovement++;
    }
    // Checkpoint (with the history) first, then the best model, then run.json: see resumeRun. run.json takes
    // each part only once it is on disk, so even a run marked failed by a failed write agrees with its files.
    const history = [...run.history, record];
    await engine.saveCheckpoint(plan.runDir, epoch, { history, bestEpoch: best ? epoch : run.bestEpoch });
    run.history = history;
    if (best) {
      await engine.saveModel(plan.runDir, epoch);
      run.bestEpoch = epoch;
    }
    await writeRunFile(plan.runDir, run);
    emit({ type: 'epoch', record, best });
  }
}

/** One epoch through the engine, reported after every step, then validated. */
async function trainEpoch(
  epoch: number,
  settings: TrainSettings,
  engine: TrainingEngine,
  data: EngineData,
  emit: TrainEventSink,
): Promise<EpochRecord> {
  const started = performance.now();
  const steps = engine.stepsPerEpoch;
  const totals = await engine.trainEpoch(epoch, async (soFar) => {
    const imagesPerSecond = soFar.seen / ((performance.now() - started) / 1000);
    const remainingImages =
      (steps - soFar.batch) * settings.batchSize + (settings.epochs - epoch) * steps * settings.batchSize;
    emit({
      type: 'progress',
      epoch,
      epochs: settings.epochs,
      batch: soFar.batch,
      batches: steps,
      loss: soFar.lossSum / soFar.seen,
      accuracy: soFar.correct / soFar.seen,
      imagesPerSecond,
      etaSeconds: remainingImages / imagesPerSecond,
    });
    await yieldToEventLoop(); // lets a cancel message in between batches; the engine stops at the next step
  });
  const trainSeconds = (performance.now() - started) / 1000;
  const validation = data.val.length > 0 ? await validate(engine, data.val, data.classes) : undefined;
  return {
    epoch,
    trainLoss: totals.lossSum / Math.max(1, totals.seen),
    trainAccuracy: totals.correct / Math.max(1, totals.seen),
    valLoss: validation ? validation.loss : null,
    valAccuracy: validation ? validation.metrics.accuracy : null,
    valBalancedAccuracy: validation ? validation.metrics.balancedAccuracy : null,
    learningRate: totals.learningRate,
    seconds: (performance.now() - started) / 1000,
    imagesPerSecond: totals.seen / trainSeconds,
  };
}

async function validate(engine: TrainingEngine, examples: Example[], classes: string[]) {
  const { loss, probabilities } = await engine.evaluate('val');
  return { loss, metrics: metricsOf(examples, classes, probabilities) };
}

function metricsOf(examples: Example[], classes: string[], probabilities: number[][]) {
  return computeClassificationMetrics({ classes, yTrue: examples.map((e) => e.label), probabilities });
}

/** The best weights on validation and test: the run's metrics and every prediction. */
async function finalEvaluation(
  run: RunFile,
  plan: RunPlan,
  engine: TrainingEngine,
  data: EngineData,
  emit: TrainEventSink,
): Promise<void> {
  await engine.loadModel(plan.runDir);
  run.predictions = [];
  for (const split of ['val', 'test'] as const) {
    const examples = data[split];
    if (examples.length === 0) continue;
    emit({ type: 'phase', phase: 'evaluate', done: 0, total: examples.length });
    const { probabilities } = await engine.evaluate(split);
    recordPredictions(run, plan, split, examples, probabilities);
  }
}

/** One split's probabilities into run.json: its metrics and every prediction. */
function recordPredictions(
  run: RunFile,
  plan: RunPlan,
  split: 'val' | 'test',
  examples: Example[],
  probabilities: number[][],
): void {
  if (examples.length === 0) return;
  run.metrics[split === 'val' ? 'validation' : 'test'] = metricsOf(examples, plan.classes, probabilities);
  probabilities.forEach((row, i) => {
    const example = examples[i];
    run.predictions.push({
      path: example.path,
      split,
      subject: plan.subjectOf(example.path) ?? null,
      true: example.label,
      predicted: argmax(row),
      probabilities: row,
    } satisfies Prediction);
  });
}

/**
 * The PyTorch engine: it reads the images itself (no preparation here; an image it cannot decode is skipped
 * and named, in the log and in run.json's `dataset.skipped`, as the embedded engine does), trains the whole
 * plan, and hands back the best weights' probabilities, which are judged like the embedded engine's.
 */
async function trainRunWithTorch(
  plan: RunPlan,
  settings: TrainSettings,
  initial: ResolvedWeights | undefined,
  choice: Extract<EngineChoice, { kind: 'torch' }>,
  emit: TrainEventSink,
  signal?: AbortSignal,
): Promise<RunFile> {
  const examples = (paths: string[]) => examplesFor(paths, plan.labelOf, plan.classes);
  const data = { train: examples(plan.paths.train), val: examples(plan.paths.val), test: examples(plan.paths.test) };
  const backend = { name: 'torch' as const, skipped: choice.skipped };
  const run = plan.previous ?? newRunFile(plan, settings, backend, [], resnet18ParameterCount(plan.classes.length));
  run.status = 'running';
  run.settings = settings;
  return completeRun(run, plan, settings, emit, signal, async () => {
    const probabilities = await trainWithTorch({
      settings,
      runDir: plan.runDir,
      root: plan.root,
      classes: plan.classes,
      ...data,
      classWeights: classWeights(plan.classes.map((_, c) => data.train.filter((e) => e.label === c).length)),
      initial,
      interpreter: choice.interpreter,
      run,
      emit,
      signal,
    });
    const skipped = new Set(probabilities.skipped.map((s) => s.path));
    const readable = (examples: Example[]) => examples.filter((e) => !skipped.has(e.path));
    run.dataset.skipped = [...run.dataset.skipped.filter((s) => !skipped.has(s.path)), ...probabilities.skipped];
    run.predictions = [];
    recordPredictions(run, plan, 'val', readable(data.val), probabilities.val);
    recordPredictions(run, plan, 'test', readable(data.test), probabilities.test);
  });
}

/** A resumed run keeps its engine: only PyTorch continues a PyTorch checkpoint, only tfjs a tfjs one. */
function resumedEngine(settings: TrainSettings, previous: RunFile | undefined): TrainSettings {
  if (!previous) return settings;
  const wasTorch = previous.backend.name === 'torch';
  if (wasTorch && settings.backend !== 'auto' && settings.backend !== 'torch')
    throw new Error(`${RUN_FILE} says this run was trained with PyTorch; resume it with --backend torch (or auto).`);
  if (!wasTorch && settings.backend === 'torch')
    throw new Error(
      `${RUN_FILE} says this run was trained with ${previous.backend.name}; resume it with that backend.`,
    );
  if (wasTorch) return { ...settings, backend: 'torch', python: settings.python ?? previous.backend.torch?.python };
  return settings.backend === 'auto' ? { ...settings, backend: previous.backend.name as BackendChoice } : settings;
}

/** Explanations are a bonus on a finished run: a failure here is reported, not fatal. */
async function explainFinishedRun(
  run: RunFile,
  runDir: string,
  settings: TrainSettings,
  emit: TrainEventSink,
  signal?: AbortSignal,
): Promise<void> {
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
