/**
 * The audit's findings in the Problems panel for the datasets themselves:
 *  - on each `leukemia-audit.json` (its folder, or its `root`, is the dataset), with quick fixes that write the
 *    recommended labels and split into the file;
 *  - for a dataset folder without one, on the image each finding names as its first example (a folder cannot
 *    be opened from the Problems panel; the evidence image can), and only when the audit found labels at all,
 *    so a folder of screenshots is not reported as a broken dataset.
 * A full audit (pixels, duplicates) from the Audit command replaces the header-only one for its folder.
 */
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import type { Finding } from '../../core/audit/findings.js';
import {
  DATASET_FILE_NAME,
  datasetFileDiagnostics,
  datasetFileProblem,
  readDatasetFile,
  type FileDiagnostic,
} from '../../core/editor/auditJsonFile.js';
import { anchorFolderFindings } from '../../core/editor/folderFindings.js';
import { editorWarningsEnabled, subjectPattern } from '../config.js';
import { isDirectory } from '../files.js';
import { log } from '../log.js';
import type { AuditCache } from '../workspace/auditCache.js';
import { datasetSubjectPattern } from '../workspace/confinement.js';
import type { WorkspaceDatasets } from '../workspace/workspaceDatasets.js';
import { SEVERITY, positionAt, type FixRegistry } from './fixRegistry.js';

const DEBOUNCE_MS = 500;

export class DatasetDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('leukemia-audit-datasets');
  /** Full audits from the Audit command, by folder; they win over header-only audits until files change. */
  private readonly fullReports = new Map<string, AuditReport>();
  /** The last batch-effect probe's findings (`group-predictable`) by folder, shown with the audit's until files change. */
  private readonly probeFindings = new Map<string, Finding[]>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly disposables: vscode.Disposable[] = [this.collection];

  constructor(
    private readonly datasets: WorkspaceDatasets,
    private readonly audits: AuditCache,
    private readonly fixes: FixRegistry,
  ) {
    const isDatasetFile = (d: vscode.TextDocument) => path.basename(d.uri.fsPath) === DATASET_FILE_NAME;
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((e) => isDatasetFile(e.document) && this.schedule()),
      vscode.workspace.onDidOpenTextDocument((d) => isDatasetFile(d) && this.schedule()),
      vscode.workspace.onDidSaveTextDocument((d) => isDatasetFile(d) && this.schedule()),
      datasets.onDidChange(() => this.schedule()),
      audits.onDidUpdate(() => this.schedule(0)),
      audits.onDidInvalidate((folder) => {
        this.fullReports.delete(folder);
        this.probeFindings.delete(folder);
        this.schedule();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration('leukemiaAudit') && this.schedule()),
      // Trust changes which roots may be audited and which subject patterns apply.
      vscode.workspace.onDidGrantWorkspaceTrust(() => this.schedule(0)),
    );
  }

  /** Publishes a full audit (with pixel checks) for its folder. */
  showFullReport(report: AuditReport): void {
    this.fullReports.set(path.resolve(report.root), report);
    this.schedule(0);
  }

  /** Publishes what a probe of `root` found, next to the audit's findings for that folder. */
  showProbeFindings(root: string, findings: Finding[]): void {
    this.probeFindings.set(path.resolve(root), findings);
    this.schedule(0);
  }

  schedule(delay = DEBOUNCE_MS): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // One pass at a time: an older pass finishing last would publish stale findings.
      this.running = this.running
        .then(() => this.update())
        .catch((error) => log().warn(`Dataset diagnostics failed: ${(error as Error).message}`));
    }, delay);
  }

  private async report(folder: string, pattern: string | undefined): Promise<AuditReport> {
    const report = this.fullReports.get(path.resolve(folder)) ?? (await this.audits.get(folder, pattern));
    const probed = this.probeFindings.get(path.resolve(folder)) ?? [];
    return probed.length > 0 ? { ...report, findings: [...report.findings, ...probed] } : report;
  }

  private async update(): Promise<void> {
    const snapshot = await this.datasets.get();
    const next = new Map<string, { diagnostics: vscode.Diagnostic[]; fixes: Parameters<FixRegistry['set']>[1] }>();
    const add = (uri: vscode.Uri, diagnostic: vscode.Diagnostic, fixes?: Parameters<FixRegistry['set']>[1][number]) => {
      const entry = next.get(uri.toString()) ?? { diagnostics: [], fixes: [] };
      entry.diagnostics.push(diagnostic);
      if (fixes) entry.fixes.push(fixes);
      next.set(uri.toString(), entry);
    };
    if (editorWarningsEnabled()) {
      const filesRoots = new Set<string>();
      const openFiles = vscode.workspace.textDocuments
        .filter((d) => d.uri.scheme === 'file' && path.basename(d.uri.fsPath) === DATASET_FILE_NAME)
        .map((d) => d.uri);
      const files = uniqueUris([...snapshot.datasetFiles, ...openFiles]);
      for (const uri of files) {
        const root = await this.datasetFile(uri, add);
        if (root) filesRoots.add(root);
      }
      for (const candidate of snapshot.candidates.filter(
        (c) => c.kind === 'root' && !filesRoots.has(path.resolve(c.folder)),
      )) {
        await this.datasetFolder(candidate.folder, add);
      }
      // Full audits and probes of folders that are neither (chosen with the folder picker) still show.
      for (const folder of new Set([...this.fullReports.keys(), ...this.probeFindings.keys()])) {
        if (
          !filesRoots.has(folder) &&
          !snapshot.candidates.some((c) => c.kind === 'root' && path.resolve(c.folder) === folder)
        )
          await this.report(folder, subjectPattern(vscode.Uri.file(folder))).then(
            (report) => this.publishFolder(folder, report, add),
            (error) => log().debug(`Not reporting ${folder}: ${(error as Error).message}`),
          );
      }
    }
    const previous: vscode.Uri[] = [];
    this.collection.forEach((uri) => previous.push(uri));
    for (const uri of previous) {
      if (!next.has(uri.toString())) {
        this.collection.delete(uri);
        this.fixes.clear(uri);
      }
    }
    for (const [key, entry] of next) {
      const uri = vscode.Uri.parse(key);
      this.collection.set(uri, entry.diagnostics);
      this.fixes.set(uri, entry.fixes);
    }
  }

  /** Diagnostics for one leukemia-audit.json; returns the dataset root it names. */
  private async datasetFile(uri: vscode.Uri, add: AddDiagnostic): Promise<string | undefined> {
    const open = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    let text: string;
    try {
      text = open ? open.getText() : await readFile(uri.fsPath, 'utf8');
    } catch {
      return undefined;
    }
    const toRange = (start: number, end: number) =>
      open
        ? new vscode.Range(open.positionAt(start), open.positionAt(end))
        : new vscode.Range(positionAt(text, start), positionAt(text, end));
    const publish = (d: FileDiagnostic) => {
      const range = toRange(d.start, d.end);
      const diagnostic = new vscode.Diagnostic(range, d.message, SEVERITY[d.severity]);
      diagnostic.source = 'leukemia-audit';
      diagnostic.code = d.code;
      add(uri, diagnostic, {
        range,
        code: d.code,
        fixes: d.fixes.map((f) => ({
          title: f.title,
          preferred: f.preferred,
          edits: f.edits.map((e) => ({ uri, range: toRange(e.start, e.end), newText: e.newText })),
        })),
      });
    };
    const file = readDatasetFile(text, uri.fsPath);
    if (!file) return undefined;
    if (!(await isDirectory(file.root))) {
      const problem = datasetFileProblem(text, `The dataset folder ${file.root} does not exist.`);
      if (problem) publish(problem);
      return undefined;
    }
    try {
      const report = await this.report(file.root, datasetSubjectPattern(file.subjectPattern, uri));
      for (const d of datasetFileDiagnostics(text, uri.fsPath, report)) publish(d);
    } catch (error) {
      const problem = datasetFileProblem(
        text,
        `The dataset folder ${file.root} could not be audited: ${(error as Error).message}`,
      );
      if (problem) publish(problem);
    }
    return path.resolve(file.root);
  }

  private async datasetFolder(folder: string, add: AddDiagnostic): Promise<void> {
    try {
      const report = await this.report(folder, subjectPattern(vscode.Uri.file(folder)));
      // A folder of screenshots is not a dataset with problems: only datasets with labels are reported.
      if (report.spec.labelSources.length > 0) this.publishFolder(folder, report, add);
    } catch (error) {
      log().debug(`Not reporting ${folder}: ${(error as Error).message}`);
    }
  }

  private publishFolder(folder: string, report: AuditReport, add: AddDiagnostic): void {
    for (const anchored of anchorFolderFindings(report, path.basename(folder))) {
      const uri = vscode.Uri.file(path.join(folder, ...anchored.path.split('/')));
      const diagnostic = new vscode.Diagnostic(
        new vscode.Range(0, 0, 0, 0),
        anchored.message,
        SEVERITY[anchored.finding.severity],
      );
      diagnostic.source = 'leukemia-audit';
      diagnostic.code = anchored.finding.code;
      add(uri, diagnostic);
    }
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const d of this.disposables) d.dispose();
  }
}

type AddDiagnostic = (
  uri: vscode.Uri,
  diagnostic: vscode.Diagnostic,
  fixes?: Parameters<FixRegistry['set']>[1][number],
) => void;

function uniqueUris(uris: vscode.Uri[]): vscode.Uri[] {
  const seen = new Map<string, vscode.Uri>();
  for (const uri of uris) seen.set(uri.toString(), uri);
  return [...seen.values()];
}
