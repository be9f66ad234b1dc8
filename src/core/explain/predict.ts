/**
 * Prediction with a trained model, from a run folder or a bare weights file. Images go through the very
 * functions training used (`readImageFile` → `preprocessImage` → `normaliseInto`), so a prediction here sees
 * the pixels a validation batch would have shown the network.
 */
import * as tf from '@tensorflow/tfjs-core';
import { normaliseInto, preprocessImage } from '../data/preprocess.js';
import { CROPS, isOneOf, type CropMode } from '../train/settings.js';
import { readImageFile } from '../image/decode.js';
import { createInferenceEngine, type InferenceEngine, type InferenceEngineOptions } from '../infer/engine.js';
import { createResNet18, disposeModel, type ResNet18Params } from '../model/resnet18.js';
import { argmax } from '../metrics.js';
import { loadStateDict } from '../model/stateDict.js';
import type { RunFile } from '../run/runFile.js';
import { loadCheckpoint, type CheckpointInfo } from '../weights/checkpoint.js';

export interface LoadedModel {
  params: ResNet18Params;
  /** Class names; index = logit position. */
  classes: string[];
  /** Side of the square network input the images are preprocessed to. */
  imageSize: number;
  /** Side the model was trained at, when known (a different `imageSize` was asked for otherwise). */
  trainedImageSize: number | undefined;
  crop: CropMode;
  weightsFile: string;
  /** The run, when loaded from a run folder. */
  run: RunFile | undefined;
  /** What the checkpoint loader recognised in the file. */
  checkpoint: CheckpointInfo;
}

export interface LoadModelOptions {
  /** Overrides the trained size (ResNet-18 pools adaptively, so any size ≥ 32 runs, but accuracy may suffer). */
  imageSize?: number;
  /** Overrides the crop; a weights file does not always say which one training used. */
  crop?: CropMode;
}

/** torchvision's input size, for checkpoints that do not say theirs (a notebook's .pth never does). */
export const DEFAULT_FOREIGN_IMAGE_SIZE = 224;

/**
 * Loads ResNet-18 from a run folder (run.json names the classes, size and crop), from our safetensors
 * (training writes `classes`, `imageSize` and `crop` into its metadata) or from any checkpoint the loader
 * recognises (`checkpoint.ts`): a notebook's .pth is predicted at 224 px unless told otherwise, with
 * class names from its `class_to_idx` or else `0`, `1`, …. The caller owns the parameters (`disposeModel`).
 */
export async function loadModel(source: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const { dict, info, run } = await loadCheckpoint(source, { requireHead: true });
  const numClasses = info.numClasses!;
  const classes = info.classes ?? Array.from({ length: numClasses }, (_, i) => String(i));
  const trainedImageSize = run
    ? (run.model.imageSize ?? run.settings.imageSize)
    : metadataInteger(info.metadata.imageSize);
  const imageSize = options.imageSize ?? trainedImageSize ?? DEFAULT_FOREIGN_IMAGE_SIZE;
  const metadataCrop = isOneOf(CROPS, info.metadata.crop) ? info.metadata.crop : undefined;
  const crop = options.crop ?? run?.settings.crop ?? metadataCrop ?? 'none';

  const params = createResNet18(numClasses);
  try {
    loadStateDict(params, dict);
  } catch (error) {
    disposeModel(params);
    throw new Error(`${info.file}: ${(error as Error).message}`, { cause: error });
  }
  return { params, classes, imageSize, trainedImageSize, crop, weightsFile: info.file, run, checkpoint: info };
}

function metadataInteger(text: string | undefined): number | undefined {
  const value = Number(text);
  return text !== undefined && Number.isInteger(value) && value > 0 ? value : undefined;
}

export interface InputShape {
  size: number;
  crop: CropMode;
}

/** An image file as the S×S×3 RGB bytes training would have cached for it. */
export async function preprocessFile(file: string, shape: InputShape): Promise<Uint8Array> {
  return preprocessImage(await readImageFile(file), { size: shape.size, crop: shape.crop });
}

/** Preprocessed images stacked into the normalised NHWC batch the network takes, as a host array. */
export function normalisedBatch(pixels: readonly Uint8Array[], size: number): Float32Array {
  const imageLength = size * size * 3;
  const x = new Float32Array(pixels.length * imageLength);
  pixels.forEach((image, i) => {
    if (image.length !== imageLength)
      throw new RangeError(`image ${i} has ${image.length} bytes, expected ${size}×${size}×3`);
    normaliseInto(image, x, i * imageLength);
  });
  return x;
}

/** `normalisedBatch` as a tensor. Owned by the caller. */
export function inputBatch(pixels: readonly Uint8Array[], size: number): tf.Tensor4D {
  return tf.tensor4d(normalisedBatch(pixels, size), [pixels.length, size, size, 3]);
}

/** Softmax in double precision, so probabilities sum to 1 to the last digit a report shows. */
export function softmax(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((value) => Math.exp(value - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((value) => value / sum);
}

export interface ImagePrediction {
  path: string;
  predicted: number;
  probabilities: number[];
  logits: number[];
}

export const DEFAULT_PREDICT_BATCH = 16;

/** The inference engine (onnxruntime, else wasm workers; infer/engine.ts) for `model`. Dispose it. */
export function modelEngine(
  model: LoadedModel,
  options: Omit<InferenceEngineOptions, 'params' | 'imageSize'> = {},
): Promise<InferenceEngine> {
  return createInferenceEngine({ ...options, params: model.params, imageSize: model.imageSize });
}

export interface PredictOptions {
  /** Images per inference call (default 16). */
  batchSize?: number;
  /** An engine of `model` to reuse; by default one is created for the call and disposed after it. */
  engine?: InferenceEngine;
}

/** Predicts every file in batches; an unreadable file throws with its path named (see `readImageFile`). */
export async function predictFiles(
  model: LoadedModel,
  files: readonly string[],
  options: PredictOptions = {},
): Promise<ImagePrediction[]> {
  const batchSize = options.batchSize ?? DEFAULT_PREDICT_BATCH;
  const engine = options.engine ?? (await modelEngine(model));
  const numClasses = model.classes.length;
  const results: ImagePrediction[] = [];
  try {
    for (let start = 0; start < files.length; start += batchSize) {
      const chunk = files.slice(start, start + batchSize);
      const pixels = await Promise.all(
        chunk.map((file) => preprocessFile(file, { size: model.imageSize, crop: model.crop })),
      );
      const logits = await engine.logits(normalisedBatch(pixels, model.imageSize), chunk.length);
      chunk.forEach((path, i) => {
        const row = Array.from(logits.subarray(i * numClasses, (i + 1) * numClasses));
        const probabilities = softmax(row);
        results.push({ path, predicted: argmax(probabilities), probabilities, logits: row });
      });
    }
  } finally {
    if (!options.engine) await engine.dispose();
  }
  return results;
}
