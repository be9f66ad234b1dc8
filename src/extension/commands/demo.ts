/**
 * Create Demo Dataset: a small synthetic copy of C-NMC's layout (fold folders with all/hem one level deeper),
 * so the audit, the warnings and training can be tried without the 10 GB download.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DEMO_DATASET_FOLDER, generateDemoDataset } from '../../core/demo/generate.js';
import { COMMANDS } from '../commandIds.js';
import { log, showErrorWithLog } from '../log.js';

export async function createDemoDatasetCommand(target?: unknown): Promise<string | undefined> {
  const folder = await chooseTarget(target);
  if (!folder) return undefined;
  const root = path.join(folder, DEMO_DATASET_FOLDER);
  let overwrite = false;
  if (existsSync(root)) {
    if (target !== undefined) return root; // called by a test or another command: reuse it
    const choice = await vscode.window.showWarningMessage(
      `${root} already exists.`,
      { modal: true, detail: 'Replace it with a freshly generated demo dataset?' },
      'Replace',
    );
    if (choice !== 'Replace') return undefined;
    overwrite = true;
  }
  try {
    const manifest = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'Writing the demo dataset (C-NMC layout)' },
      () => generateDemoDataset(folder, { overwrite }),
    );
    log().info(`Demo dataset written: ${manifest.root} (${manifest.images.length} images).`);
    if (target !== undefined) return manifest.root;
    const inWorkspace = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(manifest.root)) !== undefined;
    const actions = inWorkspace ? ['Audit Labels', 'Train Leukemia Model'] : ['Open Folder'];
    const choice = await vscode.window.showInformationMessage(
      `Demo dataset written to ${manifest.root}: ${manifest.images.length} images in training_data/fold_0…2/{all,hem}.`,
      ...actions,
    );
    const training = path.join(manifest.root, 'training_data');
    if (choice === 'Audit Labels') await vscode.commands.executeCommand(COMMANDS.audit, vscode.Uri.file(training));
    if (choice === 'Train Leukemia Model')
      await vscode.commands.executeCommand(COMMANDS.train, vscode.Uri.file(training));
    if (choice === 'Open Folder')
      await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(folder), { forceNewWindow: true });
    return manifest.root;
  } catch (error) {
    await showErrorWithLog(`The demo dataset could not be written: ${(error as Error).message}`);
    return undefined;
  }
}

async function chooseTarget(target: unknown): Promise<string | undefined> {
  if (target instanceof vscode.Uri) return target.fsPath;
  if (typeof target === 'string' && target !== '') return path.resolve(target);
  const folders = vscode.workspace.workspaceFolders ?? [];
  type Item = vscode.QuickPickItem & { folder?: string };
  const items: Item[] = [
    ...folders.map((f) => ({
      label: `$(root-folder) ${f.name}`,
      description: path.join(f.uri.fsPath, DEMO_DATASET_FOLDER),
      folder: f.uri.fsPath,
    })),
    { label: '$(folder-opened) Choose a folder…' },
  ];
  const choice =
    folders.length === 0
      ? items[0]
      : await vscode.window.showQuickPick(items, { title: 'Create Demo Dataset: where?' });
  if (!choice) return undefined;
  if (choice.folder) return choice.folder;
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: 'Write Demo Dataset Here',
    title: `The demo dataset is written into ${DEMO_DATASET_FOLDER}/ inside this folder`,
  });
  return picked?.[0]?.fsPath;
}
