// The smallest real training the trainer tests and the fault battery run, many times over: a seeded C-NMC-like
// dataset of 32 px images and settings that train on its all/hem folders in seconds.
import { join } from 'node:path';
import { generateDemoDataset } from '../../src/core/demo/generate.js';
import { DEFAULT_SETTINGS, type TrainSettings } from '../../src/core/train/settings.js';

/** Writes the dataset under `work` (images per fold as given) and returns its `training_data` folder. */
export async function tinyDataset(work: string, imagesPerFold = 16, validationImages = 4): Promise<string> {
  await generateDemoDataset(work, { imageSize: 32, imagesPerFold, validationImages, seed: 3 });
  return join(work, 'C-NMC_Leukemia', 'training_data');
}

/** 32 px, batch 8, 3 epochs on `all`/`hem`, no early stopping: override what a test is about. */
export function tinySettings(dataset: string, out: string, overrides: Partial<TrainSettings> = {}): TrainSettings {
  return {
    ...DEFAULT_SETTINGS,
    dataset,
    out,
    labels: 'folder:2',
    imageSize: 32,
    batchSize: 8,
    epochs: 3,
    patience: 0,
    // The embedded engine (checkpoint.safetensors, the trainer's own kill points); torch-engine.test.ts covers PyTorch.
    backend: 'wasm',
    ...overrides,
  };
}
