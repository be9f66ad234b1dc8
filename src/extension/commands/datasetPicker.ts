/**
 * Which dataset a command works on: the folder or leukemia-audit.json it was invoked on (Explorer context
 * menu, another command, a test), else the workspace's datasets — used directly when there is one, offered
 * in a quick pick when there are several, and a folder dialog when there are none.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DATASET_FILE_NAME, readDatasetFile, type DatasetFile } from '../../core/editor/auditJsonFile.js';
import { isDirectory } from '../files.js';
import type { WorkspaceDatasets } from '../workspace/workspaceDatasets.js';

export interface PickedDataset {
  root: string;
  /** The leukemia-audit.json that describes it, if any. */
  file?: DatasetFile;
}

export async function pickDataset(
  datasets: WorkspaceDatasets,
  purpose: string,
  target?: unknown,
): Promise<PickedDataset | undefined> {
  const given = targetPath(target);
  if (given) return fromPath(given);
  const snapshot = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: 'Looking for image datasets…' },
    () => datasets.get(),
  );
  const files: PickedDataset[] = [];
  for (const uri of snapshot.datasetFiles) {
    const picked = await fromPath(uri.fsPath).catch(() => undefined);
    if (picked) files.push(picked);
  }
  const described = new Set(files.map((f) => path.resolve(f.root)));
  const folders = snapshot.candidates.filter((c) => !described.has(path.resolve(c.folder)));
  const count = files.length + folders.length;
  if (count === 0) return chooseFolder(purpose);
  if (count === 1) return files[0] ?? { root: folders[0].folder };
  type Item = vscode.QuickPickItem & { dataset?: PickedDataset };
  const items: Item[] = [
    ...files.map((f) => ({
      label: `$(json) ${relative(f.root)}`,
      description: `${DATASET_FILE_NAME} · labels ${f.file!.labels}`,
      dataset: f,
    })),
    ...folders.map((c) => ({
      label: `$(folder) ${relative(c.folder)}`,
      description: `${c.images.toLocaleString('en-US')}${snapshot.truncated ? '+' : ''} images`,
      detail: c.kind === 'part' ? 'part of a larger dataset' : undefined,
      dataset: { root: c.folder },
    })),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: '$(folder-opened) Choose a folder…' },
  ];
  const choice = await vscode.window.showQuickPick(items, {
    title: `${purpose}: which dataset?`,
    placeHolder: 'Image datasets found in the workspace',
    matchOnDescription: true,
  });
  if (!choice) return undefined;
  return choice.dataset ?? chooseFolder(purpose);
}

async function chooseFolder(purpose: string): Promise<PickedDataset | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Use This Dataset',
    title: `${purpose}: choose the dataset folder (e.g. C-NMC_Leukemia/training_data)`,
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return picked?.[0] ? fromPath(picked[0].fsPath) : undefined;
}

/** A folder, or a leukemia-audit.json (its settings come along); a folder holding one is read through it. */
async function fromPath(given: string): Promise<PickedDataset> {
  const file =
    path.basename(given) === DATASET_FILE_NAME
      ? given
      : (await isDirectory(given))
        ? path.join(given, DATASET_FILE_NAME)
        : undefined;
  if (file) {
    try {
      const parsed = readDatasetFile(await readFile(file, 'utf8'), file);
      if (parsed) return { root: parsed.root, file: parsed };
    } catch {
      // No dataset file: the folder itself.
    }
  }
  if (!(await isDirectory(given))) throw new Error(`${given} is not a folder.`);
  return { root: path.resolve(given) };
}

function targetPath(target: unknown): string | undefined {
  if (target instanceof vscode.Uri) return target.scheme === 'file' ? target.fsPath : undefined;
  if (typeof target === 'string' && target.trim() !== '') return path.resolve(target);
  return undefined;
}

function relative(folder: string): string {
  return vscode.workspace.asRelativePath(folder, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
}
