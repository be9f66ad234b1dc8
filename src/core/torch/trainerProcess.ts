/**
 * What every process of the bundled PyTorch script shares, training or inference: how it is started (the
 * script, unbuffered, told its parent's pid so it stops when leukemia-audit goes away), the tail of its
 * stderr kept for the error message, the `engine` line it reports once it has chosen its device, and the
 * error that names the interpreter when it ends without a result.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { lastLines } from './interpreter.js';

export const TORCH_TRAINER_FILE = 'train_resnet18.py';
const STDERR_LINES_KEPT = 12;

/** What the script reports about itself once it has chosen its device. */
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

/** The bundled trainer: next to the bundle (dist/torch/), or in the source tree when run through tsx. */
export function torchTrainerPath(): string {
  for (const file of [
    join(__dirname, 'torch', TORCH_TRAINER_FILE),
    join(__dirname, '..', '..', 'trainer', 'torch', TORCH_TRAINER_FILE),
  ])
    if (existsSync(file)) return file;
  throw new Error(
    `The PyTorch trainer ${TORCH_TRAINER_FILE} is missing next to ${__dirname} (built by scripts/build.mjs)`,
  );
}

/** The last lines a process wrote on stderr, for the message that says why it failed. */
export class StderrTail {
  private readonly lines: string[] = [];

  /** Keeps `child`'s stderr lines, each with `prefix` (a DDP rank's). */
  follow(child: ChildProcess, prefix = ''): void {
    createInterface({ input: child.stderr! }).on('line', (line) => {
      this.lines.push(prefix + line);
      if (this.lines.length > STDERR_LINES_KEPT) this.lines.shift();
    });
  }

  /** "\nLast lines of its stderr:\n…", or nothing when it wrote none. */
  describe(): string {
    const tail = this.lines.join('\n').trim();
    return tail ? `\nLast lines of its stderr:\n${lastLines(tail, STDERR_LINES_KEPT)}` : '';
  }
}

/** Starts the bundled script on `planFile` in `cwd`, stdout and stderr piped. */
export function spawnTrainerScript(
  python: string,
  planFile: string,
  cwd: string,
  extraEnv: NodeJS.ProcessEnv = {},
): ChildProcess {
  return spawn(python, ['-u', torchTrainerPath(), planFile], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...extraEnv,
      PYTHONUNBUFFERED: '1',
      PYTHONDONTWRITEBYTECODE: '1',
      LEUKEMIA_AUDIT_PARENT_PID: String(process.pid),
    },
  });
}

/** "was killed (SIGKILL)", "exited with code 1", "exited without a result". */
export function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return `was killed (${signal})`;
  return code === 0 ? 'exited without a result' : `exited with code ${code}`;
}

/** The `engine` line's fields, each checked for its type (NaN or '' when missing). */
export function parseEngineInfo(value: Record<string, unknown>): TorchEngineInfo {
  const num = (key: string) => (typeof value[key] === 'number' ? (value[key] as number) : NaN);
  const str = (key: string) => (typeof value[key] === 'string' ? (value[key] as string) : '');
  return {
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
  };
}

/** "PyTorch 1.13.0 (torchvision 0.14.1, Python 3.11.2) on cpu, 0 DataLoader workers, 2 threads", for the log. */
export function describeEngineInfo(engine: TorchEngineInfo): string {
  return (
    `PyTorch ${engine.torch} (torchvision ${engine.torchvision}, Python ${engine.python}) on ${engine.device}` +
    (engine.deviceName !== engine.device ? ` (${engine.deviceName})` : '') +
    `, ${engine.loaderWorkers} DataLoader workers, ${engine.threads} threads` +
    (engine.amp ? ', mixed precision' : '') +
    (engine.channelsLast ? ', channels-last' : '')
  );
}
