/**
 * The run folder: `run.json` (this schema, versioned), `model.safetensors` (best weights, torchvision keys,
 * PyTorch layout: loads with `safetensors.torch.load_file` + `resnet18().load_state_dict`) and
 * `checkpoint.safetensors` (last epoch: weights + optimiser state, for `--resume`). Every file is written
 * atomically (runFileIo.ts), so a killed trainer leaves the previous epoch's files intact. Types and names
 * only here: the pages import this file too.
 */
import type { Finding } from '../audit/findings.js';
import type { SplitSummary } from '../data/splits.js';
import type { DatasetSpec } from '../datasetSpec.js';
import type { ClassificationMetrics } from '../metrics.js';
import type { TrainSettings } from '../train/settings.js';
import type { UnreadableEntry } from '../types.js';
import type { OutputAssociation } from '../evaluate/association.js';
import type { CheckpointInfo } from '../weights/checkpointInfo.js';
import type { CropMode } from '../train/settings.js';

export const RUN_SCHEMA = 'leukemia-audit/run';
export const RUN_SCHEMA_VERSION = 1;
export const RUN_FILE = 'run.json';
export const MODEL_FILE = 'model.safetensors';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

/** The backend that computed a run, and why preferred ones were passed over. */
export interface BackendReport {
  /** `torch`: the user's PyTorch trained (see `torch`); otherwise the tfjs backend that did. */
  name: BackendName | 'torch';
  /** Why a preferred backend was passed over, e.g. "tensorflow: @tensorflow/tfjs-node is not installed". */
  skipped: string[];
  /** The PyTorch engine as it ran: interpreter, versions, device. */
  torch?: TorchEngineReport;
  /**
   * What computed the training steps when not the tfjs backend `name`, e.g. "onnxruntime (CPU), 2 threads"
   * (full training when onnxruntime-node loads; `name` then holds the weights and the optimiser).
   */
  steps?: string;
}

export interface TorchEngineReport {
  python: string;
  pythonVersion: string;
  torch: string;
  torchvision: string;
  /** As torch names it: `cpu`, `cuda:0`, `mps`. */
  device: string;
  /** e.g. "NVIDIA A100-SXM4-40GB", "Apple MPS", "cpu". */
  deviceName: string;
  processes: number;
  amp: boolean;
  channelsLast: boolean;
}

export type RunStatus = 'running' | 'completed' | 'cancelled' | 'failed';

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  valBalancedAccuracy: number | null;
  learningRate: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface Prediction {
  path: string;
  split: 'val' | 'test';
  subject: string | null;
  /** Class index into `classes`. */
  true: number;
  predicted: number;
  probabilities: number[];
}

/** Where a sample sits in the confusion matrix; binary runs use the positive class (ALL). */
export type ConfusionCell =
  'true-positive' | 'false-positive' | 'true-negative' | 'false-negative' | 'correct' | 'wrong';

export interface ExplainedSample {
  path: string;
  split: 'val' | 'test';
  cell: ConfusionCell;
  true: number;
  predicted: number;
  /** Probability of the predicted class. */
  confidence: number;
  /** The class the map explains (the predicted one). */
  explainedClass: number;
  /** PNGs relative to the run folder: the preprocessed input, and the overlay. */
  original: string;
  overlay: string;
  /** Overlay on the run-wide shared scale, so maps can be compared across images. */
  overlayShared: string;
  /** Fraction of CAM energy on the black background outside the cell mask. */
  backgroundEnergy: number;
  /**
   * The raw map at the explained layer (`explanations.layer`), `[row][column]`, rows top to bottom: non-negative
   * (after the ReLU), before upsampling and normalisation, as `computeCams` returns it. The results view
   * colours it itself, so the colour map can change after the run. Absent in runs explained before it existed:
   * only the PNGs (`overlay`, `overlayShared`) are there.
   */
  cam?: number[][];
}

export interface SanityStep {
  /** Layers re-initialised so far, top down: `fc`, then `layer4`, … (cascading randomisation). */
  randomisedUpTo: string;
  /** Spearman rank correlation between the trained and the randomised maps, mean over the sampled images. */
  spearman: number;
}

export interface RunExplanations {
  method: 'gradcam' | 'gradcam++';
  layer: string;
  /** Colour map baked into the overlay PNGs (the results view can recolour samples that have a `cam`). */
  colormap: string;
  /**
   * The run-wide scale of the `overlayShared` PNGs: the largest value of any sample's map after upsampling to
   * the input (at most the largest `cam` value). Absent in runs explained before it existed.
   */
  sharedScale?: number;
  samples: ExplainedSample[];
  /** Adebayo et al. 2018 model-parameter randomisation test: maps must change when weights are randomised. */
  sanity: { steps: SanityStep[]; passed: boolean; message: string };
  /** Attention off the cell: mean background energy per class, and whether it is suspicious. */
  shortcut: { perClass: Record<string, number>; threshold: number; flagged: boolean; message: string };
}

/** Per-subject accuracy of an evaluation: a patient whose cells are all misread is one error, not hundreds. */
export interface SubjectAccuracy {
  subject: string;
  images: number;
  correct: number;
  accuracy: number;
  /** Images per true class. */
  byClass: Record<string, number>;
}

/** What `evaluate` adds to run.json (`kind: "evaluation"`). */
export interface RunEvaluation {
  /** What the checkpoint loader recognised in the evaluated file. */
  checkpoint: CheckpointInfo;
  /** The model's output names, index = logit position in the original checkpoint. */
  outputs: string[];
  /** Dataset class index of each output, when outputs are the dataset's classes; null when they are not. */
  mapping: number[] | null;
  /** How `mapping` was found: output names equal to the classes (case-insensitively), or `--class-map`. */
  mappedBy: 'names' | 'class-map' | null;
  /** `--labels` as given, or `auto` for the audit's recommendation; the sources are `dataset.spec.labelSources`. */
  labels: string;
  /** Output × true label, Cramér's V, mutual information, p-value and the verdict in words. */
  association: OutputAssociation;
  /** Per subject, when the dataset's file names carry subjects and outputs are mapped. */
  perSubject: SubjectAccuracy[];
  /**
   * Per image when the outputs are not the classes (mapped runs use `predictions`): the output index and
   * the probabilities over the outputs.
   */
  outputsPerImage: { path: string; subject: string | null; true: number; output: number; probabilities: number[] }[];
}

/** A probe's out-of-fold recall of one value of its target. */
export interface ClassRecall {
  className: string;
  recall: number | null;
  support: number;
  /** Subjects (or images, when the unit is the image) of this class. */
  units: number;
}

/** How well a probe, cross-validated by subject, tells a target's values apart (probe/crossValidate.ts). */
export interface CrossValidatedProbe {
  classes: string[];
  images: number;
  /** `subject`: group k-fold by subject; `image`: no subject ids, images are split one by one. */
  unit: 'subject' | 'image';
  units: number;
  folds: number;
  balancedAccuracy: number;
  accuracy: number;
  /** 1/K: balanced accuracy of a probe that knows nothing, whatever the class sizes. */
  chance: number;
  /** Cluster-bootstrap percentile interval of the balanced accuracy. */
  interval: { level: number; lower: number; upper: number; resamples: number };
  perClass: ClassRecall[];
  /** Counts, true class (rows) × predicted class (columns). */
  confusion: number[][];
  /** Classes with a single unit: whenever it is held out, the probe has never seen that class. */
  singleUnitClasses: string[];
}

/** One probe of a probe run: what a linear probe on frozen features tells from the pixels, by subject. */
export interface ProbeTargetResult extends CrossValidatedProbe {
  /** `group`: the fold/site/batch/date; `diagnosis`: the labels. */
  target: 'group' | 'diagnosis';
  /** Where the target comes from: `folders at depth 1`, `the audit's recommended labels`. */
  source: string;
  /** What one value is, and several: fold/folds, site/sites, diagnosis/diagnoses. */
  one: string;
  many: string;
  /** Far above chance: the lower end of the interval above chance and chance-corrected accuracy ≥ `minKappa`. */
  predictable: boolean;
  /** The result in one plain sentence. */
  verdict: string;
}

/** What `probe` adds to run.json (`kind: "probe"`). */
export interface RunProbe {
  backbone: {
    /** `--weights` as given: auto, imagenet, none, or a path. */
    weights: string;
    description: string;
    /** False: random weights (no ImageNet weights offline), a weaker probe. */
    pretrained: boolean;
    /** SHA-256 of the backbone's parameters: the feature cache's key, with each image's content and size. */
    sha256: string;
    checkpoint: CheckpointInfo | null;
  };
  imageSize: number;
  crop: CropMode;
  featureDimension: number;
  method: {
    classifier: string;
    /** scikit-learn's C of the L2 penalty (standardised features). */
    C: number;
    folds: number;
    resamples: number;
    level: number;
    /** Chance-corrected balanced accuracy, (BA − 1/K)/(1 − 1/K), at or above which a target counts as predictable. */
    minKappa: number;
  };
  /** Null when no structural grouping was found (or given). */
  group: ProbeTargetResult | null;
  diagnosis: ProbeTargetResult | null;
  /** `group-predictable`, when it fires (also in `dataset.findings`). */
  finding: Finding | null;
  notes: string[];
  cache: { folder: string; fromCache: number; computed: number };
  seconds: { audit: number; prepare: number; features: number; probes: number; total: number };
}

export interface RunFile {
  schema: typeof RUN_SCHEMA;
  /**
   * `training` (or absent, as in runs written before evaluations existed), `evaluation`: a model
   * evaluated on a dataset (no history; `evaluation` says what was loaded and how outputs map to classes),
   * or `probe`: the batch-effect probe (no model trained; `probe` holds the results).
   */
  kind?: 'training' | 'evaluation' | 'probe';
  version: typeof RUN_SCHEMA_VERSION;
  createdAt: string;
  updatedAt: string;
  status: RunStatus;
  error: string | null;
  settings: TrainSettings;
  backend: BackendReport;
  dataset: {
    root: string;
    spec: DatasetSpec;
    findings: Finding[];
    /** True when the user chose labels the audit judged structural (folds, splits…): every view warns. */
    labelsAreStructural: boolean;
    classes: string[];
    splits: SplitSummary[];
    skipped: UnreadableEntry[];
    notes: string[];
  };
  model: { architecture: 'resnet18'; imageSize: number; numClasses: number; parameters: number; weightsFile: string };
  history: EpochRecord[];
  bestEpoch: number | null;
  metrics: { validation: ClassificationMetrics | null; test: ClassificationMetrics | null };
  predictions: Prediction[];
  /** Grad-CAM for a bounded sample of each confusion-matrix cell, with sanity and shortcut checks. */
  explanations?: RunExplanations | null;
  /** Evaluation runs only. */
  evaluation?: RunEvaluation | null;
  /** Probe runs only. */
  probe?: RunProbe | null;
  /** Training runs from `--weights FILE`: what the checkpoint loader recognised in it. */
  initialWeights?: CheckpointInfo | null;
}
/**
 * What run.json needs to continue after a checkpoint: stored in the checkpoint itself, written before the
 * model file and run.json, so a kill between any two of the three writes loses nothing — resuming rebuilds
 * run.json's history and best epoch from the checkpoint, and the best model from its weights when the
 * checkpoint's epoch is the best one.
 */
export interface RunProgress {
  history: EpochRecord[];
  bestEpoch: number | null;
}

export interface CheckpointState {
  /** The epoch the checkpoint was written after. */
  epoch: number;
  /** Absent in checkpoints written before it was stored: then run.json's history is all there is. */
  progress?: RunProgress;
}
