/**
 * Header-only audits (no pixel decoding: a few hundred ms for C-NMC's 15,000 BMP headers) shared by every
 * editor feature, one per folder and subject pattern, run one at a time to leave the CPU to the user, and
 * dropped when files in the folder change.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import { auditDataset } from '../../core/audit/runAudit.js';
import { log } from '../log.js';
import { auditableRoot, tablesInside } from './confinement.js';

/** A folder that takes longer than this to scan is not a dataset the editor should audit on its own. */
const AUDIT_TIMEOUT_MS = 30_000;
const INVALIDATE_DEBOUNCE_MS = 1_000;
/** Changes to these files can change an audit: images and label tables. */
const RELEVANT = /\.(bmp|png|jpe?g|tiff?|webp|csv|tsv|txt)$/i;

interface Entry {
  report: Promise<AuditReport>;
  watcher: vscode.FileSystemWatcher;
  timer?: NodeJS.Timeout;
}

export class AuditCache implements vscode.Disposable {
  private readonly entries = new Map<string, Entry>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly invalidated = new vscode.EventEmitter<string>();
  /** Fires with the folder whose cached audit was dropped. */
  readonly onDidInvalidate = this.invalidated.event;

  async get(folder: string, subjectPattern?: string): Promise<AuditReport> {
    // Too broad, or (untrusted) outside the workspace by real path: refused with the reason.
    const root = await auditableRoot(folder);
    const key = cacheKey(root, subjectPattern);
    let entry = this.entries.get(key);
    if (!entry) {
      const report = this.enqueue(() => this.audit(root, subjectPattern));
      entry = { report, watcher: this.watch(root, key) };
      this.entries.set(key, entry);
      report.catch(() => this.drop(key, false));
    }
    return entry.report;
  }

  /** Stores a report computed elsewhere (e.g. by a command with its own progress). */
  prime(report: AuditReport, subjectPattern?: string): void {
    const key = cacheKey(path.resolve(report.root), subjectPattern);
    const existing = this.entries.get(key);
    if (existing) existing.report = Promise.resolve(report);
    else this.entries.set(key, { report: Promise.resolve(report), watcher: this.watch(report.root, key) });
  }

  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const result = this.queue.then(job, job);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async audit(root: string, subjectPattern?: string): Promise<AuditReport> {
    const started = Date.now();
    const signal = AbortSignal.timeout(AUDIT_TIMEOUT_MS);
    const report = await auditDataset(root, {
      checkPixels: false,
      subjectPattern,
      signal,
      tablesInside: tablesInside(),
    });
    log().info(
      `Audited ${root} (headers only): ${report.images} images, ${report.findings.length} findings, ${Date.now() - started} ms.`,
    );
    return report;
  }

  private watch(root: string, key: string): vscode.FileSystemWatcher {
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(root), '**/*'));
    const changed = (uri: vscode.Uri) => {
      if (!RELEVANT.test(uri.fsPath)) return;
      const entry = this.entries.get(key);
      if (!entry) return;
      clearTimeout(entry.timer);
      entry.timer = setTimeout(() => this.drop(key, true), INVALIDATE_DEBOUNCE_MS);
    };
    watcher.onDidCreate(changed);
    watcher.onDidChange(changed);
    watcher.onDidDelete(changed);
    return watcher;
  }

  private drop(key: string, notify: boolean): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    clearTimeout(entry.timer);
    entry.watcher.dispose();
    this.entries.delete(key);
    if (notify) this.invalidated.fire(key.split('\0')[0]);
  }

  dispose(): void {
    for (const key of [...this.entries.keys()]) this.drop(key, false);
    this.invalidated.dispose();
  }
}

function cacheKey(root: string, subjectPattern?: string): string {
  return `${root}\0${subjectPattern ?? ''}`;
}
