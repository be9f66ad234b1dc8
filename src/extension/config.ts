/** The extension's settings, read once per use so changes apply to the next run without a reload. */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { expandPathVariables } from '../core/run/runFolders.js';
import {
  BACKENDS,
  DEFAULT_SETTINGS,
  isOneOf,
  isTorchDevice,
  STRATEGIES,
  type TrainSettings,
} from '../core/train/settings.js';

export const SECTION = 'leukemiaAudit';
export const DEFAULT_RUNS_FOLDER = '${workspaceFolder}/.leukemia-audit/runs';

function settings(scope?: vscode.Uri): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION, scope);
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return isOneOf(allowed, value) ? value : fallback;
}

function integer(value: unknown, min: number, fallback: number): number {
  return Number.isInteger(value) && (value as number) >= min ? (value as number) : fallback;
}

/** The training options the settings control; everything else keeps DEFAULT_SETTINGS. */
export function trainOptions(
  scope?: vscode.Uri,
): Pick<
  TrainSettings,
  | 'epochs'
  | 'imageSize'
  | 'batchSize'
  | 'strategy'
  | 'backend'
  | 'weights'
  | 'subjectPattern'
  | 'python'
  | 'device'
  | 'processes'
> {
  const s = settings(scope);
  const pattern = s.get<string>('subjectPattern');
  return {
    epochs: integer(s.get('epochs'), 1, DEFAULT_SETTINGS.epochs),
    imageSize: integer(s.get('imageSize'), 32, DEFAULT_SETTINGS.imageSize),
    batchSize: integer(s.get('batchSize'), 2, DEFAULT_SETTINGS.batchSize),
    strategy: oneOf(s.get('strategy'), STRATEGIES, DEFAULT_SETTINGS.strategy),
    backend: oneOf(s.get('backend'), BACKENDS, DEFAULT_SETTINGS.backend),
    python: (s.get<string>('python') ?? '').trim() || undefined,
    device: isTorchDevice(s.get('device')) ? s.get<string>('device')! : DEFAULT_SETTINGS.device,
    processes: integer(s.get('processes'), 0, DEFAULT_SETTINGS.processes),
    weights: (s.get<string>('weights') ?? '').trim() || DEFAULT_SETTINGS.weights,
    subjectPattern: pattern && pattern.trim() !== '' ? pattern : undefined,
  };
}

export function subjectPattern(scope?: vscode.Uri): string | undefined {
  return trainOptions(scope).subjectPattern;
}

/** Whether Python files, notebooks and dataset folders get diagnostics. */
export function editorWarningsEnabled(): boolean {
  return settings().get<boolean>('editorWarnings') !== false;
}

/** The workspace folder a path belongs to, else the first one. */
export function workspaceFolderFor(fsPath?: string): vscode.WorkspaceFolder | undefined {
  const folder = fsPath ? vscode.workspace.getWorkspaceFolder(vscode.Uri.file(fsPath)) : undefined;
  return folder ?? vscode.workspace.workspaceFolders?.[0];
}

/**
 * The runs folder for a dataset: the setting with variables expanded against the dataset's workspace folder;
 * without a workspace, next to the dataset (as the CLI does).
 */
export function runsFolder(datasetRoot?: string): string {
  const workspaceFolder = workspaceFolderFor(datasetRoot)?.uri.fsPath;
  const configured =
    settings(workspaceFolder ? vscode.Uri.file(workspaceFolder) : undefined).get<string>('runsFolder') ||
    DEFAULT_RUNS_FOLDER;
  const expanded = expandPathVariables(configured, { workspaceFolder, userHome: os.homedir() });
  if (expanded) return expanded;
  return path.join(datasetRoot ? path.dirname(datasetRoot) : os.homedir(), 'leukemia-audit-runs');
}

/** Every runs folder the current workspace may have written to: one per workspace folder. */
export function allRunsFolders(): string[] {
  const folders = vscode.workspace.workspaceFolders ?? [];
  const found = folders.map((f) => {
    const configured = settings(f.uri).get<string>('runsFolder') || DEFAULT_RUNS_FOLDER;
    return expandPathVariables(configured, { workspaceFolder: f.uri.fsPath, userHome: os.homedir() });
  });
  return [...new Set(found.filter((f): f is string => f !== undefined))];
}
