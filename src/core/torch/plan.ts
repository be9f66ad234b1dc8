/**
 * The plan file that drives the bundled PyTorch trainer (src/trainer/torch/train_resnet18.py): everything
 * leukemia-audit decided — labels, the subject-aware split, class weights, preprocessing, hyper-parameters,
 * seed — so the Python side only trains. Written into the run folder, where it also documents the run.
 */
import { join } from 'node:path';
import type { Example } from '../data/batches.js';
import { DEFAULT_AUGMENTATION, type AugmentOptions } from '../data/batches.js';
import {
  BLACK_THRESHOLD,
  CELL_MARGIN_FRACTION,
  CENTER_CROP_FRACTION,
  IMAGENET_MEAN,
  IMAGENET_STD,
  MIN_FOREGROUND_SHARE,
} from '../data/preprocess.js';
import type { CropMode } from '../train/settings.js';
import { writeFileAtomic } from '../fsAtomic.js';
import { CHECKPOINT_FILE, MODEL_FILE } from '../run/runFile.js';
import type { TrainSettings } from '../train/settings.js';

export const TORCH_PLAN_SCHEMA = 'leukemia-audit/torch-plan';
export const TORCH_PLAN_VERSION = 1;
export const TORCH_PLAN_FILE = 'plan.json';
export const TORCH_PREDICTIONS_FILE = 'predictions.json';
/** Initial weights as safetensors (resolved by leukemia-audit from imagenet, a .pth or a run). */
export const TORCH_INITIAL_WEIGHTS_FILE = 'initial.safetensors';
/** Created by leukemia-audit to stop training after the current batch. */
export const TORCH_CANCEL_FILE = '.cancel';

export interface TorchPlan {
  schema: typeof TORCH_PLAN_SCHEMA;
  version: typeof TORCH_PLAN_VERSION;
  datasetRoot: string;
  classes: string[];
  /** `[path relative to datasetRoot, class index]`; val and test are predicted in this order. */
  examples: { train: [string, number][]; val: [string, number][]; test: [string, number][] };
  classWeights: number[];
  preprocess: {
    imageSize: number;
    crop: CropMode;
    centerCropFraction: number;
    blackThreshold: number;
    cellMarginFraction: number;
    minForegroundShare: number;
    mean: readonly number[];
    std: readonly number[];
  };
  augment: AugmentOptions;
  training: Pick<
    TrainSettings,
    'epochs' | 'batchSize' | 'optimizer' | 'learningRate' | 'schedule' | 'patience' | 'seed' | 'strategy'
  >;
  /** File in the run folder, or null for torchvision's random initialisation under `seed`. */
  initialWeights: string | null;
  device: string;
  /** DataLoader workers per process; null = the trainer's default (the cores it may use, at most 4). */
  loaderWorkers: number | null;
  /** Only on CUDA. Mixed precision (autocast + GradScaler) and channels-last memory format. */
  cuda: { amp: boolean; channelsLast: boolean };
  resume: boolean;
  files: { model: string; checkpoint: string; predictions: string; cancel: string };
  /** Written into model.safetensors' metadata, as the wasm engine writes it. */
  metadata: Record<string, string>;
}

/** The crop constants of preprocess.ts, as the trainer reads them. */
export const CROP_PARAMETERS = {
  centerCropFraction: CENTER_CROP_FRACTION,
  blackThreshold: BLACK_THRESHOLD,
  cellMarginFraction: CELL_MARGIN_FRACTION,
  minForegroundShare: MIN_FOREGROUND_SHARE,
};

export interface PlanInput {
  settings: TrainSettings;
  datasetRoot: string;
  classes: string[];
  train: readonly Example[];
  val: readonly Example[];
  test: readonly Example[];
  classWeights: number[];
  initialWeights: string | null;
  device: string;
  loaderWorkers?: number | null;
}

export function createTorchPlan(input: PlanInput): TorchPlan {
  const { settings } = input;
  const pairs = (examples: readonly Example[]) => examples.map((e): [string, number] => [e.path, e.label]);
  return {
    schema: TORCH_PLAN_SCHEMA,
    version: TORCH_PLAN_VERSION,
    datasetRoot: input.datasetRoot,
    classes: input.classes,
    examples: { train: pairs(input.train), val: pairs(input.val), test: pairs(input.test) },
    classWeights: input.classWeights,
    preprocess: {
      imageSize: settings.imageSize,
      crop: settings.crop,
      ...CROP_PARAMETERS,
      mean: IMAGENET_MEAN,
      std: IMAGENET_STD,
    },
    augment: DEFAULT_AUGMENTATION,
    training: {
      epochs: settings.epochs,
      batchSize: settings.batchSize,
      optimizer: settings.optimizer,
      learningRate: settings.learningRate,
      schedule: settings.schedule,
      patience: settings.patience,
      seed: settings.seed,
      strategy: settings.strategy,
    },
    initialWeights: input.initialWeights,
    device: input.device,
    loaderWorkers: input.loaderWorkers ?? null,
    cuda: { amp: true, channelsLast: true },
    resume: settings.resume,
    files: {
      model: MODEL_FILE,
      checkpoint: CHECKPOINT_FILE,
      predictions: TORCH_PREDICTIONS_FILE,
      cancel: TORCH_CANCEL_FILE,
    },
    metadata: {
      format: 'pt',
      classes: JSON.stringify(input.classes),
      imageSize: String(settings.imageSize),
      crop: settings.crop,
    },
  };
}

export async function writeTorchPlan(runDir: string, plan: TorchPlan): Promise<string> {
  const path = join(runDir, TORCH_PLAN_FILE);
  await writeFileAtomic(path, JSON.stringify(plan, null, 1) + '\n');
  return path;
}
