/**
 * Prediction with a trained model, from a run folder or a bare weights file. Images go through the very
 * functions training used (`readImageFile` → `preprocessImage` → `normaliseInto`), so a prediction here sees
 * the pixels a validation batch would have shown the network.
 */
import * as tf from '@tensorflow/tfjs-core';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { normaliseInto, preprocessImage } from '../data/preprocess.js';
import { CROPS, isOneOf, type CropMode } from '../train/settings.js';
import { readImageFile } from '../image/decode.js';
import { createResNet18, disposeModel, forward, type ResNet18Params } from '../model/resnet18.js';
import { argmax } from '../metrics.js';
import { loadStateDict } from '../model/stateDict.js';
import { MODEL_FILE, type RunFile } from '../run/runFile.js';
import { readRunFile } from '../run/runFileIo.js';
import { readSafetensors } from '../weights/safetensors.js';

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
}

export interface LoadModelOptions {
  /** Overrides the trained size (ResNet-18 pools adaptively, so any size ≥ 32 runs, but accuracy may suffer). */
  imageSize?: number;
  /** Overrides the crop; a weights file does not always say which one training used. */
  crop?: CropMode;
}

/** What a weights file's metadata or a run says about preprocessing, before options override it. */
interface ModelDescription {
  classes: string[] | undefined;
  imageSize: number | undefined;
  crop: CropMode | undefined;
  weightsFile: string;
  run: RunFile | undefined;
}

/**
 * Loads ResNet-18 from a run folder (run.json names the classes, size and crop; weights from its
 * `model.safetensors`) or from a safetensors file (training writes `classes` and `imageSize` into its
 * metadata). The caller owns the returned parameters (`disposeModel`).
 */
export async function loadModel(source: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  const description = (await stat(source)).isDirectory()
    ? await describeRun(source)
    : { classes: undefined, imageSize: undefined, crop: undefined, weightsFile: source, run: undefined };
  const weights = await readSafetensors(description.weightsFile);
  const metadata = weights.metadata;
  const fcBias = weights.tensors.get('fc.bias');
  if (!fcBias || fcBias.shape.length !== 1)
    throw new Error(`${description.weightsFile} has no ResNet-18 classifier (fc.bias)`);
  const numClasses = fcBias.shape[0];
  const classes =
    description.classes ??
    metadataClasses(metadata.classes, description.weightsFile) ??
    Array.from({ length: numClasses }, (_, i) => String(i));
  if (classes.length !== numClasses) {
    throw new Error(
      `${description.weightsFile} classifies ${numClasses} classes but ${classes.length} class names were given (${classes.join(', ')})`,
    );
  }
  const trainedImageSize = description.imageSize ?? metadataInteger(metadata.imageSize);
  const imageSize = options.imageSize ?? trainedImageSize;
  if (imageSize === undefined)
    throw new Error(`${description.weightsFile} does not record the image size it was trained at; give it explicitly`);
  const metadataCrop = isOneOf(CROPS, metadata.crop) ? metadata.crop : undefined;
  const crop = options.crop ?? description.crop ?? metadataCrop ?? 'none';

  const params = createResNet18(numClasses);
  try {
    loadStateDict(params, weights.tensors);
  } catch (error) {
    disposeModel(params);
    throw new Error(`${description.weightsFile}: ${(error as Error).message}`, { cause: error });
  }
  return {
    params,
    classes,
    imageSize,
    trainedImageSize,
    crop,
    weightsFile: description.weightsFile,
    run: description.run,
  };
}

async function describeRun(runDir: string): Promise<ModelDescription> {
  const run = await readRunFile(runDir);
  return {
    classes: run.dataset.classes,
    imageSize: run.model.imageSize ?? run.settings.imageSize,
    crop: run.settings.crop,
    weightsFile: join(runDir, run.model.weightsFile ?? MODEL_FILE),
    run,
  };
}

function metadataClasses(text: string | undefined, file: string): string[] | undefined {
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file}: metadata "classes" is not JSON: ${text}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((name) => typeof name === 'string'))
    throw new Error(`${file}: metadata "classes" is not a list of names: ${text}`);
  return parsed;
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

/** Preprocessed images stacked into the normalised NHWC batch the network takes. Owned by the caller. */
export function inputBatch(pixels: readonly Uint8Array[], size: number): tf.Tensor4D {
  const imageLength = size * size * 3;
  const x = new Float32Array(pixels.length * imageLength);
  pixels.forEach((image, i) => {
    if (image.length !== imageLength)
      throw new RangeError(`image ${i} has ${image.length} bytes, expected ${size}×${size}×3`);
    normaliseInto(image, x, i * imageLength);
  });
  return tf.tensor4d(x, [pixels.length, size, size, 3]);
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

/** Eval-mode logits of a batch of preprocessed images, one row per image. */
export function logitsOf(params: ResNet18Params, pixels: readonly Uint8Array[], size: number): number[][] {
  const logits = tf.tidy(() => forward(params, inputBatch(pixels, size), { training: false }).logits);
  try {
    return logits.arraySync();
  } finally {
    logits.dispose();
  }
}

export const DEFAULT_PREDICT_BATCH = 16;

/** Predicts every file in batches; an unreadable file throws with its path named (see `readImageFile`). */
export async function predictFiles(
  model: LoadedModel,
  files: readonly string[],
  batchSize = DEFAULT_PREDICT_BATCH,
): Promise<ImagePrediction[]> {
  const results: ImagePrediction[] = [];
  for (let start = 0; start < files.length; start += batchSize) {
    const chunk = files.slice(start, start + batchSize);
    const pixels = await Promise.all(
      chunk.map((file) => preprocessFile(file, { size: model.imageSize, crop: model.crop })),
    );
    logitsOf(model.params, pixels, model.imageSize).forEach((logits, i) => {
      const probabilities = softmax(logits);
      results.push({ path: chunk[i], predicted: argmax(probabilities), probabilities, logits });
    });
  }
  return results;
}
