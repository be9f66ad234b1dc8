/**
 * The interpreter selected in the Python extension, for the PyTorch backend when `leukemiaAudit.python` is
 * empty. Read through the extension's official API (@vscode/python-extension) when that extension is
 * installed; it is not a dependency of ours, so its absence (or a slow activation) just means "none".
 * The probe of what the interpreter can do runs later, in the trainer process, never on this thread.
 */
import { PVSC_EXTENSION_ID, PythonExtension } from '@vscode/python-extension';
import * as vscode from 'vscode';
import type { TrainSettings } from '../core/train/settings.js';
import type { EngineRequest } from '../protocol/trainer.js';
import { trainOptions } from './config.js';
import { log } from './log.js';

const ACTIVATION_TIMEOUT_MS = 5000;

export async function pythonFromExtension(resource?: vscode.Uri): Promise<string | undefined> {
  if (!vscode.extensions.getExtension(PVSC_EXTENSION_ID)) return undefined;
  try {
    const api = await Promise.race([
      PythonExtension.api(),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the Python extension did not activate in time')), ACTIVATION_TIMEOUT_MS),
      ),
    ]);
    const selected = api.environments.getActiveEnvironmentPath(resource);
    const environment = await api.environments.resolveEnvironment(selected);
    return environment?.executable.uri?.fsPath ?? selected.path;
  } catch (error) {
    log().info(`No interpreter from the Python extension: ${(error as Error).message}`);
    return undefined;
  }
}

/** Whether the PyTorch engine may run and no interpreter is set: then the Python extension's is asked for. */
export function wantsTorch(options: Pick<TrainSettings, 'backend' | 'python'>): boolean {
  return (options.backend === 'auto' || options.backend === 'torch') && !options.python;
}

/** The engine settings training uses (leukemiaAudit.backend, .python, .device), for an evaluation or a probe. */
export async function engineRequest(datasetRoot: string): Promise<EngineRequest> {
  const scope = vscode.Uri.file(datasetRoot);
  const { backend, python, device } = trainOptions(scope);
  const pythonFromEditor = wantsTorch({ backend, python }) ? await pythonFromExtension(scope) : undefined;
  return { backend, python, device, pythonFromEditor };
}
