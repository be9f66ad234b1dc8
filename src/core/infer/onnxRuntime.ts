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
 * The value of an environment variable that chooses between onnxruntime and its fallback
 * (`LEUKEMIA_AUDIT_INFERENCE`, `LEUKEMIA_AUDIT_TRAINING_STEPS`): one of `choices`, the first when unset or
 * empty; anything else is refused, naming the variable.
 */
export function choiceFromEnvironment<T extends string>(variable: string, choices: readonly [T, ...T[]]): T {
  const value = process.env[variable];
  if (value === undefined || value === '') return choices[0];
  if (!(choices as readonly string[]).includes(value))
    throw new Error(`${variable} must be one of ${choices.join(', ')}, got "${value}"`);
  return value as T;
}

/**
 * onnxruntime-node, or why it did not load ("onnxruntime-node is not available (…)"). When the user asked for
 * it (`required`), that is an error instead: inference and training fall back the same way.
 */
export function tryLoadOnnxRuntime(required: boolean): { ort?: OnnxRuntime; unavailable?: string } {
  try {
    return { ort: loadOnnxRuntime() };
  } catch (error) {
    const unavailable = `onnxruntime-node is not available (${firstLine(error)})`;
    if (required) throw new Error(unavailable, { cause: error });
    return { unavailable };
  }
}

function firstLine(error: unknown): string {
  return ((error as Error).message ?? String(error)).split('\n')[0].trim();
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
