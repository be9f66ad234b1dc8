/**
 * Frozen ResNet-18 features of every image for the batch-effect probe: the 512 average-pooled activations
 * before the classifier, in eval mode, from ImageNet weights, a checkpoint or a random initialisation.
 *
 * They are computed through the inference engine evaluation uses (infer/engine.ts): the classifier
 * is replaced by the 512 × 512 identity with zero bias, so the "logits" ARE the pooled features (exactly:
 * each is one product by 1 plus products by 0). `pooledFeatures` is the only place the embedded engine runs
 * the network; the user's PyTorch computes them instead through `featureTable`'s `compute`.
 *
 * Features are cached on disk under the user cache folder (never in the dataset), one 2 KiB file per image,
 * keyed by the preprocessed image's key (content SHA-256, size, crop, preprocessing version: `data/cache.ts`)
 * and the SHA-256 of the backbone's weights, so a second probe of the same data reads them back.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { forEachBounded } from '../concurrency.js';
import { defaultImageCacheDir, readPreprocessed, type PreparedImages } from '../data/cache.js';
import { writeFileAtomic } from '../fsAtomic.js';
import { createResNet18, disposeModel, FEATURE_WIDTH, type ResNet18Params } from '../model/resnet18.js';
import { loadStateDict } from '../model/stateDict.js';
import { normalisedBatch } from '../explain/predict.js';
import { createInferenceEngine, type InferenceEngine, type InferenceEngineOptions } from '../infer/engine.js';
import type { CheckpointInfo } from '../weights/checkpointInfo.js';
import { IMAGENET_WEIGHTS, NO_WEIGHTS, resolveWeights } from '../weights/resolveWeights.js';

export const FEATURES_VERSION = 1;
const CACHE_READS_IN_FLIGHT = 64;
/** `auto`: ImageNet when a verified copy is on disk or can be fetched, else a seeded random initialisation. */
export const AUTO_WEIGHTS = 'auto';

export interface FeatureBackbone {
  params: ResNet18Params;
  /** SHA-256 of the backbone's parameters and buffers: what the feature cache is keyed by. */
  sha256: string;
  /** "ImageNet (torchvision resnet18-f37072fd.pth) from …", "random initialisation (seed 1)". */
  description: string;
  /** False for a random initialisation: its features see colour and brightness, little shape or texture. */
  pretrained: boolean;
  checkpoint: CheckpointInfo | null;
}

/** Loads the backbone `choice` names (`auto`, `imagenet`, `none`, a checkpoint or run folder), head = identity. */
export async function loadFeatureBackbone(
  choice: string,
  options: { seed: number; signal?: AbortSignal; onLog?: (message: string) => void },
): Promise<FeatureBackbone> {
  let resolved = undefined;
  let imagenetUnavailable: string | undefined;
  if (choice === AUTO_WEIGHTS) {
    try {
      // A short connect timeout: offline, the random backbone is the answer, not a 15 s wait.
      resolved = await resolveWeights(IMAGENET_WEIGHTS, {
        numClasses: FEATURE_WIDTH,
        connectTimeoutMs: 5000,
        signal: options.signal,
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      imagenetUnavailable = ((error as Error).message.split('\n')[0] ?? '').trim();
      options.onLog?.(`ImageNet weights are not available (${imagenetUnavailable}); the probe uses a random backbone.`);
    }
  } else if (choice !== NO_WEIGHTS) {
    resolved = await resolveWeights(choice, { numClasses: FEATURE_WIDTH, signal: options.signal });
  }
  const params = createResNet18(FEATURE_WIDTH, options.seed);
  try {
    if (resolved) loadStateDict(params, resolved.dict, { allowHeadMismatch: true });
    tf.tidy(() => {
      params.get('fc.weight')!.assign(tf.eye(FEATURE_WIDTH));
      params.get('fc.bias')!.assign(tf.zeros([FEATURE_WIDTH]));
    });
  } catch (error) {
    disposeModel(params);
    throw error;
  }
  return {
    params,
    sha256: backboneDigest(params),
    description: resolved
      ? resolved.source
      : `random initialisation (seed ${options.seed})${imagenetUnavailable ? `; ImageNet weights unavailable: ${imagenetUnavailable}` : ''}`,
    pretrained: resolved !== undefined,
    checkpoint: resolved?.checkpoint ?? null,
  };
}

/** SHA-256 over every parameter and buffer except the (identity) head, in state-dict order. */
function backboneDigest(params: ResNet18Params): string {
  const hash = createHash('sha256').update(`resnet18 backbone v${FEATURES_VERSION}`);
  for (const [name, variable] of params) {
    if (name.startsWith('fc.')) continue;
    const data = variable.dataSync();
    hash.update(name).update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}

/** The inference engine features go through (infer/engine.ts); evaluation's, with the identity head's 512 outputs. */
export function featureEngine(
  backbone: FeatureBackbone,
  imageSize: number,
  options: Omit<InferenceEngineOptions, 'params' | 'imageSize'> = {},
): Promise<InferenceEngine> {
  return createInferenceEngine({ ...options, params: backbone.params, imageSize });
}

/** The network's one use: pooled features `[n, 512]` of preprocessed S×S×3 images. */
export async function pooledFeatures(
  engine: InferenceEngine,
  pixels: readonly Uint8Array[],
  size: number,
): Promise<Float32Array> {
  return engine.logits(normalisedBatch(pixels, size), pixels.length);
}

/** `<user cache folder>/leukemia-audit/features`, beside the image cache. */
export function defaultFeatureCacheDir(): string {
  return path.join(path.dirname(defaultImageCacheDir()), 'features');
}

function featureFile(cacheDir: string, imageKey: string, backbone: string): string {
  const key = createHash('sha256')
    .update(`leukemia-audit probe features v${FEATURES_VERSION} backbone=${backbone} image=${imageKey}`)
    .digest('hex');
  return path.join(cacheDir, key.slice(0, 2), `${key}.f32`);
}

/**
 * Another engine's features (PyTorch's) for `paths` (prepared images), `paths.length` × 512 row-major, in
 * their order; `onComputed` counts the images done. Replaces the embedded engine in `featureTable`.
 */
export type FeatureComputer = (paths: readonly string[], onComputed: (done: number) => void) => Promise<Float32Array>;

export interface FeatureTable {
  /** `paths.length × 512`, row-major, in the order of `paths`. */
  features: Float32Array;
  fromCache: number;
  computed: number;
  seconds: number;
}

/**
 * Features of every prepared image in `paths` (each must be in `prepared.keys`): read from the cache, the
 * rest computed in batches and stored. `onProgress` counts images done, cached ones included.
 */
export async function featureTable(
  prepared: PreparedImages,
  paths: readonly string[],
  backbone: FeatureBackbone,
  options: {
    cacheDir?: string;
    batchSize?: number;
    /** Threads of the inference engine (default: every core). */
    threads?: number;
    signal?: AbortSignal;
    onProgress?: (done: number, total: number, computed: number) => void;
    /** Computes the missing features instead of the embedded engine; they are cached all the same. */
    compute?: FeatureComputer;
  } = {},
): Promise<FeatureTable> {
  const started = performance.now();
  const cacheDir = options.cacheDir ?? defaultFeatureCacheDir();
  const features = new Float32Array(paths.length * FEATURE_WIDTH);
  const missing: number[] = [];
  // Bounded: a hundred thousand reads at once would run out of file descriptors.
  await forEachBounded([...paths.keys()], CACHE_READS_IN_FLIGHT, async (row) => {
    options.signal?.throwIfAborted();
    const cached = await readCached(featureFile(cacheDir, prepared.keys.get(paths[row])!, backbone.sha256));
    if (cached) features.set(cached, row * FEATURE_WIDTH);
    else missing.push(row);
  });
  missing.sort((a, b) => a - b);
  const fromCache = paths.length - missing.length;
  options.onProgress?.(fromCache, paths.length, 0);
  // A cache that cannot be written only costs the next probe the inference.
  const store = (row: number, vector: Float32Array) => {
    features.set(vector, row * FEATURE_WIDTH);
    const file = featureFile(cacheDir, prepared.keys.get(paths[row])!, backbone.sha256);
    return writeFileAtomic(file, new Uint8Array(vector.buffer), { durable: false }).catch(() => undefined);
  };
  if (missing.length > 0 && options.compute) {
    const computed = await options.compute(
      missing.map((row) => paths[row]),
      (done) => options.onProgress?.(fromCache + done, paths.length, done),
    );
    await forEachBounded([...missing.keys()], CACHE_READS_IN_FLIGHT, (i) =>
      store(missing[i], computed.slice(i * FEATURE_WIDTH, (i + 1) * FEATURE_WIDTH)),
    );
  } else if (missing.length > 0) {
    const engine = await featureEngine(backbone, prepared.size, { threads: options.threads });
    const batchSize = options.batchSize ?? 16;
    try {
      for (let start = 0; start < missing.length; start += batchSize) {
        options.signal?.throwIfAborted();
        const rows = missing.slice(start, start + batchSize);
        const pixels = await Promise.all(rows.map((row) => readPreprocessed(prepared, paths[row])));
        const batch = await pooledFeatures(engine, pixels, prepared.size);
        await Promise.all(rows.map((row, i) => store(row, batch.slice(i * FEATURE_WIDTH, (i + 1) * FEATURE_WIDTH))));
        const done = start + rows.length;
        options.onProgress?.(fromCache + done, paths.length, done);
        await new Promise((next) => setImmediate(next));
      }
    } finally {
      await engine.dispose();
    }
  }
  return { features, fromCache, computed: missing.length, seconds: (performance.now() - started) / 1000 };
}

/** A cached vector, or undefined when absent or not exactly 512 floats (a damaged entry is recomputed). */
async function readCached(file: string): Promise<Float32Array | undefined> {
  try {
    const bytes = await readFile(file);
    if (bytes.length !== FEATURE_WIDTH * 4) return undefined;
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
  } catch {
    return undefined;
  }
}
