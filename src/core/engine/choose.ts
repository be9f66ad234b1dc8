/**
 * Which engine trains: the user's PyTorch (when `--backend torch`, or under `auto` when a usable interpreter
 * is found), else the embedded tfjs engine (native TensorFlow when installed, else wasm). What ran and why the
 * others were passed over goes into run.json and the log.
 */
import type { TrainEventSink } from '../train/events.js';
import { DEFAULT_SETTINGS, type TrainSettings } from '../train/settings.js';
import {
  SELECT_INTERPRETER_HINT,
  findTorchInterpreter,
  interpreterCandidates,
  type TorchInterpreter,
} from '../torch/interpreter.js';
import type { BackendReport } from '../run/runFile.js';
import { embeddedInferenceRuntime } from '../infer/engine.js';
import { selectBackend } from './backend.js';

export type EngineChoice =
  { kind: 'torch'; interpreter: TorchInterpreter; skipped: string[] } | { kind: 'tfjs'; backend: BackendReport };

export const GPU_TRAINING_HINT =
  'For GPU (CUDA, Apple MPS) or faster CPU training, install torch >= 1.13 and torchvision in a Python environment and select it (leukemiaAudit.python, the Python extension, or --python), then use backend auto or torch.';

export async function chooseEngine(
  settings: Pick<TrainSettings, 'backend' | 'python' | 'pythonFromEditor'>,
  emit: TrainEventSink,
): Promise<EngineChoice> {
  if (settings.backend !== 'torch' && settings.backend !== 'auto')
    return { kind: 'tfjs', backend: await selectBackend(settings.backend) };
  const candidates = interpreterCandidates(settings.python, settings.pythonFromEditor);
  const { interpreter, rejected } = await findTorchInterpreter(candidates);
  if (interpreter) return { kind: 'torch', interpreter, skipped: [] };
  const reasons = rejected.join('; ');
  if (settings.backend === 'torch')
    throw new Error(`--backend torch: no usable PyTorch (${reasons}). To fix, ${SELECT_INTERPRETER_HINT}.`);
  const backend = await selectBackend('auto');
  backend.skipped.unshift(`torch: ${reasons}`);
  emit({ type: 'log', level: 'info', message: `No usable PyTorch (${reasons}). ${GPU_TRAINING_HINT}` });
  return { kind: 'tfjs', backend };
}

/**
 * Which engine runs an inference job (evaluate, probe): as `chooseEngine`, except that under `auto` a PyTorch that
 * would compute on the CPU gives way to the embedded engine when that is onnxruntime, which evaluated 2.4× faster
 * than Debian's PyTorch 1.13 on CPU here (scripts/bench-torch-inference.ts). A GPU keeps PyTorch, and so does a
 * missing onnxruntime (PyTorch on CPU is faster than the wasm fallback).
 */
export async function chooseInferenceEngine(
  options: Partial<Pick<TrainSettings, 'backend' | 'python' | 'pythonFromEditor' | 'device'>>,
  emit: TrainEventSink,
): Promise<EngineChoice> {
  const settings = {
    ...options,
    backend: options.backend ?? 'auto',
    device: options.device ?? DEFAULT_SETTINGS.device,
  };
  const choice = await chooseEngine(settings, emit);
  if (settings.backend !== 'auto' || choice.kind !== 'torch' || computesOnGpu(choice.interpreter, settings.device))
    return choice;
  if ((await embeddedInferenceRuntime()) !== 'onnxruntime') return choice;
  const backend = await selectBackend('auto');
  const reason = `torch: ${choice.interpreter.python} would compute on the CPU, where the embedded onnxruntime engine is faster`;
  backend.skipped.unshift(reason);
  emit({
    type: 'log',
    level: 'info',
    message: `Not using PyTorch (${reason.slice('torch: '.length)}); --backend torch forces it.`,
  });
  return { kind: 'tfjs', backend };
}

/** Whether PyTorch would run on a GPU: a device asked for by name, or `auto` with CUDA or MPS present. */
function computesOnGpu(interpreter: TorchInterpreter, device: string): boolean {
  if (device === 'cpu') return false;
  if (device !== 'auto') return true;
  return interpreter.cuda.length > 0 || interpreter.mps;
}
