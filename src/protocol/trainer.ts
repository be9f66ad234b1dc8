/**
 * The extension ⇄ trainer protocol, declared once with its parsers and imported by both sides. The trainer
 * is a forked child process (never a worker thread: native tfjs breaks there, and a native crash must not
 * take the extension host down); messages travel over Node's IPC channel as structured-clone JSON.
 */
import type { EvaluatePhase } from '../core/evaluate/evaluate.js';
import type { ProbePhase } from '../core/probe/probe.js';
import type { RunFile } from '../core/run/runFile.js';
import type { TrainEvent } from '../core/train/events.js';
import { BACKENDS, isOneOf, isTorchDevice, type LabelChoice, type TrainSettings } from '../core/train/settings.js';

/** The engine an evaluation or a probe runs on, from the same settings as training (all optional). */
export type EngineRequest = Partial<Pick<TrainSettings, 'backend' | 'python' | 'pythonFromEditor' | 'device'>>;

/** What the extension asks the trainer to evaluate: `evaluateModel`'s options that cross the channel. */
export interface EvaluateRequest extends EngineRequest {
  dataset: string;
  /** A checkpoint file (.pth, .pt, .safetensors) or a run folder. */
  weights: string;
  /** The evaluation run folder to write. */
  out: string;
  labels?: LabelChoice;
  subjectPattern?: string;
  /** Output name → class name, when the user mapped the model's outputs to the dataset's classes. */
  classMap?: Record<string, string>;
}

/** What the extension asks the trainer to probe for batch effects: `probeDataset`'s options that cross the channel. */
export interface ProbeRequest extends EngineRequest {
  dataset: string;
  /** The probe run folder to write. */
  out: string;
  /** `auto` (default), `imagenet`, `none`, a checkpoint or a run folder. */
  weights?: string;
  /** `auto`, `folder:N` or `csv:COLUMN`. */
  group?: string;
  labels?: LabelChoice;
  subjectPattern?: string;
  imageSize?: number;
}

/** Parent → trainer. One job per process: a training run, an evaluation or a probe. */
export type TrainerCommand =
  | { type: 'train'; settings: TrainSettings }
  | { type: 'evaluate'; request: EvaluateRequest }
  | { type: 'probe'; request: ProbeRequest }
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
  /** `etaSeconds` while images are predicted. */
  | { type: 'evaluation-progress'; phase: EvaluatePhase; done: number; total: number; etaSeconds?: number }
  | { type: 'evaluated'; runDir: string; run: RunFile }
  /** `etaSeconds` while features are computed. */
  | { type: 'probe-progress'; phase: ProbePhase; done: number; total: number; etaSeconds?: number }
  | { type: 'probed'; runDir: string; run: RunFile }
  | { type: 'cancelled' }
  | { type: 'error'; message: string; stack?: string };

export function isTrainerCommand(value: unknown): value is TrainerCommand {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { type?: unknown }).type;
  if (type === 'cancel') return true;
  if (type === 'evaluate') return isEvaluateRequest((value as { request?: unknown }).request);
  if (type === 'probe') return isProbeRequest((value as { request?: unknown }).request);
  if (type !== 'train') return false;
  const settings = (value as { settings?: unknown }).settings;
  return (
    typeof settings === 'object' && settings !== null && typeof (settings as { dataset?: unknown }).dataset === 'string'
  );
}

function optionalString(value: unknown): boolean {
  return value === undefined || typeof value === 'string';
}

function isEngineRequest(value: object): boolean {
  const { backend, python, pythonFromEditor, device } = value as Record<string, unknown>;
  return (
    (backend === undefined || isOneOf(BACKENDS, backend)) &&
    optionalString(python) &&
    optionalString(pythonFromEditor) &&
    (device === undefined || isTorchDevice(device))
  );
}

function isEvaluateRequest(value: unknown): value is EvaluateRequest {
  if (typeof value !== 'object' || value === null) return false;
  const { dataset, weights, out, labels, subjectPattern, classMap } = value as Record<string, unknown>;
  return (
    isEngineRequest(value) &&
    typeof dataset === 'string' &&
    typeof weights === 'string' &&
    typeof out === 'string' &&
    optionalString(labels) &&
    optionalString(subjectPattern) &&
    (classMap === undefined ||
      (typeof classMap === 'object' &&
        classMap !== null &&
        Object.values(classMap).every((target) => typeof target === 'string')))
  );
}

function isProbeRequest(value: unknown): value is ProbeRequest {
  if (typeof value !== 'object' || value === null) return false;
  const { dataset, out, weights, group, labels, subjectPattern, imageSize } = value as Record<string, unknown>;
  return (
    isEngineRequest(value) &&
    typeof dataset === 'string' &&
    typeof out === 'string' &&
    optionalString(weights) &&
    optionalString(group) &&
    optionalString(labels) &&
    optionalString(subjectPattern) &&
    (imageSize === undefined || (typeof imageSize === 'number' && Number.isInteger(imageSize) && imageSize >= 32))
  );
}

const PROBE_PHASES: readonly string[] = ['audit', 'prepare', 'features', 'probe', 'report'] satisfies ProbePhase[];

const EVALUATE_PHASES: readonly string[] = [
  'audit',
  'prepare',
  'predict',
  'explain',
  'report',
] satisfies EvaluatePhase[];

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
    case 'evaluation-progress':
    case 'probe-progress':
      return typeof message.phase === 'string' &&
        (message.type === 'probe-progress' ? PROBE_PHASES : EVALUATE_PHASES).includes(message.phase) &&
        typeof message.done === 'number' &&
        typeof message.total === 'number' &&
        (message.etaSeconds === undefined || typeof message.etaSeconds === 'number')
        ? (message as TrainerMessage)
        : undefined;
    case 'evaluated':
    case 'probed':
      return typeof message.runDir === 'string' && isObject(message.run) ? (message as TrainerMessage) : undefined;
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
