/**
 * The seam between the training loop and what computes it. The loop (train.ts) plans, judges, times,
 * reports and writes run.json; an engine owns the model and its optimiser and computes: one epoch of
 * steps, the class probabilities of a split, and its weight files. The embedded tfjs engine
 * (tfjsEngine.ts) stands behind it; a second engine (the user's PyTorch, driven by a plan file) can too.
 */
import type { Example } from '../data/batches.js';
import type { CheckpointState, RunProgress } from '../run/runFile.js';

/** The examples an engine trains and evaluates on, by split; labels index `classes`. */
export interface EngineData {
  classes: string[];
  train: Example[];
  val: Example[];
  test: Example[];
}

/** The running totals of an epoch, after each step. */
export interface EpochSoFar {
  /** Steps done in this epoch, from 1, and how many the epoch has. */
  batch: number;
  batches: number;
  /** Sum over the images seen of their loss; with `correct` and `seen`, the epoch's running means. */
  lossSum: number;
  correct: number;
  seen: number;
  /** The learning rate of the last step. */
  learningRate: number;
}

export interface Evaluation {
  /** Mean cross-entropy over the split. */
  loss: number;
  /** One row of class probabilities per example, in the split's order. */
  probabilities: number[][];
}

/** Thrown by the loop and by engines when the run's signal aborts between two steps. */
export class TrainingCancelled extends Error {
  constructor() {
    super('Training was cancelled');
  }
}

export interface TrainingEngine {
  /** Trainable and frozen parameters of the model, for run.json. */
  readonly parameters: number;
  /** Steps in one epoch. */
  readonly stepsPerEpoch: number;
  /**
   * Restores the weights and optimiser state of a checkpoint; returns the epoch it was written after and the
   * progress stored with it. Throws, naming the file, when the checkpoint is unreadable or has no epoch.
   */
  resume(runDir: string): Promise<CheckpointState>;
  /** One pass over the training split; `onStep` after every step (the loop reports and may cancel there). */
  trainEpoch(epoch: number, onStep: (soFar: EpochSoFar) => Promise<void>): Promise<EpochSoFar>;
  evaluate(split: 'val' | 'test'): Promise<Evaluation>;
  /** Writes the current weights as the run's model file (the best epoch so far, `epoch`). */
  saveModel(runDir: string, epoch: number): Promise<void>;
  /** Writes weights, optimiser state and the run's progress after `epoch`, for resuming. */
  saveCheckpoint(runDir: string, epoch: number, progress: RunProgress): Promise<void>;
  /** Loads the run's model file back, for the final evaluation. */
  loadModel(runDir: string): Promise<void>;
  dispose(): Promise<void>;
}
