/**
 * The one seam every inference path goes through (predict, evaluate, probe features): eval-mode logits of a
 * batch of normalised NHWC images, on every core.
 *
 * - `onnxruntime`: onnxruntime-node (an optional dependency, CPU execution provider, one intra-op thread per
 *   core) running the ONNX export of the parameters (onnxModel.ts). Used when the package loads: the CLI
 *   from a checkout or an npm install, and the VSIX, which carries its target platform's binaries only
 *   (scripts/package.mjs; the package is ~290 MB with every platform's).
 * - `wasm`: the data-parallel trainer's inference (train/dataParallel.ts) with one way per core: the calling
 *   thread and `threads − 1` wasm worker threads each run the tfjs forward pass on a part of the batch.
 *
 * `auto` (the default) is onnxruntime when it loads, else wasm; `LEUKEMIA_AUDIT_INFERENCE=wasm` (or the
 * `engine` option) forces the fallback, e.g. to compare the two.
 */
import * as tf from '@tensorflow/tfjs-core';
import { availableParallelism } from 'node:os';
import { forward, numClassesOf, type ResNet18Params } from '../model/resnet18.js';
import { createDataParallelTrainer } from '../train/dataParallel.js';
import { ONNX_INPUT, ONNX_OUTPUT, resnet18Onnx } from './onnxModel.js';
import {
  choiceFromEnvironment,
  openSession,
  tryLoadOnnxRuntime,
  type OnnxRuntime,
  type OnnxSession,
} from './onnxRuntime.js';

export const INFERENCE_ENGINES = ['auto', 'onnxruntime', 'wasm'] as const;
export type InferenceEngineChoice = (typeof INFERENCE_ENGINES)[number];
export type InferenceEngineKind = Exclude<InferenceEngineChoice, 'auto'>;
/** Environment variable that picks the engine when the caller does not. */
export const INFERENCE_ENGINE_ENV = 'LEUKEMIA_AUDIT_INFERENCE';

export interface InferenceEngine {
  readonly kind: InferenceEngineKind;
  /** Threads it computes on. */
  readonly threads: number;
  /** Why `auto` fell back to wasm, when it did. */
  readonly fallbackReason: string | undefined;
  /**
   * Eval-mode logits `[n, numClasses]` (row-major) of the normalised NHWC images `x` (`n` × S × S × 3);
   * equal to `forward(params, x, { training: false })` up to float rounding.
   */
  logits(x: Float32Array, n: number): Promise<Float32Array>;
  /** Frees the session or stops the worker threads; resolves once done. */
  dispose(): Promise<void>;
}

export interface InferenceEngineOptions {
  /**
   * The network. onnxruntime copies it when the engine is created; the wasm engine reads it on every call,
   * so it must not be changed or disposed before `dispose`.
   */
  params: ResNet18Params;
  imageSize: number;
  /** Default: the cores Node may use. */
  threads?: number;
  /** Default: `LEUKEMIA_AUDIT_INFERENCE`, else `auto`. */
  engine?: InferenceEngineChoice;
}

export async function createInferenceEngine(options: InferenceEngineOptions): Promise<InferenceEngine> {
  const { threads, ort, fallbackReason } = await chooseRuntime(options);
  if (!ort) return wasmEngine(options.params, options.imageSize, threads, fallbackReason);
  return onnxRuntimeEngine(ort, options.params, options.imageSize, threads);
}

/** A frozen prefix of the network, for the head-only strategies' cached features (train/featureStore.ts). */
export type FrozenPrefix = 'layer3' | 'avgpool';

export interface PrefixEngine {
  readonly kind: InferenceEngineKind;
  readonly threads: number;
  readonly fallbackReason: string | undefined;
  /**
   * Eval-mode activations of `upTo` for the normalised NHWC images `x`: `layer3` as `[n, H, W, 256]`, `avgpool`
   * as `[n, 512]`; equal to `forward(params, x, { training: false, captureLayers: [upTo] })` up to rounding.
   */
  activations(x: Float32Array, n: number): Promise<{ data: Float32Array; shape: number[] }>;
  dispose(): Promise<void>;
}

/**
 * The network up to `upTo`, on onnxruntime on every core when it loads (same choice as `createInferenceEngine`),
 * else the tfjs forward pass on the calling thread: `finetune` at 224 px computes 200 kB of layer3 features an
 * image, which the wasm worker pool's logits-only protocol does not carry.
 */
export async function createPrefixEngine(
  options: InferenceEngineOptions & { upTo: FrozenPrefix },
): Promise<PrefixEngine> {
  const { params, imageSize, upTo } = options;
  const { threads, ort, fallbackReason } = await chooseRuntime(options);
  if (!ort)
    return {
      kind: 'wasm',
      threads: 1,
      fallbackReason,
      async activations(x, n) {
        checkBatch(x, n, imageSize);
        const activation = tf.tidy(
          () =>
            forward(params, tf.tensor4d(x, [n, imageSize, imageSize, 3]), { training: false, captureLayers: [upTo] })
              .activations[upTo],
        );
        try {
          return { data: (await activation.data()) as Float32Array, shape: activation.shape };
        } finally {
          activation.dispose();
        }
      },
      dispose: async () => undefined,
    };
  const session = await openSession(ort, resnet18Onnx(params, imageSize, upTo), threads);
  return {
    kind: 'onnxruntime',
    threads,
    fallbackReason: undefined,
    activations: (x, n) => runSession(ort, session, x, n, imageSize),
    dispose: () => session.release(),
  };
}

/** The runtime `createInferenceEngine` would use with default options: onnxruntime when it loads, else wasm. */
export async function embeddedInferenceRuntime(): Promise<InferenceEngineKind> {
  const { ort } = await chooseRuntime({});
  return ort ? 'onnxruntime' : 'wasm';
}

/** The runtime the options (or `LEUKEMIA_AUDIT_INFERENCE`) choose: onnxruntime when asked for or when it loads. */
async function chooseRuntime(
  options: Pick<InferenceEngineOptions, 'threads' | 'engine'>,
): Promise<{ threads: number; ort?: OnnxRuntime; fallbackReason?: string }> {
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1)
    throw new RangeError(`threads must be a whole number ≥ 1, got ${threads}`);
  const choice = options.engine ?? choiceFromEnvironment(INFERENCE_ENGINE_ENV, INFERENCE_ENGINES);
  if (choice === 'wasm') return { threads };
  const { ort, unavailable } = tryLoadOnnxRuntime(choice === 'onnxruntime');
  return { threads, ort, fallbackReason: unavailable };
}

async function onnxRuntimeEngine(
  ort: OnnxRuntime,
  params: ResNet18Params,
  imageSize: number,
  threads: number,
): Promise<InferenceEngine> {
  const numClasses = numClassesOf(params);
  const session = await openSession(ort, resnet18Onnx(params, imageSize), threads);
  return {
    kind: 'onnxruntime',
    threads,
    fallbackReason: undefined,
    async logits(x, n) {
      const { data } = await runSession(ort, session, x, n, imageSize);
      return data.subarray(0, n * numClasses);
    },
    dispose: () => session.release(),
  };
}

/** One batch through the session: its output, copied (the output's memory belongs to onnxruntime). */
async function runSession(
  ort: OnnxRuntime,
  session: OnnxSession,
  x: Float32Array,
  n: number,
  imageSize: number,
): Promise<{ data: Float32Array; shape: number[] }> {
  checkBatch(x, n, imageSize);
  if (n === 0) return { data: new Float32Array(0), shape: [0] };
  const input = new ort.Tensor('float32', x, [n, imageSize, imageSize, 3]);
  const output = (await session.run({ [ONNX_INPUT]: input }))[ONNX_OUTPUT];
  try {
    return { data: (output.data as Float32Array).slice(), shape: [...output.dims] };
  } finally {
    output.dispose();
  }
}

function checkBatch(x: Float32Array, n: number, imageSize: number): void {
  if (x.length !== n * imageSize * imageSize * 3)
    throw new RangeError(`expected ${n} images of ${imageSize}×${imageSize}×3`);
}

function wasmEngine(
  params: ResNet18Params,
  imageSize: number,
  threads: number,
  fallbackReason: string | undefined,
): InferenceEngine {
  const pool = createDataParallelTrainer({ numClasses: numClassesOf(params), imageSize, workers: threads });
  return {
    kind: 'wasm',
    threads,
    fallbackReason,
    async logits(x, n) {
      checkBatch(x, n, imageSize);
      if (n === 0) return new Float32Array(0);
      return pool.infer(params, x, n);
    },
    dispose: () => pool.dispose(),
  };
}

/** "inference: onnxruntime on 2 threads", with why it fell back to wasm when it did. */
export function describeEngine(engine: Pick<InferenceEngine, 'kind' | 'threads' | 'fallbackReason'>): string {
  const base = `inference: ${engine.kind === 'onnxruntime' ? 'onnxruntime (CPU)' : 'wasm workers'} on ${engine.threads} thread${engine.threads === 1 ? '' : 's'}`;
  return engine.fallbackReason ? `${base}; ${engine.fallbackReason}` : base;
}
