/**
 * Runs the bundled PyTorch trainer on a plan and turns its JSON-lines stdout into leukemia-audit events.
 * It always ends: with the trainer's result, with TrainingCancelled, or with an error naming the interpreter
 * and the last lines of its stderr (import error, out of memory, killed) — never by waiting on a dead process.
 */
import { createServer, type AddressInfo } from 'node:net';
import { unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { EpochRecord } from '../run/runFile.js';
import type { TrainEvent } from '../train/events.js';
import { TrainingCancelled } from '../train/engine.js';
import { TORCH_CANCEL_FILE } from './plan.js';
import {
  StderrTail,
  describeExit,
  parseEngineInfo,
  spawnTrainerScript,
  type TorchEngineInfo,
} from './trainerProcess.js';

export { TORCH_TRAINER_FILE, torchTrainerPath, type TorchEngineInfo } from './trainerProcess.js';
/** After a cancel the trainer finishes its batch; one that does not exit by then is killed. */
const CANCEL_GRACE_MS = 60_000;

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

/**
 * The environment of each process of a one-machine DDP run: what `torchrun --standalone` sets (env:// rendezvous
 * on a free local port). leukemia-audit starts the ranks itself instead of through `python -m
 * torch.distributed.run`, whose launcher fails before starting any rank on Debian's torch 1.13 under Python
 * 3.11 (`Std.from_str("0")` returns None there). The trainer reads only these variables, so it runs under
 * torchrun unchanged, e.g. across several machines.
 */
export function rankEnvironments(processes: number, port: number): NodeJS.ProcessEnv[] {
  return Array.from({ length: processes }, (_, rank) => ({
    RANK: String(rank),
    LOCAL_RANK: String(rank),
    WORLD_SIZE: String(processes),
    LOCAL_WORLD_SIZE: String(processes),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
  }));
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const server = createServer();
    server.once('error', rejectPort);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

export async function runTorchTrainer(options: RunTrainerOptions): Promise<TorchTrainerOutcome> {
  const { python, planFile, processes, emit, signal } = options;
  const runDir = dirname(planFile);
  const cancelFile = join(runDir, TORCH_CANCEL_FILE);
  const ranks = processes > 1 ? rankEnvironments(processes, await freePort()) : [{}];
  return new Promise((resolveRun, rejectRun) => {
    let engine: TorchEngineInfo | undefined;
    let history: EpochRecord[] = [];
    let bestEpoch: number | null = null;
    let result = false;
    let cancelled = false;
    const stderr = new StderrTail();
    void unlink(cancelFile).catch(() => undefined);
    const children = ranks.map((rankEnv, rank) => {
      const child = spawnTrainerScript(python, planFile, runDir, rankEnv);
      stderr.follow(child, rank === 0 ? '' : `[rank ${rank}] `);
      return child;
    });
    const killAll = () => children.forEach((child) => child.exitCode === null && child.kill('SIGKILL'));
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      void writeFile(cancelFile, '').catch(() => undefined);
      killTimer = setTimeout(killAll, CANCEL_GRACE_MS);
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });

    // Only rank 0 reports.
    createInterface({ input: children[0].stdout! }).on('line', (line) => {
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

    // The first process to fail decides the outcome; the others would wait for it forever, so they are killed.
    let failure: Error | undefined;
    let open = children.length;
    children.forEach((child, rank) => {
      child.on('error', (error) => {
        failure ??= new Error(`Could not start ${python}: ${error.message}`);
        killAll();
      });
      child.on('close', (code, exitSignal) => {
        if (!failure && (code !== 0 || (rank === 0 && !result && !cancelled))) {
          const who = children.length > 1 ? ` process ${rank}` : '';
          failure = new Error(
            `The PyTorch trainer${who} (${python}) ${describeExit(code, exitSignal)}.${stderr.describe()}`,
          );
          killAll();
        }
        if (--open > 0) return;
        if (cancelled || (signal?.aborted && !result)) finish(new TrainingCancelled());
        else if (failure) finish(failure);
        else if (!engine) finish(new Error(`The PyTorch trainer (${python}) did not report its engine.`));
        else finish(undefined);
      });
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
      return { type: 'engine', engine: parseEngineInfo(value) };
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
