import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { BACKENDS, DEFAULT_SETTINGS, isOneOf, isTorchDevice, type TrainSettings } from '../core/train/settings.js';

/** A mistake in how the command was called: exit code 2 and the usage text. */
export class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with usage errors instead of TypeErrors, and `--help` for every command. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O, help: string) {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(help + '\n');
    return undefined;
  }
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function integerOption(
  value: string | undefined,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(
      `--${name} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `from ${min} to ${max}`}, got "${value}"`,
    );
  }
  return n;
}

/** Progress on stderr: a single rewritten line on a terminal, sparse lines otherwise. */
export function stderrProgress(): (text: string) => void {
  // Non-interactive stderr (CI logs, the extension's output channel) gets a line every 2 s at most.
  let last = Date.now();
  return (text) => {
    if (process.stderr.isTTY) {
      process.stderr.write(`\r\x1b[K${text}`);
    } else if (Date.now() - last > 2000) {
      last = Date.now();
      process.stderr.write(`${text}\n`);
    }
  };
}

export function endProgress(): void {
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
}

export function oneOf<T extends string>(
  value: string | undefined,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if (!isOneOf(allowed, value)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${value}"`);
  return value;
}

/** A log line of a long command on stderr, after clearing the progress line. */
export function logToStderr(level: 'info' | 'warning', message: string): void {
  endProgress();
  process.stderr.write(`${level === 'info' ? '' : `${level}: `}${message}\n`);
}

/** Ctrl-C asks the command to stop at its next safe point instead of killing it mid-write. */
export function abortOnInterrupt(): AbortController {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  return controller;
}

/** The flags that choose the engine, shared by train, evaluate and probe. */
export const ENGINE_OPTIONS = {
  backend: { type: 'string' },
  python: { type: 'string' },
  device: { type: 'string' },
} as const;

/** ENGINE_OPTIONS's help, for evaluate and probe (whose option column is 23 wide). */
export const ENGINE_HELP = `  --backend auto|torch|tensorflow|wasm|cpu   (default auto: your PyTorch if a usable interpreter is
                         found and has a GPU, or onnxruntime does not load; else the embedded engine)
  --python PATH          PyTorch engine: the interpreter (default: python3, then python, on PATH); needs
                         torch >= 1.13 and torchvision
  --device auto|cpu|cuda|cuda:N|mps   PyTorch engine's device (default auto: CUDA, else MPS, else CPU)`;

/** The engine flags, checked: `--backend`, `--python` (a path made absolute), `--device`. */
export function engineFlags(values: {
  backend?: string;
  python?: string;
  device?: string;
}): Pick<TrainSettings, 'backend' | 'python' | 'device'> {
  return {
    backend: oneOf(values.backend, 'backend', BACKENDS, DEFAULT_SETTINGS.backend),
    python: values.python ? resolvePython(values.python) : undefined,
    device: torchDevice(values.device),
  };
}

function torchDevice(value: string | undefined): string {
  if (value === undefined) return DEFAULT_SETTINGS.device;
  if (!isTorchDevice(value)) throw new UsageError(`--device must be auto, cpu, cuda, cuda:N or mps, got "${value}"`);
  return value;
}

/** A path is made absolute (the trainer runs elsewhere); a bare name such as python3 is looked up on PATH. */
function resolvePython(value: string): string {
  return value.includes('/') || value.includes('\\') ? resolve(value) : value;
}
