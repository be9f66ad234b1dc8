/**
 * Warnings on Python files and notebook cells whose dataset calls (`ImageFolder(...)`, …) point at a folder
 * whose sub-folders are folds or splits rather than diagnoses. Parsing, path resolution and the wording are
 * in `src/core/editor`; this class feeds it sources, folders and audits, and publishes the result.
 *
 * Open files and notebooks are checked as they are edited (debounced) and get quick fixes. Files that are not
 * open are checked too (a bounded search), so the warnings are in the Problems panel as soon as the workspace
 * opens: a `.py` file on its string literal, an `.ipynb` file on its first line naming the cell.
 */
import { readFile, stat } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import { datasetCallWarning } from '../../core/editor/callWarning.js';
import { isInside } from '../../core/paths.js';
import { resolveDatasetPath, type ResolveContext } from '../../core/editor/pathResolve.js';
import { findDatasetCalls, type SourceCell } from '../../core/editor/pythonCalls.js';
import { editorWarningsEnabled, subjectPattern } from '../config.js';
import { isDirectory } from '../files.js';
import { log } from '../log.js';
import type { AuditCache } from '../workspace/auditCache.js';
import { EXCLUDE_GLOB, type WorkspaceDatasets } from '../workspace/workspaceDatasets.js';
import { positionAt, type FixRegistry, type PreparedFix } from './fixRegistry.js';

const DEBOUNCE_MS = 500;
/** Cheap pre-check so only sources that mention a dataset call are parsed. */
const MENTIONS_CALL = /ImageFolder|DatasetFolder|image_dataset_from_directory|flow_from_directory/;
const MAX_UNOPENED_FILES = 500;
const MAX_FILE_BYTES = 2 * 1024 * 1024;

/** One cell of a source: an open document, or text read from a file that is not open. */
interface Part {
  id: string;
  /** Where its diagnostics are published. */
  uri: vscode.Uri;
  text: string;
  document?: vscode.TextDocument;
  version?: number;
  /** For cells of a notebook that is not open: all its warnings go on the file's first line, naming the cell. */
  label?: string;
}

/** A Python file, or a notebook with its Python code cells in order. */
interface Source {
  key: string;
  fileDir?: string;
  parts: Part[];
}

export class PythonDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('leukemia-audit-python');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** URIs that carry diagnostics, per source, so a re-run clears what no longer applies. */
  private readonly published = new Map<string, vscode.Uri[]>();
  private readonly disposables: vscode.Disposable[] = [this.collection];

  constructor(
    private readonly datasets: WorkspaceDatasets,
    private readonly audits: AuditCache,
    private readonly fixes: FixRegistry,
  ) {
    const files = vscode.workspace.createFileSystemWatcher('**/*.{py,ipynb}');
    const fileChanged = (uri: vscode.Uri) => !isOpen(uri) && this.scheduleFile(uri);
    this.disposables.push(
      files,
      files.onDidCreate(fileChanged),
      files.onDidChange(fileChanged),
      files.onDidDelete((uri) => !isOpen(uri) && this.clear(uri.toString())),
      vscode.workspace.onDidOpenTextDocument((d) => this.documentChanged(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.documentChanged(e.document)),
      // Closed: back to the file on disk (it may have been closed without saving).
      vscode.workspace.onDidCloseTextDocument(
        (d) => d.languageId === 'python' && d.uri.scheme !== 'vscode-notebook-cell' && this.closed(d.uri),
      ),
      vscode.workspace.onDidOpenNotebookDocument((n) => this.schedule(notebookSource(n))),
      vscode.workspace.onDidChangeNotebookDocument((e) => this.schedule(notebookSource(e.notebook))),
      vscode.workspace.onDidCloseNotebookDocument((n) => this.closed(n.uri)),
      datasets.onDidChange(() => this.refreshAll()),
      audits.onDidInvalidate(() => this.refreshAll()),
      audits.onDidUpdate(() => this.refreshAll()),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('leukemiaAudit') && this.refreshAll()),
    );
  }

  /** Open documents and notebooks, then the workspace's other Python files and notebooks. */
  refreshAll(): void {
    for (const document of vscode.workspace.textDocuments) {
      if (document.languageId === 'python' && document.uri.scheme !== 'vscode-notebook-cell')
        this.schedule(documentSource(document), 0);
    }
    for (const notebook of vscode.workspace.notebookDocuments) this.schedule(notebookSource(notebook), 0);
    void this.scanUnopenedFiles();
  }

  private async scanUnopenedFiles(): Promise<void> {
    if (!editorWarningsEnabled()) return;
    const files = await vscode.workspace.findFiles('**/*.{py,ipynb}', EXCLUDE_GLOB, MAX_UNOPENED_FILES);
    for (const uri of files) if (!isOpen(uri)) this.scheduleFile(uri, 0);
  }

  /** A closed file is checked again from disk (it may have been closed unsaved); an untitled one just goes. */
  private closed(uri: vscode.Uri): void {
    if (uri.scheme === 'file') this.scheduleFile(uri);
    else this.clear(uri.toString());
  }

  private scheduleFile(uri: vscode.Uri, delay = DEBOUNCE_MS): void {
    this.debounce(uri.toString(), delay, async () => {
      const source = await fileSource(uri);
      if (source) await this.update(source);
      else this.clear(uri.toString());
    });
  }

  private documentChanged(document: vscode.TextDocument): void {
    if (document.languageId !== 'python') return;
    if (document.uri.scheme === 'vscode-notebook-cell') {
      const notebook = vscode.workspace.notebookDocuments.find((n) =>
        n.getCells().some((c) => c.document === document),
      );
      if (notebook) this.schedule(notebookSource(notebook));
    } else {
      this.schedule(documentSource(document));
    }
  }

  private schedule(source: Source, delay = DEBOUNCE_MS): void {
    this.debounce(source.key, delay, () => this.update(source));
  }

  private debounce(key: string, delay: number, job: () => Promise<void>): void {
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        job().catch((error) => log().warn(`Dataset call check of ${key} failed: ${(error as Error).message}`));
      }, delay),
    );
  }

  private async update(source: Source): Promise<void> {
    const cells: SourceCell[] = source.parts.map((p) => ({ id: p.id, text: p.text }));
    if (!editorWarningsEnabled() || !cells.some((c) => MENTIONS_CALL.test(c.text))) {
      this.clear(source.key);
      return;
    }
    const calls = findDatasetCalls(cells).filter((c) => c.path);
    const snapshot = await this.datasets.get();
    const workspaceFolders = (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath);
    const context: ResolveContext = {
      fileDir: source.fileDir,
      workspaceFolders,
      knownFolders: snapshot.knownFolders,
      isDirectory,
      home: os.homedir(),
    };
    const part = (id: string) => source.parts.find((p) => p.id === id)!;
    const position = (p: Part, offset: number) =>
      p.label ? new vscode.Position(0, 0) : p.document ? p.document.positionAt(offset) : positionAt(p.text, offset);
    const byUri = new Map<
      string,
      {
        uri: vscode.Uri;
        diagnostics: vscode.Diagnostic[];
        fixes: { range: vscode.Range; code: string; fixes: PreparedFix[] }[];
      }
    >();
    const seen = new Set<string>();
    for (const call of calls) {
      const resolution = await resolveDatasetPath(call.path!.value, context);
      // Inside the workspace, only folders with images are audited: `ImageFolder('.')` must not scan the project.
      if (
        !resolution ||
        (workspaceFolders.some((w) => isInside(resolution.folder, w)) &&
          !snapshot.knownFolders.includes(resolution.folder))
      )
        continue;
      const report = await this.audit(resolution.folder);
      const warning = report && datasetCallWarning(call, resolution, report, cells, calls);
      if (!report || !warning) continue;
      const id = `${warning.range.cell}:${warning.range.start}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const target = part(warning.range.cell);
      const range = new vscode.Range(position(target, warning.range.start), position(target, warning.range.end));
      const diagnostic = new vscode.Diagnostic(
        range,
        target.label ? `${target.label}: ${warning.message}` : warning.message,
        vscode.DiagnosticSeverity.Warning,
      );
      diagnostic.source = 'leukemia-audit';
      diagnostic.code = warning.code;
      const related: vscode.DiagnosticRelatedInformation[] = [];
      const callPart = part(call.call.cell);
      if (
        !callPart.label &&
        (call.call.cell !== warning.range.cell ||
          call.call.start > warning.range.end ||
          call.call.end < warning.range.start)
      ) {
        related.push(
          new vscode.DiagnosticRelatedInformation(
            new vscode.Location(callPart.uri, position(callPart, call.call.start)),
            `${call.function} is called here`,
          ),
        );
      }
      const example = report.findings.find((f) => f.code === 'structural-labels')?.paths[0];
      if (example)
        related.push(
          new vscode.DiagnosticRelatedInformation(
            new vscode.Location(vscode.Uri.file(path.join(resolution.folder, example)), new vscode.Position(0, 0)),
            `an image under ${example.split('/')[0]}`,
          ),
        );
      diagnostic.relatedInformation = related;
      // Fixes only where they can be applied and checked against the text: in open documents.
      const fixable = warning.fixes.every((fix) => fix.edits.every((e) => part(e.cell).document));
      const fixes: PreparedFix[] = fixable
        ? warning.fixes.map((fix) => ({
            title: fix.title,
            preferred: fix.preferred,
            edits: fix.edits.map((edit) => {
              const p = part(edit.cell);
              return {
                uri: p.uri,
                range: new vscode.Range(position(p, edit.start), position(p, edit.end)),
                newText: edit.newText,
              };
            }),
          }))
        : [];
      const entry = byUri.get(target.uri.toString()) ?? { uri: target.uri, diagnostics: [], fixes: [] };
      entry.diagnostics.push(diagnostic);
      entry.fixes.push({ range, code: warning.code, fixes });
      byUri.set(target.uri.toString(), entry);
    }
    // The text changed while folders were resolved and audited: a newer update is already scheduled.
    if (source.parts.some((p) => p.document && (p.document.isClosed || p.document.version !== p.version))) return;
    this.clear(source.key);
    for (const entry of byUri.values()) {
      this.collection.set(entry.uri, entry.diagnostics);
      this.fixes.set(entry.uri, entry.fixes);
    }
    this.published.set(
      source.key,
      [...byUri.values()].map((e) => e.uri),
    );
  }

  private async audit(folder: string): Promise<AuditReport | undefined> {
    try {
      return await this.audits.get(folder, subjectPattern(vscode.Uri.file(folder)));
    } catch (error) {
      log().debug(`Not auditing ${folder}: ${(error as Error).message}`);
      return undefined;
    }
  }

  private clear(key: string): void {
    for (const uri of this.published.get(key) ?? []) {
      this.collection.delete(uri);
      this.fixes.clear(uri);
    }
    this.published.delete(key);
  }

  dispose(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    for (const d of this.disposables) d.dispose();
  }
}

function isOpen(uri: vscode.Uri): boolean {
  const key = uri.toString();
  return (
    vscode.workspace.textDocuments.some((d) => d.uri.toString() === key) ||
    vscode.workspace.notebookDocuments.some((n) => n.uri.toString() === key)
  );
}

function directoryOf(uri: vscode.Uri): string | undefined {
  return uri.scheme === 'file' ? path.dirname(uri.fsPath) : undefined;
}

function documentSource(document: vscode.TextDocument): Source {
  return { key: document.uri.toString(), fileDir: directoryOf(document.uri), parts: [openPart(document)] };
}

function notebookSource(notebook: vscode.NotebookDocument): Source {
  const parts = notebook
    .getCells()
    .filter((c) => c.kind === vscode.NotebookCellKind.Code && c.document.languageId === 'python')
    .map((c) => openPart(c.document));
  return { key: notebook.uri.toString(), fileDir: directoryOf(notebook.uri), parts };
}

function openPart(document: vscode.TextDocument): Part {
  return {
    id: document.uri.toString(),
    uri: document.uri,
    text: document.getText(),
    document,
    version: document.version,
  };
}

/** A file that is not open: a `.py` as one part, an `.ipynb` as its Python code cells. */
async function fileSource(uri: vscode.Uri): Promise<Source | undefined> {
  try {
    if ((await stat(uri.fsPath)).size > MAX_FILE_BYTES) return undefined;
    const text = await readFile(uri.fsPath, 'utf8');
    if (!MENTIONS_CALL.test(text)) return { key: uri.toString(), parts: [] };
    if (!uri.fsPath.endsWith('.ipynb'))
      return { key: uri.toString(), fileDir: directoryOf(uri), parts: [{ id: uri.toString(), uri, text }] };
    const notebook = JSON.parse(text) as {
      cells?: { cell_type?: string; source?: string | string[] }[];
      metadata?: { kernelspec?: { language?: string } };
    };
    const language = notebook.metadata?.kernelspec?.language ?? 'python';
    if (language !== 'python') return { key: uri.toString(), parts: [] };
    const parts: Part[] = [];
    (notebook.cells ?? []).forEach((cell, index) => {
      if (cell.cell_type !== 'code') return;
      const source = Array.isArray(cell.source) ? cell.source.join('') : (cell.source ?? '');
      parts.push({ id: `${uri.toString()}#cell${index}`, uri, text: source, label: `cell ${index + 1}` });
    });
    return { key: uri.toString(), fileDir: directoryOf(uri), parts };
  } catch {
    return undefined;
  }
}
