/**
 * Inference in the user's PyTorch, for `evaluate` (the logits of every image) and `probe` (the 512 pooled
 * features): leukemia-audit has loaded the weights (any checkpoint its loader reads, normalised to torchvision's
 * state-dict names) and preprocessed every image into its image cache; the bundled script only runs the
 * network on those bytes and writes one tensor back. Metrics, Grad-CAM and run.json stay leukemia-audit's.
 *
 * Everything the script sees lives in a private temporary folder removed afterwards, so a cancelled or failed
 * inference leaves nothing behind. Cancel ends the process (SIGTERM, then SIGKILL): it holds nothing worth
 * finishing a batch for.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cacheFilePath, type PreparedImages } from '../data/cache.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/preprocess.js';
import type { StateDict } from '../model/stateDict.js';
import type { TorchEngineReport } from '../run/runFile.js';
import type { CropMode } from '../train/settings.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import type { TorchInterpreter } from './interpreter.js';
import {
  StderrTail,
  describeEngineInfo,
  describeExit,
  parseEngineInfo,
  spawnTrainerScript,
  type TorchEngineInfo,
} from './trainerProcess.js';

export const TORCH_INFERENCE_SCHEMA = 'leukemia-audit/torch-inference';
export const TORCH_INFERENCE_VERSION = 1;
export const TORCH_INFERENCE_PLAN_FILE = 'inference-plan.json';
const WEIGHTS_FILE = 'weights.safetensors';
const OUTPUT_FILE = 'outputs.safetensors';
/** Images per forward pass: large enough to keep a GPU busy, small enough for any CPU's memory at 224 px. */
export const TORCH_INFERENCE_BATCH = 32;
/** After SIGTERM, a process that has not exited (a driver call that ignores it) is killed. */
const KILL_GRACE_MS = 5000;

/** `logits`: the classifier's outputs; `features`: the 512 average-pooled activations before it. */
export type TorchOutput = 'logits' | 'features';

export interface TorchInferencePlan {
  schema: typeof TORCH_INFERENCE_SCHEMA;
  version: typeof TORCH_INFERENCE_VERSION;
  output: TorchOutput;
  /**
   * leukemia-audit's preprocessed images: each file exactly `size`×`size`×3 RGB bytes, already cropped
   * (`crop`, recorded for the reader) and resized; only normalisation is left to do.
   */
  images: { size: number; crop: CropMode; files: string[] };
  normalise: { mean: readonly number[]; std: readonly number[] };
  batchSize: number;
  device: string;
  /** In the plan's folder: the torchvision state dict to load strictly, and the tensor to write. */
  files: { weights: string; output: string };
}

export interface TorchInferenceInput {
  interpreter: TorchInterpreter;
  output: TorchOutput;
  /** torchvision names (`exportStateDict`); for `features` the classifier is loaded, then dropped. */
  stateDict: StateDict;
  prepared: PreparedImages;
  /** Prepared images (paths relative to `prepared.root`), in the order of the rows returned. */
  paths: readonly string[];
  device: string;
  batchSize?: number;
  signal?: AbortSignal;
  onEngine?: (engine: TorchEngineReport) => void;
  onProgress?: (done: number, total: number, etaSeconds: number) => void;
  onLog?: (message: string) => void;
}

export interface TorchInferenceResult {
  /** `paths.length` × `width`, row-major. */
  values: Float32Array;
  width: number;
  engine: TorchEngineReport;
}

export async function inferWithTorch(input: TorchInferenceInput): Promise<TorchInferenceResult> {
  input.signal?.throwIfAborted();
  const work = await mkdtemp(join(tmpdir(), 'leukemia-audit-torch-'));
  try {
    await writeSafetensors(join(work, WEIGHTS_FILE), input.stateDict, { format: 'pt' });
    const plan = createInferencePlan(input);
    const planFile = join(work, TORCH_INFERENCE_PLAN_FILE);
    await writeFile(planFile, JSON.stringify(plan, null, 1) + '\n');
    const engine = await runInference(input, planFile, work);
    const { values, width } = await readOutputs(join(work, OUTPUT_FILE), input.output, input.paths.length);
    return { values, width, engine };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

export function createInferencePlan(
  input: Pick<TorchInferenceInput, 'output' | 'prepared' | 'paths' | 'device' | 'batchSize'>,
): TorchInferencePlan {
  const { prepared } = input;
  return {
    schema: TORCH_INFERENCE_SCHEMA,
    version: TORCH_INFERENCE_VERSION,
    output: input.output,
    images: {
      size: prepared.size,
      crop: prepared.crop,
      files: input.paths.map((path) => {
        const key = prepared.keys.get(path);
        if (key === undefined) throw new Error(`${path} was not prepared (skipped or not in the prepared list)`);
        return cacheFilePath(prepared.cacheDir, key);
      }),
    },
    normalise: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
    batchSize: input.batchSize ?? TORCH_INFERENCE_BATCH,
    device: input.device,
    files: { weights: WEIGHTS_FILE, output: OUTPUT_FILE },
  };
}

/** Runs the script on the plan; resolves with the engine it ran on once it reported its result. */
function runInference(input: TorchInferenceInput, planFile: string, work: string): Promise<TorchEngineReport> {
  const { interpreter, signal } = input;
  const python = interpreter.python;
  return new Promise((resolveRun, rejectRun) => {
    let engine: TorchEngineReport | undefined;
    let result = false;
    const stderr = new StderrTail();
    const child = spawnTrainerScript(python, planFile, work);
    stderr.follow(child);
    let killTimer: NodeJS.Timeout | undefined;
    const stop = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    };
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });

    createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = parseInferenceLine(line);
      switch (message.type) {
        case 'engine':
          engine = engineReport(interpreter, message.engine);
          input.onLog?.(describeEngineInfo(message.engine));
          input.onEngine?.(engine);
          break;
        case 'progress':
          input.onProgress?.(message.done, message.total, message.etaSeconds);
          break;
        case 'result':
          result = true;
          break;
        case 'log':
          input.onLog?.(message.message);
          break;
      }
    });

    let failure: Error | undefined;
    child.on('error', (error) => (failure ??= new Error(`Could not start ${python}: ${error.message}`)));
    child.on('close', (code, exitSignal) => {
      clearTimeout(killTimer);
      signal?.removeEventListener('abort', stop);
      if (signal?.aborted) return rejectRun(signal.reason);
      if (failure) return rejectRun(failure);
      if (code !== 0 || !result)
        return rejectRun(
          new Error(`The PyTorch engine (${python}) ${describeExit(code, exitSignal)}.${stderr.describe()}`),
        );
      if (!engine) return rejectRun(new Error(`The PyTorch engine (${python}) did not report its device.`));
      resolveRun(engine);
    });
  });
}

type InferenceLine =
  | { type: 'engine'; engine: TorchEngineInfo }
  | { type: 'progress'; done: number; total: number; etaSeconds: number }
  | { type: 'result' }
  | { type: 'log'; message: string };

/** One stdout line, field by field; anything else is passed on as a log line. */
export function parseInferenceLine(line: string): InferenceLine {
  let value: Record<string, unknown> | undefined;
  try {
    value = JSON.parse(line);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null) return { type: 'log', message: line };
  const num = (key: string) => (typeof value[key] === 'number' ? (value[key] as number) : NaN);
  switch (value.type) {
    case 'engine':
      return { type: 'engine', engine: parseEngineInfo(value) };
    case 'progress':
      return { type: 'progress', done: num('done'), total: num('total'), etaSeconds: num('etaSeconds') };
    case 'result':
      return { type: 'result' };
    case 'log':
      return { type: 'log', message: typeof value.message === 'string' ? value.message : line };
    default:
      return { type: 'log', message: line };
  }
}

/** What run.json records: the interpreter as probed, the device as the script chose it. */
function engineReport(interpreter: TorchInterpreter, engine: TorchEngineInfo): TorchEngineReport {
  return {
    python: interpreter.python,
    pythonVersion: engine.python || interpreter.pythonVersion,
    torch: engine.torch,
    torchvision: engine.torchvision,
    device: engine.device,
    deviceName: engine.deviceName,
    processes: 1,
    amp: false,
    channelsLast: false,
  };
}

/** The script's one tensor, checked: `rows` rows of finite float32. */
async function readOutputs(
  file: string,
  output: TorchOutput,
  rows: number,
): Promise<{ values: Float32Array; width: number }> {
  const { tensors } = await readSafetensors(file).catch((error: Error) => {
    throw new Error(`The PyTorch engine left no readable ${output}: ${error.message}`, { cause: error });
  });
  const tensor = tensors.get(output);
  if (!tensor || tensor.shape.length !== 2 || tensor.shape[0] !== rows)
    throw new Error(
      `The PyTorch engine wrote ${tensor ? `a [${tensor.shape}] tensor` : `no "${output}" tensor`}; expected ${rows} rows`,
    );
  const values = tensor.data as Float32Array;
  if (!values.every(Number.isFinite)) throw new Error(`The PyTorch engine's ${output} are not all finite numbers`);
  return { values, width: tensor.shape[1] };
}
