/** What a training run reports while it works; the trainer process forwards these to the extension. */
import type { EpochRecord } from '../run/runFile.js';

export type TrainPhase = 'audit' | 'weights' | 'prepare' | 'features' | 'train' | 'evaluate' | 'explain';

/** Where training stands after a batch: epoch and batch count from 1; loss and accuracy are the epoch's running means. */
export interface BatchProgress {
  epoch: number;
  epochs: number;
  batch: number;
  batches: number;
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
  etaSeconds: number;
}

export type TrainEvent =
  | { type: 'log'; level: 'info' | 'warning' | 'error'; message: string }
  | { type: 'phase'; phase: TrainPhase; done: number; total: number }
  | ({ type: 'progress' } & BatchProgress)
  | { type: 'epoch'; record: EpochRecord; best: boolean }
  /**
   * The run folder (the one place it is announced), the backend that computes, and whether the chosen labels
   * are what the audit judged structural (labelChoice.ts, the one judge).
   */
  | { type: 'started'; runDir: string; backend: string; labelsAreStructural: boolean };

export type TrainEventSink = (event: TrainEvent) => void;
