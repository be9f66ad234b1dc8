import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isOneOf } from '../core/train/settings.js';

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
