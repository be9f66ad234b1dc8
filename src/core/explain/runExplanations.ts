/**
 * Explanations for a finished run: Grad-CAM on a bounded, most-confident-first sample of every cell of the
 * confusion matrix (so the maps show what the model does when right *and* when wrong), PNGs in
 * `<run>/explanations/`, and the two checks that say whether the maps can be trusted (checks.ts).
 */
import { rm } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { BINARY_CELLS, MULTICLASS_CELLS, confusionCell, positiveClassIndex } from './cells.js';
import { RANDOMISATION_CASCADE, randomisationSanityCheck, shortcutCheck } from './checks.js';
import { explainPixels, overlayPixels, upsampledMaps, type ImageExplanation } from './explainImages.js';
import { DEFAULT_CAM_LAYER, resolveCamLayer, type CamMethod } from './gradcam.js';
import { DEFAULT_COLORMAP, sharedScale, type ColormapName } from './colormaps.js';
import { writePng } from './overlay.js';
import { loadModel, preprocessFile } from './predict.js';
import { disposeModel } from '../model/resnet18.js';
import type { ConfusionCell, ExplainedSample, Prediction, RunExplanations } from '../run/runFile.js';

export const EXPLANATIONS_DIR = 'explanations';
export const DEFAULT_SAMPLES_PER_CELL = 6;
/** Few images: the cascade recomputes their maps seven times, and a mean over a handful already separates maps that change from maps that do not. */
export const DEFAULT_SANITY_IMAGES = 4;

export interface ExplainRunOptions {
  method?: CamMethod;
  layer?: string;
  colormap?: ColormapName;
  /** At most this many samples per confusion cell (default 6). */
  perCell?: number;
  /** Images for the randomisation check (default 4), taken from the cells in turn. */
  sanityImages?: number;
  /** Seed of the sanity check's re-initialisation (default: the run's seed). */
  seed?: number;
  batchSize?: number;
  /**
   * Progress in units of work: each explained image, then each of the sanity check's map computations (the
   * trained maps and one per randomisation step). Suits a `phase: 'explain'` training event.
   */
  onProgress?: (done: number, total: number) => void;
  /** Warnings, e.g. an image that can no longer be read from the dataset. */
  onLog?: (message: string) => void;
  signal?: AbortSignal;
}

export interface SelectedSample {
  prediction: Prediction;
  cell: ConfusionCell;
  /** Probability of the predicted class. */
  confidence: number;
}

/**
 * Up to `perCell` predictions per confusion cell, most confident first (ties by path, so reruns pick the same
 * images): the confident mistakes are the ones most worth looking at. Cells in reporting order.
 */
export function selectSamples(
  predictions: readonly Prediction[],
  positive: number | null,
  perCell = DEFAULT_SAMPLES_PER_CELL,
): SelectedSample[] {
  const cells = positive === null ? MULTICLASS_CELLS : BINARY_CELLS;
  const all = predictions.map((prediction) => ({
    prediction,
    cell: confusionCell(prediction, positive),
    confidence: prediction.probabilities[prediction.predicted],
  }));
  return cells.flatMap((cell) =>
    all
      .filter((sample) => sample.cell === cell)
      .sort((a, b) => b.confidence - a.confidence || a.prediction.path.localeCompare(b.prediction.path))
      .slice(0, perCell),
  );
}

/** First of each cell, then second of each cell, …: a few images that still cover right and wrong answers. */
export function spreadAcrossCells<T extends { cell: ConfusionCell }>(samples: readonly T[], count: number): T[] {
  const byCell = new Map<ConfusionCell, T[]>();
  for (const sample of samples) byCell.set(sample.cell, [...(byCell.get(sample.cell) ?? []), sample]);
  const picked: T[] = [];
  for (let round = 0; picked.length < count && [...byCell.values()].some((group) => group.length > round); round++) {
    for (const group of byCell.values()) if (round < group.length && picked.length < count) picked.push(group[round]);
  }
  return picked;
}

/** A file-name-safe stem of an image path; callers number the files, which keeps equal names from different folders apart. */
export function pngStem(path: string): string {
  return basename(path, extname(path)).replace(/[^\w.-]+/g, '_');
}

/**
 * Explains a finished run from its folder: run.json (`predictions`, dataset root, preprocessing), the best
 * weights in `model.safetensors`, and the dataset's images. Replaces `<run>/explanations/` and returns what
 * belongs in run.json's `explanations`. Uses whatever tfjs backend is active (call `selectBackend` first).
 */
export async function explainRun(runDir: string, options: ExplainRunOptions = {}): Promise<RunExplanations> {
  const method = options.method ?? 'gradcam';
  const layer = resolveCamLayer(options.layer ?? DEFAULT_CAM_LAYER);
  const colormap = options.colormap ?? DEFAULT_COLORMAP;
  const model = await loadModel(runDir);
  try {
    const run = model.run!;
    const { imageSize: size, crop, params } = model;
    const positive = positiveClassIndex(run);

    const loaded: { sample: SelectedSample; pixels: Uint8Array }[] = [];
    for (const sample of selectSamples(run.predictions, positive, options.perCell)) {
      try {
        loaded.push({
          sample,
          pixels: await preprocessFile(join(run.dataset.root, sample.prediction.path), { size, crop }),
        });
      } catch (error) {
        options.onLog?.(`Explanations: skipped ${sample.prediction.path}: ${(error as Error).message}`);
      }
    }
    options.signal?.throwIfAborted();

    const total = loaded.length + 1 + RANDOMISATION_CASCADE.length;
    let done = 0;
    options.onProgress?.(done, total);
    const camOptions = { layer, method, batchSize: options.batchSize };
    const targets = loaded.map(({ sample }) => sample.prediction.predicted);
    const explanations = explainPixels(
      params,
      loaded.map(({ pixels }) => pixels),
      size,
      { ...camOptions, targets },
    );
    options.onProgress?.((done += loaded.length), total);
    const scale = sharedScale(explanations.map((explanation) => explanation.upsampled));

    const folder = join(runDir, EXPLANATIONS_DIR);
    await rm(folder, { recursive: true, force: true });
    const samples: ExplainedSample[] = [];
    for (const [i, { sample, pixels }] of loaded.entries()) {
      const files = await writeSamplePngs(
        runDir,
        `${sample.cell}/${String(i + 1).padStart(2, '0')}-${pngStem(sample.prediction.path)}`,
        pixels,
        explanations[i],
        size,
        colormap,
        scale,
      );
      const { prediction } = sample;
      samples.push({
        path: prediction.path,
        split: prediction.split,
        cell: sample.cell,
        true: prediction.true,
        predicted: prediction.predicted,
        confidence: sample.confidence,
        explainedClass: explanations[i].explainedClass,
        ...files,
        backgroundEnergy: explanations[i].backgroundEnergy,
        cam: explanations[i].cam,
      });
    }
    options.signal?.throwIfAborted();

    const sanitySet = spreadAcrossCells(
      loaded.map((entry, i) => ({ ...entry, cell: entry.sample.cell, target: targets[i] })),
      options.sanityImages ?? DEFAULT_SANITY_IMAGES,
    );
    const sanityPixels = sanitySet.map((entry) => entry.pixels);
    const sanityTargets = sanitySet.map((entry) => entry.target);
    const sanity = randomisationSanityCheck(
      params,
      (weights) => {
        const maps = upsampledMaps(weights, sanityPixels, size, { ...camOptions, targets: sanityTargets });
        options.onProgress?.(++done, total);
        return maps;
      },
      {
        seed: options.seed ?? run.settings.seed,
      },
    );
    const shortcut = shortcutCheck(
      explanations.map((explanation) => ({
        className: run.dataset.classes[explanation.explainedClass],
        backgroundEnergy: explanation.backgroundEnergy,
        backgroundArea: explanation.backgroundArea,
      })),
    );
    return { method, layer, colormap, sharedScale: scale, samples, sanity, shortcut };
  } finally {
    disposeModel(model.params);
  }
}

/** The preprocessed input, its overlay on its own scale, and on the shared scale; paths relative to the run. */
async function writeSamplePngs(
  runDir: string,
  name: string,
  pixels: Uint8Array,
  explanation: ImageExplanation,
  size: number,
  colormap: ColormapName,
  scale: number,
): Promise<Pick<ExplainedSample, 'original' | 'overlay' | 'overlayShared'>> {
  const files = {
    original: `${EXPLANATIONS_DIR}/${name}-original.png`,
    overlay: `${EXPLANATIONS_DIR}/${name}-overlay.png`,
    overlayShared: `${EXPLANATIONS_DIR}/${name}-overlay-shared.png`,
  };
  await writePng(join(runDir, files.original), pixels, size, size);
  await writePng(join(runDir, files.overlay), overlayPixels(pixels, explanation.upsampled, { colormap }), size, size);
  await writePng(
    join(runDir, files.overlayShared),
    overlayPixels(pixels, explanation.upsampled, { colormap, sharedScale: scale }),
    size,
    size,
  );
  return files;
}
