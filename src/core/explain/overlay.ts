/**
 * From a raw class activation map to a picture: bilinear upsampling to the network input, scaling to [0, 1]
 * (per image, or on a scale shared by a set of images so that their strengths compare), a colormap, and
 * alpha blending onto the preprocessed image the map was computed for, written as PNG. The colour maps and
 * the scaling are in colormaps.ts (no Node imports), which the results view uses to recolour maps itself.
 */
import * as tf from '@tensorflow/tfjs-core';
import { writeFileAtomic } from '../fsAtomic.js';
import { loadSharp } from '../image/decode.js';
import { DEFAULT_COLORMAP, colormapTable, colourIndex, type ColormapName } from './colormaps.js';

/** Weight of the colour in the blend: equal parts map and cell, so both stay legible. */
export const DEFAULT_OVERLAY_ALPHA = 0.5;

/**
 * Upsamples raw maps (`[row][column]`, any size) to size × size with bilinear interpolation and half-pixel
 * centres (OpenCV's `cv2.resize`, which pytorch-grad-cam uses), edges clamped. A convex combination of
 * non-negative values, so the result stays non-negative and within the map's range. Row-major output.
 */
export function upsampleMaps(maps: readonly (readonly (readonly number[])[])[], size: number): Float32Array[] {
  if (maps.length === 0) return [];
  const upsampled = tf.tidy(() => {
    const stacked = tf.expandDims(tf.tensor3d(maps as number[][][]), 3) as tf.Tensor4D;
    return tf.image.resizeBilinear(stacked, [size, size], false, true);
  });
  try {
    const data = upsampled.dataSync() as Float32Array;
    return maps.map((_, i) => data.slice(i * size * size, (i + 1) * size * size));
  } finally {
    upsampled.dispose();
  }
}

/**
 * Blends the coloured map onto RGB pixels: (1 − alpha) · pixel + alpha · colour(map), per pixel. `unitMap`
 * holds one value in [0, 1] per pixel, row-major, as `pixels` does (RGB bytes).
 */
export function blendOverlay(
  pixels: Uint8Array,
  unitMap: Float32Array,
  colormap: ColormapName = DEFAULT_COLORMAP,
  alpha = DEFAULT_OVERLAY_ALPHA,
): Uint8Array {
  if (pixels.length !== unitMap.length * 3)
    throw new RangeError(`overlay: ${pixels.length / 3} pixels but ${unitMap.length} map values`);
  if (!(alpha >= 0 && alpha <= 1)) throw new RangeError(`overlay alpha must be in [0, 1], got ${alpha}`);
  const table = colormapTable(colormap);
  const out = new Uint8Array(pixels.length);
  for (let p = 0; p < unitMap.length; p++) {
    const colour = colourIndex(unitMap[p]) * 3;
    for (let channel = 0; channel < 3; channel++) {
      out[p * 3 + channel] = Math.round((1 - alpha) * pixels[p * 3 + channel] + alpha * table[colour + channel]);
    }
  }
  return out;
}

/** Encodes square RGB bytes as PNG. */
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  if (rgb.length !== width * height * 3)
    throw new RangeError(`PNG: ${rgb.length} bytes do not make ${width}×${height} RGB`);
  return loadSharp()(rgb, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

/** Writes RGB bytes as a PNG file, atomically (a viewer never sees half a file). */
export async function writePng(file: string, rgb: Uint8Array, width: number, height: number): Promise<void> {
  await writeFileAtomic(file, await encodePng(rgb, width, height));
}
