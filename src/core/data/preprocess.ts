/**
 * Turns a decoded image into the square RGB the network sees. Training, evaluation and prediction must all
 * call `preprocessImage` and `normaliseInto` from here: a model is only as good as the agreement between the
 * pixels it was trained on and the pixels it is later shown.
 */
import { toRgb } from '../image/decode.js';
import type { CropMode } from '../train/settings.js';
import type { RawImage } from '../types.js';

/**
 * Part of every cache key: bump it whenever the output of `preprocessImage` changes for any input, so caches
 * written by an older version are never mistaken for current ones.
 */
export const PREPROCESSING_VERSION = 1;

export interface PreprocessOptions {
  /** Side S of the square output. */
  size: number;
  crop?: CropMode;
}

export const CENTER_CROP_FRACTION = 0.75;
/** A channel above this is not background: C-NMC's black is 0, lossy re-encodes leave a little noise. */
export const BLACK_THRESHOLD = 20;
/** Margin around the cell's bounding box, as a fraction of the box's longer side, on each side. */
export const CELL_MARGIN_FRACTION = 0.1;
/** A row or column with fewer foreground pixels than this share of its length is treated as noise. */
export const MIN_FOREGROUND_SHARE = 0.01;

/** ImageNet statistics, which the pretrained ResNet-18 weights expect. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/** A square region in source pixel coordinates; it may reach outside the image, where pixels count as black. */
export interface CropBox {
  left: number;
  top: number;
  side: number;
}

/** Returns S×S×3 RGB bytes, row-major, top row first. Deterministic: same input, same bytes, on every platform. */
export function preprocessImage(image: RawImage, options: PreprocessOptions): Uint8Array {
  const { size, crop = 'none' } = options;
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`Output size must be a whole number ≥ 1, got ${size}`);
  const rgb = toRgb(image);
  const box = cropBox(rgb, crop);
  const region = box === undefined ? rgb : extractRegion(rgb, box);
  return resizeRgb(region, size, size);
}

/** The square a crop mode keeps, or undefined for the whole image. */
export function cropBox(rgb: RawImage, crop: CropMode): CropBox | undefined {
  switch (crop) {
    case 'none':
      return undefined;
    case 'center': {
      const side = Math.max(1, Math.round(Math.min(rgb.width, rgb.height) * CENTER_CROP_FRACTION));
      return { left: Math.floor((rgb.width - side) / 2), top: Math.floor((rgb.height - side) / 2), side };
    }
    case 'cell':
      return cellBox(rgb);
  }
}

/** Bounding box of the foreground, widened by the margin, squared around its centre and kept inside the image when it fits. */
function cellBox(rgb: RawImage): CropBox | undefined {
  const { width, height, data } = rgb;
  const rowCounts = new Uint32Array(height);
  const columnCounts = new Uint32Array(width);
  for (let y = 0, offset = 0; y < height; y++) {
    for (let x = 0; x < width; x++, offset += 3) {
      if (data[offset] > BLACK_THRESHOLD || data[offset + 1] > BLACK_THRESHOLD || data[offset + 2] > BLACK_THRESHOLD) {
        rowCounts[y]++;
        columnCounts[x]++;
      }
    }
  }
  const rows = foregroundSpan(rowCounts, Math.max(1, Math.round(width * MIN_FOREGROUND_SHARE)));
  const columns = foregroundSpan(columnCounts, Math.max(1, Math.round(height * MIN_FOREGROUND_SHARE)));
  // An all-black image has no cell to find; keeping the whole frame is the only neutral choice.
  if (rows === undefined || columns === undefined) return undefined;
  const boxWidth = columns.last - columns.first + 1;
  const boxHeight = rows.last - rows.first + 1;
  const longer = Math.max(boxWidth, boxHeight);
  const side = longer + 2 * Math.ceil(longer * CELL_MARGIN_FRACTION);
  const left = placeInside(Math.round((columns.first + columns.last + 1 - side) / 2), side, width);
  const top = placeInside(Math.round((rows.first + rows.last + 1 - side) / 2), side, height);
  return { left, top, side };
}

function foregroundSpan(counts: Uint32Array, minimum: number): { first: number; last: number } | undefined {
  let first = -1;
  let last = -1;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] < minimum) continue;
    if (first < 0) first = i;
    last = i;
  }
  return first < 0 ? undefined : { first, last };
}

/** Shifts a span of `side` so it lies within [0, limit) when it can; a longer span is centred on the image instead. */
function placeInside(start: number, side: number, limit: number): number {
  if (side >= limit) return Math.floor((limit - side) / 2);
  return Math.min(Math.max(start, 0), limit - side);
}

/** Copies the crop box out of an RGB image; parts outside the image stay black, the background of segmented cells. */
function extractRegion(rgb: RawImage, box: CropBox): RawImage {
  const { side } = box;
  const data = new Uint8Array(side * side * 3);
  const x0 = Math.max(0, box.left);
  const x1 = Math.min(rgb.width, box.left + side);
  for (let y = 0; y < side; y++) {
    const sourceY = box.top + y;
    if (sourceY < 0 || sourceY >= rgb.height || x1 <= x0) continue;
    const from = (sourceY * rgb.width + x0) * 3;
    data.set(rgb.data.subarray(from, from + (x1 - x0) * 3), (y * side + (x0 - box.left)) * 3);
  }
  return { width: side, height: side, channels: 3, data };
}

/**
 * Resamples RGB to width × height, one axis after the other. Each axis averages the source pixels a target
 * pixel covers when shrinking (no aliasing from skipped pixels, unlike plain bilinear) and interpolates
 * bilinearly when enlarging. Separable area averaging equals 2-D area averaging exactly, and separable
 * bilinear equals 2-D bilinear, so splitting the axes changes no result.
 */
export function resizeRgb(rgb: RawImage, width: number, height: number): Uint8Array {
  if (rgb.channels !== 3) throw new RangeError(`resizeRgb needs 3 channels, got ${rgb.channels}`);
  if (rgb.width === width && rgb.height === height) return rgb.data.slice();
  const horizontal = resamplingWeights(rgb.width, width);
  const vertical = resamplingWeights(rgb.height, height);

  // Rows first: height × width intermediate in doubles, so rounding happens once, at the very end.
  const rows = new Float64Array(rgb.height * width * 3);
  for (let y = 0; y < rgb.height; y++) {
    const sourceRow = y * rgb.width * 3;
    const targetRow = y * width * 3;
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = horizontal.start[x]; k < horizontal.start[x + 1]; k++) {
        const at = sourceRow + horizontal.index[k] * 3;
        const weight = horizontal.weight[k];
        r += rgb.data[at] * weight;
        g += rgb.data[at + 1] * weight;
        b += rgb.data[at + 2] * weight;
      }
      const to = targetRow + x * 3;
      rows[to] = r;
      rows[to + 1] = g;
      rows[to + 2] = b;
    }
  }

  const out = new Uint8Array(width * height * 3);
  const rowLength = width * 3;
  const accumulator = new Float64Array(rowLength);
  for (let y = 0; y < height; y++) {
    accumulator.fill(0);
    for (let k = vertical.start[y]; k < vertical.start[y + 1]; k++) {
      const sourceRow = vertical.index[k] * rowLength;
      const weight = vertical.weight[k];
      for (let i = 0; i < rowLength; i++) accumulator[i] += rows[sourceRow + i] * weight;
    }
    const targetRow = y * rowLength;
    for (let i = 0; i < rowLength; i++) out[targetRow + i] = toByte(accumulator[i]);
  }
  return out;
}

/**
 * Which source pixels contribute to each target pixel along one axis, and how much, in compressed sparse rows:
 * target i reads index[start[i] … start[i+1]) with the matching weights, which sum to 1.
 */
interface ResamplingWeights {
  start: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

function resamplingWeights(sourceLength: number, targetLength: number): ResamplingWeights {
  const scale = sourceLength / targetLength;
  const start = new Int32Array(targetLength + 1);
  const index: number[] = [];
  const weight: number[] = [];
  for (let i = 0; i < targetLength; i++) {
    start[i] = index.length;
    if (scale >= 1) {
      // Target pixel i covers source interval [i·scale, (i+1)·scale); each source pixel counts by its overlap.
      const from = i * scale;
      const to = (i + 1) * scale;
      for (let j = Math.floor(from); j < Math.min(sourceLength, Math.ceil(to)); j++) {
        const overlap = Math.min(to, j + 1) - Math.max(from, j);
        if (overlap <= 0) continue;
        index.push(j);
        weight.push(overlap / scale);
      }
    } else {
      // Pixel centres line up (half-pixel convention); beyond the outermost centres the edge pixel repeats.
      const position = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), sourceLength - 1);
      const left = Math.floor(position);
      const fraction = position - left;
      index.push(left);
      weight.push(1 - fraction);
      if (fraction > 0) {
        index.push(left + 1);
        weight.push(fraction);
      }
    }
  }
  start[targetLength] = index.length;
  return { start, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

function toByte(value: number): number {
  // Weights sum to 1 only up to rounding error, so clamp before rounding half up.
  return value <= 0 ? 0 : value >= 255 ? 255 : Math.floor(value + 0.5);
}

/**
 * Writes `pixels` (RGB bytes) into `out` from `offset` as ImageNet-normalised floats, (v/255 − mean) / std per
 * channel, in the same interleaved HWC order, which is NHWC once images are stacked.
 */
export function normaliseInto(pixels: Uint8Array, out: Float32Array, offset = 0): void {
  if (offset + pixels.length > out.length) throw new RangeError('normaliseInto: output too small');
  for (let channel = 0; channel < 3; channel++) {
    const scale = 1 / (255 * IMAGENET_STD[channel]);
    const shift = IMAGENET_MEAN[channel] / IMAGENET_STD[channel];
    for (let i = channel; i < pixels.length; i += 3) out[offset + i] = pixels[i] * scale - shift;
  }
}
