/**
 * Which engine trains: the user's PyTorch (when `--backend torch`, or under `auto` when a usable interpreter
 * is found), else the embedded tfjs engine (native TensorFlow when installed, else wasm). What ran and why the
 * others were passed over goes into run.json and the log.
 */
import type { TrainEventSink } from '../train/events.js';
import type { TrainSettings } from '../train/settings.js';
import {
  SELECT_INTERPRETER_HINT,
  findTorchInterpreter,
  interpreterCandidates,
  type TorchInterpreter,
} from '../torch/interpreter.js';
import type { BackendReport } from '../run/runFile.js';
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
