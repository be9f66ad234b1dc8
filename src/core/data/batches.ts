/**
 * Streams training and evaluation batches from the image cache. Only the batch being used and the one being
 * read ahead are ever held as pixels, so memory stays flat however large the dataset. Everything random —
 * order, class balancing, augmentation — derives from (seed, epoch), so a run can be repeated or resumed
 * mid-training and see the same batches.
 */
import type { Labeler } from '../labels.js';
import { createRng, type Rng } from '../random.js';
import { readPreprocessed, type PreparedImages } from './cache.js';
import { normaliseInto } from './preprocess.js';

export interface Example {
  /** Relative to the dataset root, as prepared. */
  path: string;
  /** Class index into the run's class list. */
  label: number;
}

export interface Batch {
  /** N×S×S×3 floats (NHWC), ImageNet-normalised. */
  x: Float32Array;
  /** N class indices. */
  y: Int32Array;
  paths: string[];
}

export interface AugmentOptions {
  flipHorizontal: boolean;
  flipVertical: boolean;
  /** Rotations by 0, 90, 180 or 270°: a cell on a slide has no upright. */
  rotate90: boolean;
  /** Largest relative change of brightness (0.1 = ±10 %). */
  brightness: number;
  /** Largest relative change of contrast around the image's mean (0.1 = ±10 %). */
  contrast: number;
}

export const DEFAULT_AUGMENTATION: AugmentOptions = {
  flipHorizontal: true,
  flipVertical: true,
  rotate90: true,
  brightness: 0.1,
  contrast: 0.1,
};

/**
 * `sequential`: the examples in the given order (evaluation). `shuffle`: a fresh permutation each epoch.
 * `balanced`: each class drawn equally often, the rarer ones repeated, the epoch as long as the data.
 */
export type Sampling = 'sequential' | 'shuffle' | 'balanced';

export interface BatchOptions {
  batchSize: number;
  seed: number;
  /** Changes the order and augmentation from epoch to epoch. */
  epoch: number;
  sampling?: Sampling;
  /** Training only; `true` means DEFAULT_AUGMENTATION. */
  augment?: boolean | Partial<AugmentOptions>;
  /** Leave out a last, smaller batch (a batch of one upsets batch norm). */
  dropLast?: boolean;
}

/** Examples for `paths` whose label is one of `classNames`; the label becomes the class's index. */
export function examplesFor(paths: Iterable<string>, labelOf: Labeler, classNames: readonly string[]): Example[] {
  const indexOf = new Map(classNames.map((name, index) => [name, index]));
  const examples: Example[] = [];
  for (const path of paths) {
    const label = indexOf.get(labelOf(path) ?? '');
    if (label !== undefined) examples.push({ path, label });
  }
  return examples;
}

export function batchCount(exampleCount: number, options: Pick<BatchOptions, 'batchSize' | 'dropLast'>): number {
  return options.dropLast ? Math.floor(exampleCount / options.batchSize) : Math.ceil(exampleCount / options.batchSize);
}

export async function* batches(
  prepared: PreparedImages,
  examples: readonly Example[],
  options: BatchOptions,
): AsyncGenerator<Batch> {
  const { batchSize } = options;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batchSize must be a whole number ≥ 1, got ${batchSize}`);
  const epochRng = createRng(options.seed).fork(`epoch/${options.epoch}`);
  const order = epochOrder(examples, options.sampling ?? 'sequential', epochRng.fork('order'));
  const augmentation = resolveAugmentation(options.augment);
  const augmentRng = epochRng.fork('augment');
  const count = batchCount(order.length, options);

  const load = async (batchIndex: number): Promise<Batch> => {
    const positions = order.slice(batchIndex * batchSize, (batchIndex + 1) * batchSize);
    const chosen = positions.map((index) => examples[index]);
    const pixels = await Promise.all(chosen.map((example) => readPreprocessed(prepared, example.path)));
    const imageLength = prepared.size * prepared.size * 3;
    const x = new Float32Array(chosen.length * imageLength);
    pixels.forEach((image, i) => {
      // Keyed by the position in the epoch, so a balanced epoch's repeats of one image are augmented differently.
      const position = batchIndex * batchSize + i;
      const ready = augmentation
        ? augmentPixels(image, prepared.size, augmentRng.fork(String(position)), augmentation)
        : image;
      normaliseInto(ready, x, i * imageLength);
    });
    return { x, y: Int32Array.from(chosen, (example) => example.label), paths: chosen.map((example) => example.path) };
  };

  // One batch is read ahead while the caller trains on the current one.
  let pending = count > 0 ? load(0) : undefined;
  for (let batchIndex = 0; batchIndex < count; batchIndex++) {
    const current = pending!;
    pending = batchIndex + 1 < count ? load(batchIndex + 1) : undefined;
    // A caller that stops early never awaits the read-ahead; its failure must not surface as unhandled.
    pending?.catch(() => undefined);
    yield await current;
  }
}

/** Indices into `examples` in the order one epoch visits them. */
export function epochOrder(examples: readonly Example[], sampling: Sampling, rng: Rng): number[] {
  const indices = examples.map((_, index) => index);
  switch (sampling) {
    case 'sequential':
      return indices;
    case 'shuffle':
      return rng.shuffle(indices);
    case 'balanced':
      return balancedOrder(examples, rng);
  }
}

/**
 * Splits the epoch's draws as evenly as possible over the classes; each class walks through its own
 * shuffled examples and reshuffles when it runs out, so repeats are spread, not clumped.
 */
function balancedOrder(examples: readonly Example[], rng: Rng): number[] {
  const byClass = new Map<number, number[]>();
  examples.forEach((example, index) => {
    const members = byClass.get(example.label);
    if (members) members.push(index);
    else byClass.set(example.label, [index]);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);
  if (classes.length === 0) return [];
  const quota = Math.floor(examples.length / classes.length);
  const extra = new Set(
    rng
      .fork('extra')
      .shuffle([...classes])
      .slice(0, examples.length % classes.length),
  );
  const order: number[] = [];
  for (const label of classes) {
    const members = byClass.get(label)!;
    const classRng = rng.fork(`class/${label}`);
    const draws = quota + (extra.has(label) ? 1 : 0);
    for (let remaining = draws; remaining > 0; remaining -= members.length) {
      order.push(...classRng.shuffle([...members]).slice(0, remaining));
    }
  }
  return rng.fork('interleave').shuffle(order);
}

function resolveAugmentation(augment: BatchOptions['augment']): AugmentOptions | undefined {
  if (augment === undefined || augment === false) return undefined;
  return augment === true ? DEFAULT_AUGMENTATION : { ...DEFAULT_AUGMENTATION, ...augment };
}

/**
 * A random flip/rotation (on S×S×3 bytes), then brightness and contrast jitter. All five draws are made even
 * when an option is off, so turning one off does not change what the others draw.
 */
export function augmentPixels(pixels: Uint8Array, size: number, rng: Rng, options: AugmentOptions): Uint8Array {
  const flipHorizontal = rng.chance(0.5) && options.flipHorizontal;
  const flipVertical = rng.chance(0.5) && options.flipVertical;
  const drawnTurns = rng.int(4);
  const turns = options.rotate90 ? drawnTurns : 0;
  const brightness = 1 + options.brightness * rng.uniform(-1, 1);
  const contrast = 1 + options.contrast * rng.uniform(-1, 1);

  const out = new Uint8Array(pixels.length);
  const last = size - 1;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      // Follow the output pixel back to its source: undo the clockwise quarter turns, then the flips.
      let sourceX = x;
      let sourceY = y;
      for (let turn = 0; turn < turns; turn++) [sourceX, sourceY] = [sourceY, last - sourceX];
      if (flipHorizontal) sourceX = last - sourceX;
      if (flipVertical) sourceY = last - sourceY;
      const from = (sourceY * size + sourceX) * 3;
      const to = (y * size + x) * 3;
      out[to] = pixels[from];
      out[to + 1] = pixels[from + 1];
      out[to + 2] = pixels[from + 2];
    }
  }
  if (brightness !== 1 || contrast !== 1) jitterInPlace(out, brightness, contrast);
  return out;
}

function jitterInPlace(pixels: Uint8Array, brightness: number, contrast: number): void {
  let sum = 0;
  for (let i = 0; i < pixels.length; i++) sum += pixels[i];
  const mean = sum / pixels.length;
  for (let i = 0; i < pixels.length; i++) {
    const value = ((pixels[i] - mean) * contrast + mean) * brightness;
    pixels[i] = value <= 0 ? 0 : value >= 255 ? 255 : Math.round(value);
  }
}

/**
 * Loss weights per class: inverse frequency, scaled so their mean over the classes present is 1 (the loss
 * keeps its usual size). A class with no examples gets 0.
 */
export function classWeights(counts: readonly number[]): number[] {
  const inverse = counts.map((count) => (count > 0 ? 1 / count : 0));
  const present = inverse.filter((value) => value > 0);
  if (present.length === 0) return counts.map(() => 0);
  const mean = present.reduce((sum, value) => sum + value, 0) / present.length;
  return inverse.map((value) => value / mean);
}
