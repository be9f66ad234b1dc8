import { createHash } from 'node:crypto';
import type { RawImage } from '../types.js';
import { toRgb } from './decode.js';

/**
 * SHA-256 (hex) of width, height (little-endian uint32 each) and the RGB pixels after `toRgb`, so the same picture
 * stored as BMP, PNG or lossless WebP, grey or RGB, hashes the same. Any changed pixel changes the hash.
 */
export function pixelHash(image: RawImage): string {
  const rgb = toRgb(image);
  const size = new Uint8Array(8);
  const view = new DataView(size.buffer);
  view.setUint32(0, rgb.width, true);
  view.setUint32(4, rgb.height, true);
  return createHash('sha256').update(size).update(rgb.data).digest('hex');
}

const SAMPLE_SIZE = 32;
const HASH_SIZE = 8;

/**
 * 64-bit perceptual hash (the DCT "pHash"), as 16 hex digits:
 *   1. RGB (alpha over black) to luma, Y = 0.299 R + 0.587 G + 0.114 B.
 *   2. Box-filter to 32×32: each cell is the mean of the source pixels whose index maps into it
 *      (a nearest pixel when the image is smaller than 32 in that direction).
 *   3. Orthonormal 2-D DCT-II of the 32×32 grid.
 *   4. Keep the 8×8 block of frequencies 1..8 in each direction: the lowest ones, without the DC row and column,
 *      which only carry overall brightness and its ramps.
 *   5. Bit i (row-major, most significant first) is 1 when coefficient i is above the median of the 64.
 * Similar-looking images have a small Hamming distance; the hash ignores global brightness and small edits.
 */
export function perceptualHash(image: RawImage): string {
  const coefficients = lowFrequencyDct(downsampleLuma(image));
  const median = medianOf(coefficients);
  let hex = '';
  for (let nibble = 0; nibble < coefficients.length / 4; nibble++) {
    let value = 0;
    for (let bit = 0; bit < 4; bit++) value = (value << 1) | (coefficients[nibble * 4 + bit] > median ? 1 : 0);
    hex += value.toString(16);
  }
  return hex;
}

/**
 * The 32×32 luma grid the perceptual hash starts from, rounded to bytes: small enough to keep for every image,
 * precise enough to confirm that two images with close hashes really look alike.
 */
export function lumaThumbnail(image: RawImage): Uint8Array {
  return Uint8Array.from(downsampleLuma(image), (v) => Math.round(v));
}

/** Luma at or below this is background: segmented cells sit on black. */
const BACKGROUND_LUMA = 16;

/**
 * Mean absolute difference (0–255) of two thumbnails over the pixels where either shows something. Averaged
 * over the whole grid, two different cells on a mostly black background would look nearly identical.
 */
export function thumbnailDistance(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length)
    throw new Error(`Cannot compare thumbnails of different sizes (${a.length} and ${b.length})`);
  let sum = 0;
  let foreground = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i] <= BACKGROUND_LUMA && b[i] <= BACKGROUND_LUMA) continue;
    sum += Math.abs(a[i] - b[i]);
    foreground++;
  }
  return foreground === 0 ? 0 : sum / foreground;
}

/** Number of differing bits between two hashes of equal length (hex strings from `perceptualHash`). */
export function hammingDistance(a: string, b: string): number {
  if (a.length !== b.length)
    throw new Error(`Cannot compare hashes of different lengths (${a.length} and ${b.length})`);
  let distance = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Number.parseInt(a[i], 16);
    const y = Number.parseInt(b[i], 16);
    if (Number.isNaN(x) || Number.isNaN(y))
      throw new Error(`Not a hex hash: ${JSON.stringify(Number.isNaN(x) ? a : b)}`);
    let diff = x ^ y;
    while (diff !== 0) {
      distance += diff & 1;
      diff >>>= 1;
    }
  }
  return distance;
}

function downsampleLuma(image: RawImage): Float64Array {
  const { width, height, data } = toRgb(image);
  if (width === 0 || height === 0) throw new Error(`Cannot hash an image of ${width}×${height} pixels`);
  const luma = new Float64Array(width * height);
  for (let i = 0, s = 0; i < luma.length; i++, s += 3) {
    luma[i] = 0.299 * data[s] + 0.587 * data[s + 1] + 0.114 * data[s + 2];
  }
  const columns = cellRanges(width);
  const rows = cellRanges(height);
  const grid = new Float64Array(SAMPLE_SIZE * SAMPLE_SIZE);
  for (let cy = 0; cy < SAMPLE_SIZE; cy++) {
    for (let cx = 0; cx < SAMPLE_SIZE; cx++) {
      let sum = 0;
      for (let y = rows.start[cy]; y < rows.end[cy]; y++) {
        for (let x = columns.start[cx]; x < columns.end[cx]; x++) sum += luma[y * width + x];
      }
      grid[cy * SAMPLE_SIZE + cx] = sum / ((rows.end[cy] - rows.start[cy]) * (columns.end[cx] - columns.start[cx]));
    }
  }
  return grid;
}

/** Source index range [start, end) for each of the 32 cells along an axis of `length` pixels; never empty. */
function cellRanges(length: number): { start: Int32Array; end: Int32Array } {
  const start = new Int32Array(SAMPLE_SIZE);
  const end = new Int32Array(SAMPLE_SIZE);
  for (let cell = 0; cell < SAMPLE_SIZE; cell++) {
    start[cell] = Math.min(length - 1, Math.floor((cell * length) / SAMPLE_SIZE));
    end[cell] = Math.max(start[cell] + 1, Math.floor(((cell + 1) * length) / SAMPLE_SIZE));
  }
  return { start, end };
}

let cosineTable: Float64Array | undefined;
/** Orthonormal DCT-II basis, rows 0..HASH_SIZE: c(u) · cos((2x + 1) u π / 64). */
function dctBasis(): Float64Array {
  if (cosineTable === undefined) {
    cosineTable = new Float64Array((HASH_SIZE + 1) * SAMPLE_SIZE);
    for (let u = 0; u <= HASH_SIZE; u++) {
      const norm = Math.sqrt((u === 0 ? 1 : 2) / SAMPLE_SIZE);
      for (let x = 0; x < SAMPLE_SIZE; x++) {
        cosineTable[u * SAMPLE_SIZE + x] = norm * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * SAMPLE_SIZE));
      }
    }
  }
  return cosineTable;
}

/** Coefficients (v, u) for v, u in 1..8, row-major; the separable transform only computes the rows it needs. */
function lowFrequencyDct(grid: Float64Array): Float64Array {
  const basis = dctBasis();
  const rowTransformed = new Float64Array(SAMPLE_SIZE * HASH_SIZE); // [y][u-1]
  for (let y = 0; y < SAMPLE_SIZE; y++) {
    for (let u = 1; u <= HASH_SIZE; u++) {
      let sum = 0;
      for (let x = 0; x < SAMPLE_SIZE; x++) sum += grid[y * SAMPLE_SIZE + x] * basis[u * SAMPLE_SIZE + x];
      rowTransformed[y * HASH_SIZE + u - 1] = sum;
    }
  }
  const coefficients = new Float64Array(HASH_SIZE * HASH_SIZE);
  for (let v = 1; v <= HASH_SIZE; v++) {
    for (let u = 0; u < HASH_SIZE; u++) {
      let sum = 0;
      for (let y = 0; y < SAMPLE_SIZE; y++) sum += rowTransformed[y * HASH_SIZE + u] * basis[v * SAMPLE_SIZE + y];
      coefficients[(v - 1) * HASH_SIZE + u] = sum;
    }
  }
  return coefficients;
}

function medianOf(values: Float64Array): number {
  const sorted = Float64Array.from(values).sort();
  const middle = sorted.length >>> 1;
  return sorted.length % 2 === 0 ? (sorted[middle - 1] + sorted[middle]) / 2 : sorted[middle];
}
