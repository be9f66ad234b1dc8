/**
 * The background audits every editor feature shares, one per folder and subject pattern: headers first (a
 * few hundred ms for C-NMC's 15,000 BMP headers: labels, subjects, structure), then pixels (duplicates,
 * truncated files), which replace the header report when they finish. Each runs in the audit child process,
 * never on the extension host's thread: subject patterns are user input (a pattern that backtracks for
 * minutes), and the child is killed when its time is up. One header audit and one pixel audit at a time (a
 * long pixel audit does not hold back the next dataset's warnings), at low priority; kept, failures too,
 * until files in the folder change. Roots are confined first (see confinement.ts).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import type { AuditRequest } from '../../protocol/audit.js';
import { log } from '../log.js';
import { runAuditProcess } from './auditProcess.js';
import type { AuditStatus } from './auditStatus.js';
import { auditableRoot, tablesInside } from './confinement.js';
import { describeLag, measureLag } from './eventLoopLag.js';

/** A folder whose headers take longer than this is not a dataset the editor should audit on its own. */
const HEADER_TIMEOUT_MS = 30_000;
/** Decoding every image: ~100 s for the whole Kaggle download at today's speed, so a generous bound. */
const PIXEL_TIMEOUT_MS = 15 * 60_000;
const INVALIDATE_DEBOUNCE_MS = 1_000;
/** Changes to these files can change an audit: images and label tables. */
const RELEVANT = /\.(bmp|png|jpe?g|tiff?|webp|csv|tsv|txt)$/i;

interface Entry {
  report: Promise<AuditReport>;
  watcher: vscode.FileSystemWatcher;
  /** Ends this entry's audits (the folder changed, or the extension is deactivated). */
  stop: AbortController;
  timer?: NodeJS.Timeout;
}

export class AuditCache implements vscode.Disposable {
  private readonly entries = new Map<string, Entry>();
  /** One lane per kind of audit, each running its jobs one after another. */
  private readonly lanes = {
    headers: Promise.resolve() as Promise<unknown>,
    pixels: Promise.resolve() as Promise<unknown>,
  };
  private readonly invalidated = new vscode.EventEmitter<string>();
  private readonly updated = new vscode.EventEmitter<string>();
  /** Fires with the folder whose cached audit was dropped. */
  readonly onDidInvalidate = this.invalidated.event;
  /** Fires with the folder whose header report the pixel audit has just replaced. */
  readonly onDidUpdate = this.updated.event;

  /**
   * @param script the audit child (`dist/auditChild.js`)
   * @param checkPixelsInBackground whether a pixel audit follows each header audit
   */
  constructor(
    private readonly script: string,
    private readonly status: AuditStatus,
    private readonly checkPixelsInBackground: () => boolean = () => true,
  ) {}

  async get(folder: string, subjectPattern?: string): Promise<AuditReport> {
    // Too broad, or (untrusted) outside the workspace by real path: refused with the reason.
    const root = await auditableRoot(folder);
    const key = cacheKey(root, subjectPattern);
    let entry = this.entries.get(key);
    if (!entry) {
      const stop = new AbortController();
      const request = { root, subjectPattern, checkPixels: false };
      const report = this.enqueue('headers', () => this.audit(request, stop.signal));
      const created: Entry = { report, stop, watcher: this.watch(root, key) };
      entry = created;
      this.entries.set(key, created);
      // A failed audit stays cached, failure and all, until files in the folder change: a pattern that
      // backtracks or a folder too big to scan in time must not cost another 30 s on every diagnostics pass.
      report.then(
        () => this.auditPixels(key, created, request),
        () => undefined,
      );
    }
    return entry.report;
  }

  /** The pixel audit after the header audit; its report replaces the header one if the entry is still current. */
  private auditPixels(key: string, entry: Entry, headers: AuditRequest): void {
    if (!this.checkPixelsInBackground()) return;
    this.enqueue('pixels', () => this.audit({ ...headers, checkPixels: true }, entry.stop.signal)).then(
      (full) => {
        if (this.entries.get(key) !== entry) return;
        entry.report = Promise.resolve(full);
        this.updated.fire(headers.root);
      },
      (error) => {
        if (!entry.stop.signal.aborted) log().warn(`Pixel audit of ${headers.root}: ${(error as Error).message}`);
      },
    );
  }

  private enqueue<T>(lane: 'headers' | 'pixels', job: () => Promise<T>): Promise<T> {
    const result = this.lanes[lane].then(job, job);
    this.lanes[lane] = result.catch(() => undefined);
    return result;
  }

  private async audit(
    request: Omit<AuditRequest, 'tablesInside' | 'background'>,
    stop: AbortSignal,
  ): Promise<AuditReport> {
    const what = request.checkPixels ? 'pixels' : 'headers';
    if (stop.aborted) throw new Error(`the ${what} audit of ${request.root} was stopped`);
    const limitMs = request.checkPixels ? PIXEL_TIMEOUT_MS : HEADER_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(limitMs);
    const shown = this.status.begin(path.basename(request.root), what);
    const started = Date.now();
    try {
      const { result, lag } = await measureLag(() =>
        runAuditProcess(
          this.script,
          { ...request, tablesInside: tablesInside(), background: true },
          {
            signal: AbortSignal.any([stop, timeout]),
            onProgress: shown.progress,
            onOutput: (line) => log().info(`[audit] ${line}`),
          },
        ),
      );
      const pattern = request.subjectPattern ? `subject pattern ${request.subjectPattern}` : 'default subject pattern';
      log().info(`Event-loop lag of the extension host while auditing ${request.root} (${what}): ${describeLag(lag)}.`);
      if (!result) {
        if (timeout.aborted) {
          const message = `the ${what} audit took longer than ${limitMs / 1000} s and was stopped (a very large folder, or a subject pattern that backtracks: ${pattern})`;
          // Said here, whoever asked: a dataset folder without a dataset file has nowhere else to say it.
          log().warn(`${request.root}: ${message}.`);
          throw new Error(message);
        }
        throw new Error(`the ${what} audit of ${request.root} was stopped`);
      }
      log().info(
        `Audited ${request.root} (${what}, ${pattern}): ${result.images} images, ${result.findings.length} findings, ${Date.now() - started} ms.`,
      );
      return result;
    } finally {
      shown.end();
    }
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
    entry.stop.abort();
    entry.watcher.dispose();
    this.entries.delete(key);
    if (notify) this.invalidated.fire(key.split('\0')[0]);
  }

  dispose(): void {
    for (const key of [...this.entries.keys()]) this.drop(key, false);
    this.invalidated.dispose();
    this.updated.dispose();
  }
}

function cacheKey(root: string, subjectPattern?: string): string {
  return `${root}\0${subjectPattern ?? ''}`;
}
