import { createHash } from 'node:crypto';
import type { RawImage } from '../types.js';
import { toRgb } from './decode.js';

/**
 * What the duplicate checks keep of every image (3 KB), all computed from one decoded buffer:
 * - `pixel`: SHA-256 (hex) of width, height and the RGB pixels, for exact copies in any format;
 * - `perceptual`: a 64-bit hash of the texture inside the object, to find candidate near-copies;
 * - `features`: the 32×32 luma thumbnail's normalised content and texture, to confirm them.
 */
export interface ImageDigest {
  pixel: string;
  perceptual: string;
  features: ThumbnailFeatures;
}

export function digestImage(image: RawImage): ImageDigest {
  const rgb = toRgb(image);
  const thumbnail = lumaThumbnail(rgb);
  const texture = textureResidual(thumbnail);
  return {
    pixel: pixelHash(rgb),
    perceptual: residualHash(texture),
    features: { content: quantise(normalisedContent(thumbnail)), texture: quantise(texture) },
  };
}

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

export const THUMBNAIL_SIDE = 32;
const HASH_SIZE = 8;

/** `thumbnailHash(lumaThumbnail(image))`. */
export function perceptualHash(image: RawImage): string {
  return thumbnailHash(lumaThumbnail(image));
}

/**
 * The 32×32 luma grid (Y = 0.299 R + 0.587 G + 0.114 B, alpha over black) rounded to bytes: each cell is the mean
 * of the source pixels whose index maps into it (a nearest pixel when the image is smaller than 32 in that
 * direction). Small enough to keep for every image, detailed enough to compare what lies inside two cells.
 */
export function lumaThumbnail(image: RawImage, side = THUMBNAIL_SIDE): Uint8Array {
  const { width, height, data } = toRgb(image);
  if (width === 0 || height === 0) throw new Error(`Cannot hash an image of ${width}×${height} pixels`);
  const columns = cellRanges(width, side);
  const rows = cellRanges(height, side);
  const sums = new Float64Array(side * side);
  if (width >= side && height >= side) {
    // Every pixel belongs to exactly one cell: one pass, channel sums kept in locals per run of a row within a cell.
    for (let cy = 0; cy < side; cy++) {
      for (let y = rows.start[cy]; y < rows.end[cy]; y++) {
        const rowStart = y * width * 3;
        for (let cx = 0; cx < side; cx++) {
          let red = 0;
          let green = 0;
          let blue = 0;
          for (let s = rowStart + columns.start[cx] * 3, end = rowStart + columns.end[cx] * 3; s < end; s += 3) {
            red += data[s];
            green += data[s + 1];
            blue += data[s + 2];
          }
          sums[cy * side + cx] += 299 * red + 587 * green + 114 * blue;
        }
      }
    }
  } else {
    for (let cy = 0; cy < side; cy++) {
      for (let cx = 0; cx < side; cx++) {
        let sum = 0;
        for (let y = rows.start[cy]; y < rows.end[cy]; y++) {
          for (let x = columns.start[cx], s = (y * width + x) * 3; x < columns.end[cx]; x++, s += 3) {
            sum += 299 * data[s] + 587 * data[s + 1] + 114 * data[s + 2];
          }
        }
        sums[cy * side + cx] = sum;
      }
    }
  }
  const thumbnail = new Uint8Array(side * side);
  for (let cy = 0; cy < side; cy++) {
    for (let cx = 0; cx < side; cx++) {
      const pixels = (rows.end[cy] - rows.start[cy]) * (columns.end[cx] - columns.start[cx]);
      thumbnail[cy * side + cx] = Math.round(sums[cy * side + cx] / (1000 * pixels));
    }
  }
  return thumbnail;
}

/** Source index range [start, end) for each of the 32 cells along an axis of `length` pixels; never empty. */
function cellRanges(length: number, side: number): { start: Int32Array; end: Int32Array } {
  const start = new Int32Array(side);
  const end = new Int32Array(side);
  for (let cell = 0; cell < side; cell++) {
    start[cell] = Math.min(length - 1, Math.floor((cell * length) / side));
    end[cell] = Math.max(start[cell] + 1, Math.floor(((cell + 1) * length) / side));
  }
  return { start, end };
}

/** A thumbnail cell this far from the background level belongs to the object (segmented cells sit on black). */
const FOREGROUND_MARGIN = 16;
/** Border cells spread wider than this: the picture has no uniform background, so all of it is content. */
const UNIFORM_BORDER_SPREAD = 24;
/** Fewer foreground cells than this: too little object to normalise, so all of the picture is content. */
const MIN_FOREGROUND_CELLS = 16;

/**
 * The thumbnail as z-scores over its foreground, 0 on the background: what is left after removing brightness
 * (offset) and contrast (gain), and the black surround that makes every segmented cell look alike.
 * The background level is the median of the border cells, so a brightened copy whose black turned grey
 * still separates into the same cell and background.
 */
export function normalisedContent(thumbnail: Uint8Array): Float64Array {
  const inMask = foregroundMask(thumbnail);
  let count = 0;
  let sum = 0;
  for (let i = 0; i < thumbnail.length; i++) {
    count += inMask[i];
    if (inMask[i]) sum += thumbnail[i];
  }
  const mean = sum / count;
  let squares = 0;
  for (let i = 0; i < thumbnail.length; i++) if (inMask[i]) squares += (thumbnail[i] - mean) ** 2;
  const sd = Math.max(1, Math.sqrt(squares / count));
  const z = new Float64Array(thumbnail.length);
  for (let i = 0; i < thumbnail.length; i++) if (inMask[i]) z[i] = (thumbnail[i] - mean) / sd;
  return z;
}

/** 1 for the thumbnail cells of the object, 0 for the background; all 1 when there is no uniform background. */
function foregroundMask(thumbnail: Uint8Array): Uint8Array {
  const side = Math.round(Math.sqrt(thumbnail.length));
  const border: number[] = [];
  for (let i = 0; i < side; i++) border.push(thumbnail[i], thumbnail[(side - 1) * side + i]);
  for (let i = 1; i < side - 1; i++) border.push(thumbnail[i * side], thumbnail[i * side + side - 1]);
  border.sort((a, b) => a - b); // 124 numbers
  const background = border[border.length >> 1];
  const spread = border[Math.floor(border.length * 0.9)] - border[Math.floor(border.length * 0.1)];
  const inMask = new Uint8Array(thumbnail.length);
  let count = 0;
  if (spread <= UNIFORM_BORDER_SPREAD) {
    for (let i = 0; i < thumbnail.length; i++) {
      if (Math.abs(thumbnail[i] - background) > FOREGROUND_MARGIN) {
        inMask[i] = 1;
        count++;
      }
    }
  }
  if (count < MIN_FOREGROUND_CELLS) inMask.fill(1);
  return inMask;
}

/**
 * Likeness of two thumbnails' content, −1 to 1: the correlation of their `normalisedContent`, so both the
 * outline and the texture inside it must agree, whatever the brightness and contrast of each copy.
 */
export function thumbnailSimilarity(a: Uint8Array, b: Uint8Array): number {
  return compareThumbnails(thumbnailFeatures(a), thumbnailFeatures(b)).content;
}

/** Likeness of the texture inside two thumbnails' outlines, −1 to 1: the correlation of their `textureResidual`. */
export function textureSimilarity(a: Uint8Array, b: Uint8Array): number {
  return compareThumbnails(thumbnailFeatures(a), thumbnailFeatures(b)).texture;
}

/** A thumbnail's `normalisedContent` and `textureResidual`, quantised to bytes: 2 KB to keep per image. */
export interface ThumbnailFeatures {
  content: Int8Array;
  texture: Int8Array;
}

/** z-scores and unit-variance residuals ×32, clamped at ±4σ: plenty for a correlation. */
const FEATURE_SCALE = 32;

export function thumbnailFeatures(thumbnail: Uint8Array): ThumbnailFeatures {
  return { content: quantise(normalisedContent(thumbnail)), texture: quantise(textureResidual(thumbnail)) };
}

function quantise(values: Float64Array): Int8Array {
  const out = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = Math.max(-127, Math.min(127, Math.round(values[i] * FEATURE_SCALE)));
  return out;
}

export function compareThumbnails(a: ThumbnailFeatures, b: ThumbnailFeatures): { content: number; texture: number } {
  if (a.content.length !== b.content.length)
    throw new Error(`Cannot compare thumbnails of different sizes (${a.content.length} and ${b.content.length})`);
  return { content: correlation(a.content, b.content), texture: correlation(a.texture, b.texture) };
}

/** Cosine of two zero-background vectors; 1 when both are all zero. */
function correlation(a: Int8Array, b: Int8Array): number {
  let dot = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return aa === 0 || bb === 0 ? (aa === bb ? 1 : 0) : dot / Math.sqrt(aa * bb);
}

/**
 * What lies inside the object once its outline and shading are gone: on the foreground cells away from its
 * edge, the thumbnail minus the best-fitting quadratic surface (a segmented cell's shading is smooth and
 * radial), scaled to unit variance; 0 elsewhere. Distinct cells of the same outline differ here; copies do not.
 */
export function textureResidual(thumbnail: Uint8Array): Float64Array {
  const side = Math.round(Math.sqrt(thumbnail.length));
  const mask = foregroundMask(thumbnail);
  const inner = new Uint8Array(mask.length);
  for (let y = 1; y < side - 1; y++) {
    for (let x = 1; x < side - 1; x++) {
      const i = y * side + x;
      inner[i] = mask[i] & mask[i - 1] & mask[i + 1] & mask[i - side] & mask[i + side];
    }
  }
  // Least squares of value ~ 1, u, v, u², uv, v² over the inner cells (normal equations, 6×6).
  const normal = new Float64Array(6 * 7);
  const terms = new Float64Array(6);
  let count = 0;
  for (let i = 0; i < inner.length; i++) {
    if (!inner[i]) continue;
    count++;
    polynomialTerms(i, side, terms);
    const value = thumbnail[i];
    for (let r = 0; r < 6; r++) {
      const term = terms[r];
      for (let c = r; c < 6; c++) normal[r * 7 + c] += term * terms[c];
      normal[r * 7 + 6] += term * value;
    }
  }
  const residual = new Float64Array(thumbnail.length);
  if (count < 12) return residual;
  for (let r = 1; r < 6; r++) for (let c = 0; c < r; c++) normal[r * 7 + c] = normal[c * 7 + r];
  const coefficients = solve(normal, 6);
  let squares = 0;
  for (let i = 0; i < inner.length; i++) {
    if (!inner[i]) continue;
    polynomialTerms(i, side, terms);
    let fit = 0;
    for (let k = 0; k < 6; k++) fit += coefficients[k] * terms[k];
    residual[i] = thumbnail[i] - fit;
    squares += residual[i] * residual[i];
  }
  const scale = 1 / Math.max(0.5, Math.sqrt(squares / count));
  for (let i = 0; i < residual.length; i++) residual[i] *= scale;
  return residual;
}

/** 1, u, v, u², uv, v² of cell `i`, with u and v the cell centre's position in [−0.5, 0.5]. */
function polynomialTerms(i: number, side: number, terms: Float64Array): void {
  const u = ((i % side) + 0.5) / side - 0.5;
  const v = (Math.floor(i / side) + 0.5) / side - 0.5;
  terms[0] = 1;
  terms[1] = u;
  terms[2] = v;
  terms[3] = u * u;
  terms[4] = u * v;
  terms[5] = v * v;
}

/** Gaussian elimination with partial pivoting of an n×(n+1) augmented matrix; singular directions get 0. */
function solve(augmented: Float64Array, n: number): Float64Array {
  const m = augmented;
  const w = n + 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * w + col]) > Math.abs(m[pivot * w + col])) pivot = r;
    if (pivot !== col)
      for (let c = 0; c < w; c++) [m[col * w + c], m[pivot * w + c]] = [m[pivot * w + c], m[col * w + c]];
    const p = m[col * w + col];
    if (Math.abs(p) < 1e-12) continue;
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * w + col] / p;
      if (f !== 0) for (let c = col; c < w; c++) m[r * w + c] -= f * m[col * w + c];
    }
  }
  const x = new Float64Array(n);
  for (let r = 0; r < n; r++) x[r] = Math.abs(m[r * w + r]) < 1e-12 ? 0 : m[r * w + n] / m[r * w + r];
  return x;
}

/**
 * 64-bit perceptual hash of a thumbnail, as 16 hex digits (a DCT "pHash" of its `textureResidual`):
 * the orthonormal 2-D DCT-II of the 32×32 grid, its 8×8 block of frequencies 1..8 in each direction, bit i
 * (row-major, most significant first) set when coefficient i is above the median of the 64. Copies that were
 * re-encoded, rescaled, brightened or given more contrast stay a few bits apart; distinct cells, whose outlines
 * and shading look alike but whose texture does not, spread out (a hash of the whole picture puts them close).
 */
export function thumbnailHash(thumbnail: Uint8Array): string {
  return residualHash(textureResidual(thumbnail));
}

function residualHash(residual: Float64Array): string {
  const coefficients = lowFrequencyDct(residual);
  const median = medianOf(coefficients);
  let hex = '';
  for (let nibble = 0; nibble < coefficients.length / 4; nibble++) {
    let value = 0;
    for (let bit = 0; bit < 4; bit++) value = (value << 1) | (coefficients[nibble * 4 + bit] > median ? 1 : 0);
    hex += value.toString(16);
  }
  return hex;
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

let cosineTable: Float64Array | undefined;
/** Orthonormal DCT-II basis, rows 0..HASH_SIZE: c(u) · cos((2x + 1) u π / 64). */
function dctBasis(): Float64Array {
  if (cosineTable === undefined) {
    cosineTable = new Float64Array((HASH_SIZE + 1) * THUMBNAIL_SIDE);
    for (let u = 0; u <= HASH_SIZE; u++) {
      const norm = Math.sqrt((u === 0 ? 1 : 2) / THUMBNAIL_SIDE);
      for (let x = 0; x < THUMBNAIL_SIDE; x++) {
        cosineTable[u * THUMBNAIL_SIDE + x] = norm * Math.cos(((2 * x + 1) * u * Math.PI) / (2 * THUMBNAIL_SIDE));
      }
    }
  }
  return cosineTable;
}

/** Coefficients (v, u) for v, u in 1..8, row-major; the separable transform only computes the rows it needs. */
function lowFrequencyDct(grid: Float64Array): Float64Array {
  const basis = dctBasis();
  const rowTransformed = new Float64Array(THUMBNAIL_SIDE * HASH_SIZE); // [y][u-1]
  for (let y = 0; y < THUMBNAIL_SIDE; y++) {
    for (let u = 1; u <= HASH_SIZE; u++) {
      let sum = 0;
      for (let x = 0; x < THUMBNAIL_SIDE; x++) sum += grid[y * THUMBNAIL_SIDE + x] * basis[u * THUMBNAIL_SIDE + x];
      rowTransformed[y * HASH_SIZE + u - 1] = sum;
    }
  }
  const coefficients = new Float64Array(HASH_SIZE * HASH_SIZE);
  for (let v = 1; v <= HASH_SIZE; v++) {
    for (let u = 0; u < HASH_SIZE; u++) {
      let sum = 0;
      for (let y = 0; y < THUMBNAIL_SIDE; y++) sum += rowTransformed[y * HASH_SIZE + u] * basis[v * THUMBNAIL_SIDE + y];
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
