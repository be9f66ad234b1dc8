/**
 * The PyTorch engine's two inference jobs, shaped as the embedded engine's answers so `evaluate` and `probe`
 * judge them with the same code: predictions (logits, softmax, arg-max) of a loaded model, and the pooled
 * features of a probe's backbone. Both run on images leukemia-audit prepared (decoded, cropped and resized
 * into its image cache), so the network sees the very bytes the embedded engine would.
 */
import { prepareImages, type PreparedImages } from '../data/cache.js';
import { softmax, type ImagePrediction, type LoadedModel } from '../explain/predict.js';
import { argmax } from '../metrics.js';
import { FEATURE_WIDTH, type ResNet18Params } from '../model/resnet18.js';
import { exportStateDict } from '../model/stateDict.js';
import type { FeatureComputer } from '../probe/features.js';
import type { TorchEngineReport } from '../run/runFile.js';
import type { UnreadableEntry } from '../types.js';
import type { TorchInterpreter } from './interpreter.js';
import { inferWithTorch } from './inference.js';

export interface TorchJobOptions {
  interpreter: TorchInterpreter;
  device: string;
  /** Images per forward pass (default TORCH_INFERENCE_BATCH). */
  batchSize?: number;
  signal?: AbortSignal;
  onLog?: (message: string) => void;
}

export interface TorchPredictionsResult {
  predictions: ImagePrediction[];
  skipped: UnreadableEntry[];
  engine: TorchEngineReport;
}

/** `model`'s prediction for every image in `paths` (relative to `root`) that can be read, in their order. */
export async function predictWithTorch(
  model: LoadedModel,
  root: string,
  paths: readonly string[],
  options: TorchJobOptions & {
    onProgress?: (phase: 'prepare' | 'predict', done: number, total: number, etaSeconds?: number) => void;
  },
): Promise<TorchPredictionsResult> {
  const prepared = await prepareImages(root, paths, {
    size: model.imageSize,
    crop: model.crop,
    signal: options.signal,
    onProgress: (done, total) => options.onProgress?.('prepare', done, total),
  });
  const rows = paths.filter((path) => prepared.keys.has(path));
  options.onProgress?.('predict', 0, rows.length);
  const { values, width, engine } = await inferWithTorch({
    ...options,
    output: 'logits',
    stateDict: exportStateDict(model.params),
    prepared,
    paths: rows,
    onProgress: (done, total, eta) => options.onProgress?.('predict', done, total, eta),
  });
  const predictions = rows.map((path, i): ImagePrediction => {
    const logits = Array.from(values.subarray(i * width, (i + 1) * width));
    const probabilities = softmax(logits);
    return { path, predicted: argmax(probabilities), probabilities, logits };
  });
  return { predictions, skipped: prepared.skipped, engine };
}

/**
 * featureTable's `compute` for a probe's backbone (identity head: only its backbone matters) in PyTorch;
 * `onEngine` hears the engine it ran on, for run.json.
 */
export function torchFeatureComputer(
  params: ResNet18Params,
  prepared: PreparedImages,
  options: TorchJobOptions & { onEngine?: (engine: TorchEngineReport) => void },
): FeatureComputer {
  return async (paths, onComputed) => {
    const { values, width } = await inferWithTorch({
      ...options,
      output: 'features',
      stateDict: exportStateDict(params),
      prepared,
      paths,
      onProgress: (done) => onComputed(done),
    });
    if (width !== FEATURE_WIDTH)
      throw new Error(`The PyTorch engine gave ${width} features per image, not ${FEATURE_WIDTH}`);
    return values;
  };
}
