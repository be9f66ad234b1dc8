/**
 * onnxruntime-node, the optional native runtime of the embedded engine: the part of its API we use, declared
 * here, how it is loaded, and how our sessions are opened. Inference (engine.ts) and the training step
 * (train/onnxStep.ts) share it.
 */

/**
 * The part of onnxruntime-node's API used here, declared here: the package is optional (npm drops it where its
 * install script fails), so neither the type check nor the bundles may depend on it being installed.
 */
export interface OnnxTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
  dispose(): void;
}
export interface OnnxSession {
  run(feeds: Record<string, OnnxTensor>): Promise<Record<string, OnnxTensor>>;
  release(): Promise<void>;
}
export interface OnnxRuntime {
  InferenceSession: { create(model: Uint8Array, options: object): Promise<OnnxSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OnnxTensor;
}

/**
 * onnxruntime-node, loaded at run time: bundles keep it external, and an install may lack it. `require`, as
 * for sharp (image/decode.ts): the bundles are CommonJS.
 */
export function loadOnnxRuntime(): OnnxRuntime {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- an optional package, loaded only when used
  return require('onnxruntime-node') as OnnxRuntime;
}

/**
 * A CPU session on `threads` intra-op threads. `profileFilePrefix` turns on onnxruntime's profiler (for the
 * benchmarks): it writes `<prefix>_<date>.json`, a trace of every node's kernel time, when the session is
 * released.
 */
export function openSession(
  ort: OnnxRuntime,
  model: Uint8Array,
  threads: number,
  profileFilePrefix?: string,
): Promise<OnnxSession> {
  return ort.InferenceSession.create(model, {
    ...(profileFilePrefix ? { enableProfiling: true, profileFilePrefix } : {}),
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    // One node at a time, each on every core: the network is a chain, nothing runs side by side.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Idle threads sleep instead of spinning between nodes (as PyTorch with OMP_WAIT_POLICY=PASSIVE): on a
    // machine that runs anything else, spinning threads take the cores the computing ones need.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
}
