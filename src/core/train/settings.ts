/**
 * Everything that decides a training run; the CLI flags, the extension's settings and run.json share it.
 * The allowed values of every choice are declared here once (the types derive from them); the CLI and the
 * extension check against these lists, and a test holds package.json's setting enums to them.
 */

/** Which parameters an optimiser updates: everything, `layer4` + `fc`, or `fc` only. */
export const STRATEGIES = ['full', 'finetune', 'linear'] as const;
export type TrainingStrategy = (typeof STRATEGIES)[number];

/** `auto`: the user's PyTorch when a usable interpreter is found, else native TensorFlow when installed, else wasm. */
export const BACKENDS = ['auto', 'torch', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKENDS)[number];

export const OPTIMIZERS = ['adam', 'sgd'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export const SCHEDULES = ['cosine', 'step', 'constant'] as const;
export type ScheduleName = (typeof SCHEDULES)[number];

/**
 * `none`: the whole image (a non-square one is stretched, as `Resize((S, S))` would).
 * `center`: the central square, CENTER_CROP_FRACTION of the shorter side: C-NMC cells sit in the middle of a
 * mostly black 450 px frame, so this enlarges the cell without looking at the pixels.
 * `cell`: the bounding box of the non-black pixels plus a margin, made square: every cell fills the frame
 * the same way whatever its size, which removes size as a cue (ALL blasts are larger) — use it knowingly.
 */
export const CROPS = ['none', 'center', 'cell'] as const;
export type CropMode = (typeof CROPS)[number];

/** `auto` follows the audit (folds, train/val/test folders, else subject-disjoint); `subject-disjoint` forces it. */
export const SPLIT_CHOICES = ['auto', 'subject-disjoint'] as const;
export type SplitChoice = (typeof SPLIT_CHOICES)[number];

/** The PyTorch engine's devices: `auto` (CUDA, else MPS, else CPU), `cpu`, `cuda`, `cuda:N`, `mps`. */
export function isTorchDevice(value: unknown): value is string {
  return typeof value === 'string' && /^(auto|cpu|mps|cuda(:\d+)?)$/.test(value);
}

/** Whether `value` is one of `allowed`: the one check behind the CLI's flags and the extension's settings. */
export function isOneOf<T extends string>(allowed: readonly T[], value: unknown): value is T {
  return allowed.includes(value as T);
}

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
  crop: CropMode;
  split: SplitChoice;
  subjectPattern?: string;
  resume: boolean;
  /** Ways to split each batch over CPU cores (1 = one core; 0 = auto: see `dataParallelWays`). */
  workers: number;
  /** PyTorch engine: the interpreter to use (flag or setting); empty = pythonFromEditor, else python3/python on PATH. */
  python?: string;
  /** PyTorch engine: the interpreter selected in the Python extension, tried before PATH. */
  pythonFromEditor?: string;
  /** PyTorch engine: `auto` (CUDA, else MPS, else CPU), `cpu`, `cuda`, `cuda:N` or `mps`. */
  device: string;
  /** PyTorch engine: processes (DDP through torch.distributed.run); 0 = auto, all CUDA devices when more than one. */
  processes: number;
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
  device: 'auto',
  processes: 0,
};
