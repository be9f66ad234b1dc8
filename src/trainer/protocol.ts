/**
 * The extension ⇄ trainer protocol, declared once and imported by both sides. The trainer is a forked
 * child process (never a worker thread: native tfjs breaks there, and a native crash must not take the
 * extension host down); messages travel over Node's IPC channel as structured-clone JSON.
 */
import type { RunFile } from '../core/run/runFile.js';
import type { TrainEvent } from '../core/train/events.js';
import type { TrainSettings } from '../core/train/settings.js';

/** Parent → trainer. */
export type TrainerCommand =
  | { type: 'train'; settings: TrainSettings }
  /** Stop after the current batch; the last completed epoch's checkpoint stays usable. */
  | { type: 'cancel' };

/** Trainer → parent. */
export type TrainerMessage =
  | { type: 'ready'; pid: number }
  | { type: 'event'; event: TrainEvent }
  | { type: 'result'; runDir: string; run: RunFile }
  | { type: 'cancelled'; runDir: string | null }
  | { type: 'error'; message: string; stack?: string; runDir: string | null };

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
