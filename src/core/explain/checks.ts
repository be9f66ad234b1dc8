/**
 * Two checks that say whether a saliency map deserves to be read at all.
 *
 * Sanity (Adebayo et al. 2018, "Sanity Checks for Saliency Maps", model-parameter randomisation, cascading):
 * re-initialise the network from the top down — fc, then layer4, layer3, layer2, layer1, the stem — and
 * recompute the maps after each step. A map that explains the *trained* model must change once the weights
 * it depends on are random; one that barely changes is mostly an edge detector of the input.
 *
 * Shortcut: C-NMC cells are segmented onto black. Evidence the model finds on the black background can only
 * come from the cell's outline, size or position, or from artefacts — worth a warning either way.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BLACK_THRESHOLD } from '../data/preprocess.js';
import {
  initialValue,
  numClassesOf,
  resnet18ParamSpecs,
  disposeModel,
  type ResNet18Params,
} from '../model/resnet18.js';
import { randomSourceOf } from '../random.js';
import type { RunExplanations, SanityStep } from '../run/runFile.js';

// ---------------------------------------------------------------------------------------------------
// Correlation

/**
 * 1-based ranks with ties given the mean of the ranks they span (as `scipy.stats.rankdata(method='average')`),
 * which is what makes Spearman's coefficient correct for maps full of equal values (every ReLU zero).
 */
export function averageRanks(values: ArrayLike<number>): Float64Array {
  const order = Array.from({ length: values.length }, (_, i) => i).sort((a, b) => values[a] - values[b]);
  const ranks = new Float64Array(values.length);
  for (let start = 0; start < order.length;) {
    let end = start + 1;
    while (end < order.length && values[order[end]] === values[order[start]]) end++;
    // Positions start … end − 1 hold equal values: ranks start + 1 … end, mean (start + 1 + end) / 2.
    for (let k = start; k < end; k++) ranks[order[k]] = (start + 1 + end) / 2;
    start = end;
  }
  return ranks;
}

/** Pearson's correlation coefficient, in double precision; NaN when either side is constant. */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`correlation of ${a.length} and ${b.length} values`);
  const n = a.length;
  let meanA = 0;
  let meanB = 0;
  for (let i = 0; i < n; i++) {
    meanA += a[i] / n;
    meanB += b[i] / n;
  }
  let covariance = 0;
  let varianceA = 0;
  let varianceB = 0;
  for (let i = 0; i < n; i++) {
    const da = a[i] - meanA;
    const db = b[i] - meanB;
    covariance += da * db;
    varianceA += da * da;
    varianceB += db * db;
  }
  return varianceA > 0 && varianceB > 0 ? covariance / Math.sqrt(varianceA * varianceB) : NaN;
}

/** Spearman's rank correlation with ties: Pearson's coefficient of the average ranks. NaN when either side is constant. */
export function spearman(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return pearson(averageRanks(a), averageRanks(b));
}

/**
 * How alike two maps of one image are, for the sanity check: Spearman's coefficient, with the cases it leaves
 * undefined decided the way the check needs. Two blank maps are the same map (1: nothing changed); a blank
 * map against a structured one shares no ordering (0: it changed).
 */
export function mapSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const rho = spearman(a, b);
  if (!Number.isNaN(rho)) return rho;
  return isConstant(a) && isConstant(b) ? 1 : 0;
}

function isConstant(values: ArrayLike<number>): boolean {
  for (let i = 1; i < values.length; i++) if (values[i] !== values[0]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Sanity check: cascading model-parameter randomisation

export interface RandomisationStep {
  /** What `SanityStep.randomisedUpTo` reports: the last group re-initialised. */
  name: string;
  /** `state_dict` key prefixes of the group. */
  prefixes: readonly string[];
}

/** Top down, as Adebayo et al.: the classifier first, the stem last. Each step keeps the previous ones random. */
export const RANDOMISATION_CASCADE: readonly RandomisationStep[] = [
  { name: 'fc', prefixes: ['fc.'] },
  { name: 'layer4', prefixes: ['layer4.'] },
  { name: 'layer3', prefixes: ['layer3.'] },
  { name: 'layer2', prefixes: ['layer2.'] },
  { name: 'layer1', prefixes: ['layer1.'] },
  { name: 'conv1/bn1', prefixes: ['conv1.', 'bn1.'] },
];

/**
 * The step that decides: once fc and layer4 are random, a map taken at layer4 (or below) has lost every
 * weight that turned the features into this model's evidence. The threshold is ours, not the paper's: in
 * Adebayo et al.'s cascade, the methods that failed (guided backpropagation and the like) kept their maps
 * nearly intact while Grad-CAM's decorrelated at once. Two maps that both sit on the cell share some coarse
 * layout, so a moderate correlation is expected even for a sound method; a mean Spearman above 0.9 means the
 * maps are nearly unchanged, and fails.
 */
export const SANITY_DECISIVE_STEP = 'layer4';
export const SANITY_MAX_SPEARMAN = 0.9;

/** Maps for a fixed set of inputs under the given parameters: one flattened, same-length map per image. */
export type MapsUnder = (params: ResNet18Params) => Float32Array[];

export interface SanityOptions {
  /** Seed of the re-initialisation (default 0). */
  seed?: number;
  /** Mean Spearman at the decisive step above which the check fails (default `SANITY_MAX_SPEARMAN`). */
  threshold?: number;
}

/** A trainable copy of every parameter and buffer; re-assigning a copy never touches the original. */
function copyModel(params: ResNet18Params): ResNet18Params {
  return new Map([...params].map(([name, variable]) => [name, tf.variable(variable, variable.trainable)]));
}

/** Re-initialises the named groups' parameters and buffers exactly as `createResNet18` would. */
function reinitialise(params: ResNet18Params, prefixes: readonly string[], random: () => number): void {
  for (const spec of resnet18ParamSpecs(numClassesOf(params))) {
    const variable = params.get(spec.name);
    if (variable && prefixes.some((prefix) => spec.name.startsWith(prefix)))
      tf.tidy(() => variable.assign(initialValue(spec, random)));
  }
}

/**
 * Runs the cascade on a copy of `params` (which stay as they are) and compares each step's maps with the
 * trained ones, image by image. `mapsUnder` must explain the same class for an image under every set of
 * weights (fix the targets to the trained model's), or the comparison mixes two questions.
 */
export function randomisationSanityCheck(
  params: ResNet18Params,
  mapsUnder: MapsUnder,
  options: SanityOptions = {},
): RunExplanations['sanity'] {
  const threshold = options.threshold ?? SANITY_MAX_SPEARMAN;
  const trained = mapsUnder(params);
  if (trained.length === 0)
    return { steps: [], passed: false, message: 'No images to run the randomisation check on.' };
  const random = randomSourceOf(options.seed ?? 0);
  const randomised = copyModel(params);
  const steps: SanityStep[] = [];
  try {
    for (const step of RANDOMISATION_CASCADE) {
      reinitialise(randomised, step.prefixes, random);
      const maps = mapsUnder(randomised);
      const similarities = trained.map((map, i) => mapSimilarity(map, maps[i]));
      steps.push({
        randomisedUpTo: step.name,
        spearman: similarities.reduce((a, b) => a + b, 0) / similarities.length,
      });
    }
  } finally {
    disposeModel(randomised);
  }
  const decisive = steps.find((step) => step.randomisedUpTo === SANITY_DECISIVE_STEP)!;
  const passed = decisive.spearman <= threshold;
  const figure = `mean Spearman ${decisive.spearman.toFixed(2)} between trained and randomised maps once fc and layer4 are re-initialised (${trained.length} images)`;
  const message = passed
    ? `Passed: the maps depend on the trained weights (${figure}, at most ${threshold} allowed).`
    : `Failed: the maps barely change when the model's weights are randomised (${figure}, above ${threshold}). They show the image more than the model's reasoning; do not read them as explanations.`;
  return { steps, passed, message };
}

// ---------------------------------------------------------------------------------------------------
// Shortcut check: evidence on the background

/**
 * Cell mask of preprocessed RGB bytes: 1 where any channel is above `BLACK_THRESHOLD`, the same foreground
 * rule `preprocessImage` uses to find the cell for `--crop cell`.
 */
export function cellMask(pixels: Uint8Array): Uint8Array {
  const mask = new Uint8Array(pixels.length / 3);
  for (let p = 0; p < mask.length; p++) {
    mask[p] =
      pixels[p * 3] > BLACK_THRESHOLD || pixels[p * 3 + 1] > BLACK_THRESHOLD || pixels[p * 3 + 2] > BLACK_THRESHOLD
        ? 1
        : 0;
  }
  return mask;
}

/**
 * Share of the map's total (non-negative, upsampled to the image) that lies on background pixels. A blank
 * map puts no evidence anywhere, so none on the background: 0.
 */
export function backgroundEnergy(map: Float32Array, mask: Uint8Array): number {
  if (map.length !== mask.length)
    throw new RangeError(`background energy: ${map.length} map values but ${mask.length} mask pixels`);
  let total = 0;
  let background = 0;
  for (let p = 0; p < map.length; p++) {
    const value = Math.max(0, map[p]);
    total += value;
    if (!mask[p]) background += value;
  }
  return total > 0 ? background / total : 0;
}

/**
 * A class whose maps put, on average, more than half their evidence on the black background is flagged: for
 * a cell that fills a fair part of the frame, the model then relies more on what surrounds it than on the
 * cell itself. (A map spread evenly would score the background's share of the frame; report it alongside.)
 */
export const SHORTCUT_THRESHOLD = 0.5;

export interface ShortcutSample {
  /** The class the map explains. */
  className: string;
  backgroundEnergy: number;
  /** Share of the image that is background (outside the cell mask), for context. */
  backgroundArea: number;
}

export function shortcutCheck(
  samples: readonly ShortcutSample[],
  threshold = SHORTCUT_THRESHOLD,
): RunExplanations['shortcut'] {
  const byClass = new Map<string, ShortcutSample[]>();
  for (const sample of samples) byClass.set(sample.className, [...(byClass.get(sample.className) ?? []), sample]);
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const perClass: Record<string, number> = {};
  for (const [name, group] of byClass) perClass[name] = mean(group.map((s) => s.backgroundEnergy));
  const flaggedClasses = Object.entries(perClass).filter(([, energy]) => energy > threshold);
  const area =
    samples.length > 0
      ? ` (the background covers ${(100 * mean(samples.map((s) => s.backgroundArea))).toFixed(0)} % of the images on average)`
      : '';
  const percent = (value: number) => `${(100 * value).toFixed(0)} %`;
  const message =
    samples.length === 0
      ? 'No maps to check.'
      : flaggedClasses.length > 0
        ? `Possible shortcut: maps for ${flaggedClasses.map(([name, energy]) => `"${name}" put ${percent(energy)}`).join(', ')} of their evidence on the black background, more than ${percent(threshold)}${area}. The model may rely on the cell's outline, size or the background rather than its content.`
        : `Maps keep their evidence on the cell: at most ${percent(Math.max(...Object.values(perClass)))} on the background per class, threshold ${percent(threshold)}${area}.`;
  return { perClass, threshold, flagged: flaggedClasses.length > 0, message };
}
