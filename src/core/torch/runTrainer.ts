/**
 * Runs the bundled PyTorch trainer on a plan and turns its JSON-lines stdout into leukemia-audit events.
 * It always ends: with the trainer's result, with TrainingCancelled, or with an error naming the interpreter
 * and the last lines of its stderr (import error, out of memory, killed) — never by waiting on a dead process.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EpochRecord } from '../run/runFile.js';
import type { TrainEvent } from '../train/events.js';
import { TrainingCancelled } from '../train/cancelled.js';
import { lastLines } from './interpreter.js';
import { TORCH_CANCEL_FILE } from './plan.js';

export const TORCH_TRAINER_FILE = 'train_resnet18.py';
/** After a cancel the trainer finishes its batch; one that does not exit by then is killed. */
const CANCEL_GRACE_MS = 60_000;
const STDERR_LINES_KEPT = 12;

/** What the trainer reports about itself once it has chosen its device. */
export interface TorchEngineInfo {
  torch: string;
  torchvision: string;
  python: string;
  device: string;
  deviceName: string;
  processes: number;
  amp: boolean;
  channelsLast: boolean;
  loaderWorkers: number;
  threads: number;
}

export interface TorchTrainerOutcome {
  engine: TorchEngineInfo;
  history: EpochRecord[];
  bestEpoch: number | null;
}

export interface RunTrainerOptions {
  python: string;
  planFile: string;
  /** >1 launches through torch.distributed.run (DDP, one process per device or CPU share). */
  processes: number;
  emit: (event: TrainEvent) => void;
  onEngine?: (engine: TorchEngineInfo) => void;
  signal?: AbortSignal;
}

/** The bundled trainer: next to the bundle (dist/torch/), or in the source tree when run through tsx. */
export function torchTrainerPath(): string {
  for (const file of [join(__dirname, 'torch', TORCH_TRAINER_FILE), join(__dirname, '..', '..', 'trainer', 'torch', TORCH_TRAINER_FILE)])
    if (existsSync(file)) return file;
  throw new Error(`The PyTorch trainer ${TORCH_TRAINER_FILE} is missing next to ${__dirname} (built by scripts/build.mjs)`);
}

export function trainerCommand(python: string, planFile: string, processes: number): string[] {
  const script = torchTrainerPath();
  if (processes <= 1) return [python, '-u', script, planFile];
  return [python, '-u', '-m', 'torch.distributed.run', '--standalone', `--nproc_per_node=${processes}`, script, planFile];
}

export function runTorchTrainer(options: RunTrainerOptions): Promise<TorchTrainerOutcome> {
  const { python, planFile, processes, emit, signal } = options;
  const runDir = dirname(planFile);
  const cancelFile = join(runDir, TORCH_CANCEL_FILE);
  const [command, ...args] = trainerCommand(python, planFile, processes);
  return new Promise((resolveRun, rejectRun) => {
    let engine: TorchEngineInfo | undefined;
    let history: EpochRecord[] = [];
    let bestEpoch: number | null = null;
    let result = false;
    let cancelled = false;
    const stderr: string[] = [];
    void unlink(cancelFile).catch(() => undefined);
    const child = spawn(command, args, {
      cwd: runDir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1', LEUKEMIA_AUDIT_PARENT_PID: String(process.pid) },
    });
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      void writeFile(cancelFile, '').catch(() => undefined);
      killTimer = setTimeout(() => child.kill('SIGKILL'), CANCEL_GRACE_MS);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > STDERR_LINES_KEPT) stderr.shift();
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = parseTrainerLine(line);
      switch (message.type) {
        case 'engine':
          engine = message.engine;
          options.onEngine?.(engine);
          break;
        case 'resumed':
          history = message.history;
          emit({ type: 'log', level: 'info', message: `Resuming ${runDir} after epoch ${message.epoch}.` });
          break;
        case 'event':
          if (message.event.type === 'epoch') {
            history.push(message.event.record);
            if (message.event.best) bestEpoch = message.event.record.epoch;
          }
          emit(message.event);
          break;
        case 'cancelled':
          cancelled = true;
          break;
        case 'result':
          result = true;
          bestEpoch = message.bestEpoch;
          break;
      }
    });

    child.on('error', (error) => finish(new Error(`Could not start ${python}: ${error.message}`)));
    child.on('close', (code, exitSignal) => {
      if (cancelled || (signal?.aborted && !result)) return finish(new TrainingCancelled());
      if (code === 0 && result && engine) return finish(undefined);
      const how = exitSignal ? `was killed (${exitSignal})` : `exited with code ${code}`;
      const tail = stderr.join('\n').trim();
      finish(
        new Error(
          `The PyTorch trainer (${python}) ${how}${code === 0 ? ' without a result' : ''}.` +
            (tail ? `\nLast lines of its stderr:\n${lastLines(tail, STDERR_LINES_KEPT)}` : ''),
        ),
      );
    });

    let finished = false;
    function finish(error: Error | undefined) {
      if (finished) return;
      finished = true;
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', onAbort);
      void unlink(cancelFile).catch(() => undefined);
      if (error) rejectRun(error);
      else resolveRun({ engine: engine!, history, bestEpoch });
    }
  });
}

type TrainerLine =
  | { type: 'engine'; engine: TorchEngineInfo }
  | { type: 'resumed'; epoch: number; history: EpochRecord[] }
  | { type: 'event'; event: TrainEvent }
  | { type: 'cancelled' }
  | { type: 'result'; bestEpoch: number | null };

/** One stdout line, field by field; anything that is not one of the trainer's events is passed on as a log line. */
export function parseTrainerLine(line: string): TrainerLine {
  const asLog = (): TrainerLine => ({ type: 'event', event: { type: 'log', level: 'info', message: line } });
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(line);
  } catch {
    return asLog();
  }
  if (typeof value !== 'object' || value === null) return asLog();
  const num = (key: string) => (typeof value[key] === 'number' ? (value[key] as number) : NaN);
  const str = (key: string) => (typeof value[key] === 'string' ? (value[key] as string) : '');
  switch (value.type) {
    case 'engine':
      return {
        type: 'engine',
        engine: {
          torch: str('torch'),
          torchvision: str('torchvision'),
          python: str('python'),
          device: str('device'),
          deviceName: str('deviceName'),
          processes: num('processes'),
          amp: value.amp === true,
          channelsLast: value.channelsLast === true,
          loaderWorkers: num('loaderWorkers'),
          threads: num('threads'),
        },
      };
    case 'resumed':
      return { type: 'resumed', epoch: num('epoch'), history: parseHistory(value.history) };
    case 'log': {
      const level = value.level === 'warning' || value.level === 'error' ? value.level : 'info';
      return { type: 'event', event: { type: 'log', level, message: str('message') } };
    }
    case 'phase':
      return value.phase === 'evaluate'
        ? { type: 'event', event: { type: 'phase', phase: 'evaluate', done: num('done'), total: num('total') } }
        : asLog();
    case 'progress':
      return {
        type: 'event',
        event: {
          type: 'progress',
          epoch: num('epoch'),
          epochs: num('epochs'),
          batch: num('batch'),
          batches: num('batches'),
          loss: num('loss'),
          accuracy: num('accuracy'),
          imagesPerSecond: num('imagesPerSecond'),
          etaSeconds: num('etaSeconds'),
        },
      };
    case 'epoch': {
      const [record] = parseHistory([value.record]);
      return record ? { type: 'event', event: { type: 'epoch', record, best: value.best === true } } : asLog();
    }
    case 'cancelled':
      return { type: 'cancelled' };
    case 'result':
      return { type: 'result', bestEpoch: typeof value.bestEpoch === 'number' ? value.bestEpoch : null };
    default:
      return asLog();
  }
}

function parseHistory(value: unknown): EpochRecord[] {
  if (!Array.isArray(value)) return [];
  const records: EpochRecord[] = [];
  for (const item of value) {
    if (typeof item !== 'object' || item === null) continue;
    const r = item as Record<string, unknown>;
    const num = (key: string) => (typeof r[key] === 'number' ? (r[key] as number) : NaN);
    const nullable = (key: string) => (typeof r[key] === 'number' ? (r[key] as number) : null);
    if (typeof r.epoch !== 'number') continue;
    records.push({
      epoch: r.epoch,
      trainLoss: num('trainLoss'),
      trainAccuracy: num('trainAccuracy'),
      valLoss: nullable('valLoss'),
      valAccuracy: nullable('valAccuracy'),
      valBalancedAccuracy: nullable('valBalancedAccuracy'),
      learningRate: num('learningRate'),
      seconds: num('seconds'),
      imagesPerSecond: num('imagesPerSecond'),
    });
  }
  return records;
}
