/**
 * Grad-CAM for preprocessed images, end to end: batches through the network, maps upsampled to the image,
 * background energy against the cell mask, and the overlays. Shared by `explainRun` and `leukemia-audit
 * explain`, so a map in a run folder and one from the command line are the same computation.
 */
import { backgroundEnergy, cellMask } from './checks.js';
import { computeCams, type CamMethod } from './gradcam.js';
import { normalisePerImage, normaliseShared, type ColormapName } from './colormaps.js';
import { blendOverlay, upsampleMaps } from './overlay.js';
import { argmax } from '../metrics.js';
import { inputBatch, softmax } from './predict.js';
import type { ResNet18Params } from '../model/resnet18.js';

export interface ExplainPixelsOptions {
  layer?: string;
  method?: CamMethod;
  /** Class explained per image; default the predicted one. */
  targets?: readonly number[];
  /** Images per forward/backward pass (default 8: at 224 px the tensors peak near 0.5 GB, the forward pass itself). */
  batchSize?: number;
}

export interface ImageExplanation {
  logits: number[];
  probabilities: number[];
  predicted: number;
  explainedClass: number;
  /** Raw map at the layer's resolution, `[row][column]`. */
  cam: number[][];
  /** The map bilinearly upsampled to the image, row-major, non-negative, not normalised. */
  upsampled: Float32Array;
  /** Share of the map's evidence outside the cell mask. */
  backgroundEnergy: number;
  /** Share of the image outside the cell mask. */
  backgroundArea: number;
}

export const DEFAULT_EXPLAIN_BATCH = 8;

/** Explains S×S×3 RGB images (as `preprocessImage` returns them), in batches. */
export function explainPixels(
  params: ResNet18Params,
  pixels: readonly Uint8Array[],
  size: number,
  options: ExplainPixelsOptions = {},
): ImageExplanation[] {
  const batchSize = options.batchSize ?? DEFAULT_EXPLAIN_BATCH;
  const results: ImageExplanation[] = [];
  for (let start = 0; start < pixels.length; start += batchSize) {
    const chunk = pixels.slice(start, start + batchSize);
    const x = inputBatch(chunk, size);
    let batch;
    try {
      batch = computeCams(params, x, {
        layer: options.layer,
        method: options.method,
        targets: options.targets?.slice(start, start + batchSize),
      });
    } finally {
      x.dispose();
    }
    const upsampled = upsampleMaps(batch.maps, size);
    chunk.forEach((image, i) => {
      const mask = cellMask(image);
      const probabilities = softmax(batch.logits[i]);
      results.push({
        logits: batch.logits[i],
        probabilities,
        predicted: argmax(probabilities),
        explainedClass: batch.targets[i],
        cam: batch.maps[i],
        upsampled: upsampled[i],
        backgroundEnergy: backgroundEnergy(upsampled[i], mask),
        backgroundArea: 1 - mask.reduce((sum, value) => sum + value, 0) / mask.length,
      });
    });
  }
  return results;
}

/** Only the upsampled maps: what the sanity check compares under trained and randomised weights. */
export function upsampledMaps(
  params: ResNet18Params,
  pixels: readonly Uint8Array[],
  size: number,
  options: ExplainPixelsOptions,
): Float32Array[] {
  return explainPixels(params, pixels, size, options).map((explanation) => explanation.upsampled);
}

export interface OverlayOptions {
  colormap?: ColormapName;
  alpha?: number;
  /** Divide by this shared scale instead of stretching the map's own range to [0, 1]. */
  sharedScale?: number;
}

/** The coloured map blended onto the image it explains (RGB bytes, same size). */
export function overlayPixels(pixels: Uint8Array, upsampled: Float32Array, options: OverlayOptions = {}): Uint8Array {
  const unit =
    options.sharedScale === undefined ? normalisePerImage(upsampled) : normaliseShared(upsampled, options.sharedScale);
  return blendOverlay(pixels, unit, options.colormap, options.alpha);
}
