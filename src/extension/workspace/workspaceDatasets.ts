/**
 * The image datasets of the open workspace, found with the editor's own file search (fast, bounded, honours
 * files.exclude) rather than a walk of the disk: image files are listed, then `findDatasetFolders` works out
 * their roots. Rescanned when images or dataset files appear or disappear.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { DATASET_FILE_NAME } from '../../core/editor/auditJsonFile.js';
import { findDatasetFolders, type FoundDatasets as Found } from '../../core/editor/datasetRoots.js';
import { allRunsFolders } from '../config.js';
import { log } from '../log.js';

export const IMAGE_GLOB = '**/*.{bmp,BMP,png,PNG,jpg,JPG,jpeg,JPEG,tif,TIF,tiff,TIFF,webp,WEBP}';
export const EXCLUDE_GLOB =
  '{**/node_modules/**,**/.git/**,**/.venv/**,**/venv/**,**/__pycache__/**,**/.ipynb_checkpoints/**,**/site-packages/**}';
/** Enough for C-NMC (15,135 images) several times over; beyond it the dataset roots are already clear. */
const MAX_IMAGES = 60_000;
const SEARCH_TIMEOUT_MS = 15_000;
const RESCAN_DEBOUNCE_MS = 1_500;

export interface WorkspaceSnapshot extends Found {
  /** leukemia-audit.json files in the workspace. */
  datasetFiles: vscode.Uri[];
  /** The search stopped at MAX_IMAGES or at the time limit. */
  truncated: boolean;
}

export class WorkspaceDatasets implements vscode.Disposable {
  private snapshot: Promise<WorkspaceSnapshot> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  private readonly disposables: vscode.Disposable[] = [this.changed];
  readonly onDidChange = this.changed.event;

  constructor() {
    const images = vscode.workspace.createFileSystemWatcher(IMAGE_GLOB, false, true, false);
    const files = vscode.workspace.createFileSystemWatcher(`**/${DATASET_FILE_NAME}`, false, true, false);
    const rescan = () => this.scheduleRescan();
    this.disposables.push(
      images,
      files,
      images.onDidCreate(rescan),
      images.onDidDelete(rescan),
      files.onDidCreate(rescan),
      files.onDidDelete(rescan),
      vscode.workspace.onDidChangeWorkspaceFolders(rescan),
    );
  }

  get(): Promise<WorkspaceSnapshot> {
    this.snapshot ??= this.scan();
    return this.snapshot;
  }

  private scheduleRescan(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.snapshot = undefined;
      this.changed.fire();
    }, RESCAN_DEBOUNCE_MS);
  }

  private async scan(): Promise<WorkspaceSnapshot> {
    const workspaceFolders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    if (workspaceFolders.length === 0) return { candidates: [], knownFolders: [], datasetFiles: [], truncated: false };
    const started = Date.now();
    const cancel = new vscode.CancellationTokenSource();
    const timeout = setTimeout(() => cancel.cancel(), SEARCH_TIMEOUT_MS);
    try {
      const [images, runFiles, datasetFiles] = await Promise.all([
        vscode.workspace.findFiles(IMAGE_GLOB, EXCLUDE_GLOB, MAX_IMAGES, cancel.token),
        vscode.workspace.findFiles('**/run.json', EXCLUDE_GLOB, 1_000, cancel.token),
        vscode.workspace.findFiles(`**/${DATASET_FILE_NAME}`, EXCLUDE_GLOB, 200, cancel.token),
      ]);
      // Run folders hold Grad-CAM PNGs: images, but not a dataset.
      const excludedFolders = [...runFiles.map((u) => path.dirname(u.fsPath)), ...allRunsFolders()];
      const found = findDatasetFolders(
        images.filter((u) => u.scheme === 'file').map((u) => u.fsPath),
        { workspaceFolders, excludedFolders },
      );
      const truncated = images.length >= MAX_IMAGES || cancel.token.isCancellationRequested;
      log().info(
        `Found ${found.candidates.length} dataset folder(s) and ${datasetFiles.length} ${DATASET_FILE_NAME} file(s) among ${images.length}${truncated ? '+' : ''} images in ${Date.now() - started} ms.`,
      );
      return { ...found, datasetFiles, truncated };
    } catch (error) {
      log().warn(`Looking for datasets failed: ${(error as Error).message}`);
      return { candidates: [], knownFolders: [], datasetFiles: [], truncated: true };
    } finally {
      clearTimeout(timeout);
      cancel.dispose();
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}
