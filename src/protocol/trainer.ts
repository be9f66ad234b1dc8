/**
 * The extension ⇄ trainer protocol, declared once with its parsers and imported by both sides. The trainer
 * is a forked child process (never a worker thread: native tfjs breaks there, and a native crash must not
 * take the extension host down); messages travel over Node's IPC channel as structured-clone JSON.
 */
import type { RunFile } from '../core/run/runFile.js';
import type { TrainEvent } from '../core/train/events.js';
import type { TrainSettings } from '../core/train/settings.js';

/** Parent → trainer. */
export type TrainerCommand =
  | { type: 'train'; settings: TrainSettings }
  /** Stop after the current batch; the last completed epoch's checkpoint stays usable. */
  | { type: 'cancel' };

/**
 * Trainer → parent. The run folder is announced once, by the `started` event; `result`, `cancelled` and
 * `error` do not repeat it.
 */
export type TrainerMessage =
  | { type: 'ready'; pid: number }
  /** Every few seconds while the trainer's main thread is free: a parent that hears nothing knows it is stuck. */
  | { type: 'heartbeat' }
  | { type: 'event'; event: TrainEvent }
  | { type: 'result'; run: RunFile }
  | { type: 'cancelled' }
  | { type: 'error'; message: string; stack?: string };

export function isTrainerCommand(value: unknown): value is TrainerCommand {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  if (type === 'cancel') return true;
  if (type !== 'train') return false;
  const settings = (value as { settings?: unknown }).settings;
  return (
    typeof settings === 'object' && settings !== null && typeof (settings as { dataset?: unknown }).dataset === 'string'
  );
}

/** The trainer's messages, checked by their tag and the fields the extension acts on. */
export function parseTrainerMessage(value: unknown): TrainerMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  const isObject = (v: unknown) => typeof v === 'object' && v !== null;
  switch (message.type) {
    case 'ready':
      return typeof message.pid === 'number' ? (message as TrainerMessage) : undefined;
    case 'event':
      return isObject(message.event) && typeof (message.event as { type?: unknown }).type === 'string'
        ? (message as TrainerMessage)
        : undefined;
    case 'result':
      return isObject(message.run) ? (message as TrainerMessage) : undefined;
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'cancelled':
      return { type: 'cancelled' };
    case 'error':
      return typeof message.message === 'string' ? (message as TrainerMessage) : undefined;
    default:
      return undefined;
  }
}
