/** Everything that decides a training run; the CLI flags, the extension's settings and run.json share it. */
import type { TrainingStrategy } from '../model/resnet18.js';

export type BackendChoice = 'auto' | 'tensorflow' | 'wasm' | 'cpu';
export type OptimizerName = 'adam' | 'sgd';
export type ScheduleName = 'cosine' | 'step' | 'constant';

/**
 * How to label: `auto` = the audit's recommendation (refused when the labels look structural and nothing
 * else was found); `folder:N` = folder names at depth N; `filename` = the class token of file names;
 * `csv:FILE` = a label table.
 */
export type LabelChoice = 'auto' | `folder:${number}` | 'filename' | `csv:${string}`;

export interface TrainSettings {
  dataset: string;
  /** The run folder; refused when it holds a run, unless `resume` or `force`. */
  out?: string;
  /** Without `out`: where a new `run-<time>` folder is made (default `<dataset>/../leukemia-audit-runs`). */
  runsFolder?: string;
  /** Replace the run in `out` (its run files are removed first). */
  force?: boolean;
  labels: LabelChoice;
  epochs: number;
  imageSize: number;
  batchSize: number;
  strategy: TrainingStrategy;
  backend: BackendChoice;
  weights: string;
  seed: number;
  optimizer: OptimizerName;
  learningRate: number;
  schedule: ScheduleName;
  /** Epochs without validation-loss improvement before stopping; 0 disables early stopping. */
  patience: number;
  crop: 'none' | 'center' | 'cell';
  /** `auto` follows the audit (folds, train/val/test folders, else subject-disjoint); `subject-disjoint` forces it. */
  split: 'auto' | 'subject-disjoint';
  subjectPattern?: string;
  resume: boolean;
  /** Ways to split each batch over CPU cores (1 = one core; 0 = auto: see `dataParallelWays`). */
  workers: number;
}

export const DEFAULT_SETTINGS: Omit<TrainSettings, 'dataset'> = {
  labels: 'auto',
  epochs: 5,
  imageSize: 48,
  batchSize: 32,
  strategy: 'full',
  backend: 'auto',
  weights: 'none',
  seed: 1,
  optimizer: 'adam',
  learningRate: 1e-3,
  schedule: 'cosine',
  patience: 4,
  crop: 'none',
  split: 'auto',
  resume: false,
  workers: 0,
};
