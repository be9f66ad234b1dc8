/**
 * What a run's progress looks like to its readers — the CLI's stderr, the editor's status bar, notification,
 * log and dashboard — folded from the trainer's events into one plain object and worded once here, so every
 * view reads the same numbers in the same words. No Node built-ins: the dashboard page imports it.
 */
import type { EpochRecord } from '../run/runFile.js';
import type { BatchProgress, TrainEvent, TrainPhase } from './events.js';

export type { BatchProgress };

export type TrainingStatus = 'starting' | 'running' | 'cancelling' | 'completed' | 'cancelled' | 'failed';

export interface TrainingView {
  status: TrainingStatus;
  dataset: string;
  labels: string;
  labelsAreStructural: boolean;
  totalEpochs: number;
  runDir?: string;
  backend?: string;
  phase?: { phase: TrainPhase; done: number; total: number };
  progress?: BatchProgress;
  history: EpochRecord[];
  bestEpoch?: number;
  /** The latest log lines (warnings matter: notes about the split, skipped images). */
  log: { level: 'info' | 'warning' | 'error'; message: string }[];
  error?: string;
}

const MAX_LOG = 50;

export function initialView(
  dataset: string,
  labels: string,
  labelsAreStructural: boolean,
  totalEpochs: number,
): TrainingView {
  return { status: 'starting', dataset, labels, labelsAreStructural, totalEpochs, history: [], log: [] };
}

export function applyTrainEvent(view: TrainingView, event: TrainEvent): TrainingView {
  const status = view.status === 'starting' ? 'running' : view.status;
  switch (event.type) {
    case 'started':
      return {
        ...view,
        status,
        runDir: event.runDir,
        backend: event.backend,
        labelsAreStructural: event.labelsAreStructural,
      };
    case 'phase':
      return { ...view, status, phase: { phase: event.phase, done: event.done, total: event.total } };
    case 'progress': {
      const { type: _type, ...progress } = event;
      return { ...view, status, phase: { phase: 'train', done: event.batch, total: event.batches }, progress };
    }
    case 'epoch': {
      const history = [...view.history.filter((h) => h.epoch !== event.record.epoch), event.record].sort(
        (a, b) => a.epoch - b.epoch,
      );
      return { ...view, status, history, bestEpoch: event.best ? event.record.epoch : view.bestEpoch };
    }
    case 'log':
      return { ...view, status, log: [...view.log, { level: event.level, message: event.message }].slice(-MAX_LOG) };
  }
}

/** "5s", "2m 05s", "1h 02m"; a dash when not known (no image seen yet). */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** "Predicting 48/90 · ETA 12s": a job phase's progress, with the time left when it is known. */
export function describePhaseProgress(words: string, done: number, total: number, etaSeconds?: number): string {
  return `${words} ${done}/${total}${etaSeconds === undefined ? '' : ` · ETA ${formatDuration(etaSeconds)}`}`;
}

/** Phases the trainer may add later still read sensibly: by their own name. */
const PHASE_WORDS: Partial<Record<TrainPhase, string>> = {
  audit: 'Auditing labels',
  prepare: 'Preparing images',
  features: 'Computing features',
  weights: 'Loading initial weights',
  train: 'Training',
  evaluate: 'Evaluating',
  explain: 'Explaining predictions (Grad-CAM)',
};

function phaseWords(phase: TrainPhase): string {
  return PHASE_WORDS[phase] ?? phase;
}

/** One line for the status bar: "Epoch 2/5 · batch 12/19 · 34 img/s". */
export function statusLine(view: TrainingView): string {
  if (view.status === 'cancelling') return 'Cancelling training…';
  const p = view.progress;
  if (p && view.phase?.phase === 'train')
    return `Epoch ${p.epoch}/${p.epochs} · batch ${p.batch}/${p.batches} · ${p.imagesPerSecond.toFixed(0)} img/s`;
  if (view.phase)
    return `${phaseWords(view.phase.phase)}${view.phase.total > 1 ? ` ${view.phase.done}/${view.phase.total}` : ''}`;
  return 'Starting trainer…';
}

/** The notification's message: the status line plus loss and ETA. */
export function progressMessage(view: TrainingView): string {
  const p = view.progress;
  if (p && view.phase?.phase === 'train' && view.status !== 'cancelling') {
    return `${statusLine(view)} · loss ${p.loss.toFixed(3)} · ETA ${formatDuration(p.etaSeconds)}`;
  }
  return statusLine(view);
}

/** "Epoch 2: train loss 0.4567 acc 0.812 · val loss 0.5012 acc 0.780 balanced 0.775 · 33.1 img/s, 41s (best)". */
export function describeEpoch(record: EpochRecord, best: boolean): string {
  const validation =
    record.valLoss === null
      ? ''
      : ` · val loss ${record.valLoss.toFixed(4)} acc ${fixed3(record.valAccuracy)} balanced ${fixed3(record.valBalancedAccuracy)}`;
  return (
    `Epoch ${record.epoch}: train loss ${record.trainLoss.toFixed(4)} acc ${record.trainAccuracy.toFixed(3)}${validation}` +
    ` · ${record.imagesPerSecond.toFixed(1)} img/s, ${formatDuration(record.seconds)}${best ? ' (best)' : ''}`
  );
}

function fixed3(value: number | null): string {
  return value === null ? '–' : value.toFixed(3);
}

/** "Run folder /runs/run-…, backend wasm", plus a warning when the labels are structural. */
export function describeStart(event: Extract<TrainEvent, { type: 'started' }>): string {
  const structural = event.labelsAreStructural ? ' (labels judged structural: the run is marked)' : '';
  return `Run folder ${event.runDir}, backend ${event.backend}${structural}`;
}

/** Fraction of the whole run done (0…1), for a determinate progress bar. */
export function overallFraction(view: TrainingView): number {
  const p = view.progress;
  if (!p || p.epochs === 0 || p.batches === 0) return 0;
  return Math.min(1, (p.epoch - 1 + p.batch / p.batches) / p.epochs);
}
