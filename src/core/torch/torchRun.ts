/**
 * The PyTorch engine's part of a training run: leukemia-audit has planned the run (labels, split, class weights,
 * hyper-parameters); this writes the plan, lets the bundled Python trainer train on it, and judges the result
 * with the same code as the embedded engine: metrics from the per-image probabilities, Grad-CAM gallery and
 * checks (computed by leukemia-audit from model.safetensors), run.json.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Example } from '../data/batches.js';
import { selectBackend } from '../engine/backend.js';
import { describeBackend } from '../engine/describe.js';
import type { TrainEventSink } from '../train/events.js';
import type { TrainSettings } from '../train/settings.js';
import type { RunFile, TorchEngineReport } from '../run/runFile.js';
import type { UnreadableEntry } from '../types.js';
import { writeRunFile } from '../run/runFileIo.js';
import type { ResolvedWeights } from '../weights/resolveWeights.js';
import { writeSafetensors } from '../weights/safetensors.js';
import type { TorchInterpreter } from './interpreter.js';
import { TORCH_INITIAL_WEIGHTS_FILE, TORCH_PREDICTIONS_FILE, createTorchPlan, writeTorchPlan } from './plan.js';
import { runTorchTrainer } from './runTrainer.js';
import { describeEngineInfo } from './trainerProcess.js';

export interface TorchRunInput {
  settings: TrainSettings;
  runDir: string;
  root: string;
  classes: string[];
  train: Example[];
  val: Example[];
  test: Example[];
  classWeights: number[];
  initial: ResolvedWeights | undefined;
  interpreter: TorchInterpreter;
  /** The run file as planned (status running); history, metrics and predictions are filled in here. */
  run: RunFile;
  emit: TrainEventSink;
  signal?: AbortSignal;
}

export interface TorchPredictions {
  /** The probabilities of the best weights, in example order, for the examples not in `skipped`. */
  val: number[][];
  test: number[][];
  /** Images the trainer could not decode: left out of training and of `val`/`test`, as the embedded engine does. */
  skipped: UnreadableEntry[];
}

/** Trains with PyTorch; returns the probabilities of the best weights for val and test, and what was skipped. */
export async function trainWithTorch(input: TorchRunInput): Promise<TorchPredictions> {
  const { settings, runDir, interpreter, run, emit } = input;
  let initialWeights: string | null = null;
  if (input.initial) {
    await writeSafetensors(join(runDir, TORCH_INITIAL_WEIGHTS_FILE), input.initial.dict, { format: 'pt' });
    initialWeights = TORCH_INITIAL_WEIGHTS_FILE;
  }
  const plan = createTorchPlan({
    settings,
    datasetRoot: input.root,
    classes: input.classes,
    train: input.train,
    val: input.val,
    test: input.test,
    classWeights: input.classWeights,
    initialWeights,
    device: settings.device,
  });
  const planFile = await writeTorchPlan(runDir, plan);
  const processes = torchProcesses(settings, interpreter);
  run.backend = { ...run.backend, name: 'torch', torch: expectedEngine(interpreter, settings.device, processes) };
  emit({
    type: 'started',
    runDir,
    backend: describeBackend(run.backend),
    labelsAreStructural: run.dataset.labelsAreStructural,
  });
  if (processes > 1)
    emit({ type: 'log', level: 'info', message: `Training with ${processes} processes (DistributedDataParallel).` });
  await writeRunFile(runDir, run);

  const outcome = await runTorchTrainer({
    python: interpreter.python,
    planFile,
    processes,
    emit,
    signal: input.signal,
    onEngine: (engine) => {
      run.backend.torch = {
        ...run.backend.torch!,
        torch: engine.torch,
        torchvision: engine.torchvision,
        device: engine.device,
        deviceName: engine.deviceName,
        processes: engine.processes,
        amp: engine.amp,
        channelsLast: engine.channelsLast,
      };
      emit({ type: 'log', level: 'info', message: describeEngineInfo(engine) });
    },
  });
  run.history = outcome.history;
  run.bestEpoch = outcome.bestEpoch;
  const predictions = await readPredictions(join(runDir, TORCH_PREDICTIONS_FILE), input.val, input.test);
  // Grad-CAM runs in leukemia-audit's own engine on the trained weights.
  await selectBackend('auto');
  return predictions;
}

/** `--processes`: as asked, or under auto one per CUDA device when there are several (DDP), else one. */
export function torchProcesses(
  settings: Pick<TrainSettings, 'processes' | 'device'>,
  interpreter: TorchInterpreter,
): number {
  if (settings.processes > 0) return settings.processes;
  const onCuda = settings.device === 'auto' || settings.device === 'cuda';
  return onCuda && interpreter.cuda.length > 1 ? interpreter.cuda.length : 1;
}

/** The engine as the probe predicts it, until the trainer reports what it chose. */
function expectedEngine(interpreter: TorchInterpreter, device: string, processes: number): TorchEngineReport {
  const resolved =
    device !== 'auto' ? device : interpreter.cuda.length > 0 ? 'cuda:0' : interpreter.mps ? 'mps' : 'cpu';
  const cudaIndex = /^cuda(?::(\d+))?$/.exec(resolved);
  const deviceName = cudaIndex
    ? (interpreter.cuda[Number(cudaIndex[1] ?? 0)] ?? resolved)
    : resolved === 'mps'
      ? 'Apple MPS'
      : 'cpu';
  return {
    python: interpreter.python,
    pythonVersion: interpreter.pythonVersion,
    torch: interpreter.torch,
    torchvision: interpreter.torchvision,
    device: resolved,
    deviceName,
    processes,
    amp: resolved.startsWith('cuda'),
    channelsLast: resolved.startsWith('cuda'),
  };
}

async function readPredictions(file: string, val: Example[], test: Example[]): Promise<TorchPredictions> {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`The PyTorch trainer left no readable ${file}: ${(error as Error).message}`, { cause: error });
  }
  const skipped = skippedImages(file, parsed.skipped);
  const left = new Set(skipped.map((s) => s.path));
  const rows = (split: 'val' | 'test', examples: Example[]): number[][] => {
    const count = examples.filter((e) => !left.has(e.path)).length;
    const value = parsed[split];
    if (!Array.isArray(value) || value.length !== count)
      throw new Error(
        `${file}: expected ${count} ${split} predictions, found ${Array.isArray(value) ? value.length : 'none'}`,
      );
    return value.map((row, i) => {
      if (!Array.isArray(row) || row.some((p) => typeof p !== 'number' || !Number.isFinite(p)))
        throw new Error(`${file}: ${split} prediction ${i} is not a list of probabilities`);
      const sum = row.reduce((a: number, b: number) => a + b, 0);
      return row.map((p: number) => p / sum);
    });
  };
  return { val: rows('val', val), test: rows('test', test), skipped };
}

/** The trainer's `skipped` list: `[{path, detail}]` (absent from a trainer that skipped nothing). */
function skippedImages(file: string, value: unknown): UnreadableEntry[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${file}: "skipped" is not a list`);
  return value.map((entry, i) => {
    const { path, detail } = (entry ?? {}) as Record<string, unknown>;
    if (typeof path !== 'string' || typeof detail !== 'string')
      throw new Error(`${file}: skipped entry ${i} is not {path, detail}`);
    return { path, reason: 'corrupt', detail };
  });
}
