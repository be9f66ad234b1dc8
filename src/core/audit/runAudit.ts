/**
 * The audit with its I/O: scan the folder, read label tables, hash every image's pixels (decoding is also
 * the real readability check: a header can be fine and the pixels truncated), then run the pure audit.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { realPathInside } from '../confine.js';
import { AuditLimitError, scanDataset } from './scan.js';
import type { ScanResult, UnreadableEntry } from '../types.js';
import { auditScan, type AuditOptions, type AuditReport } from './audit.js';
import { decodeTableText, detectCsvLabels, parseDelimited, type CsvLabelTable } from './csvLabels.js';
import type { ImageHashes } from './duplicates.js';
import { nearDuplicatePairs, type NearDuplicatePair } from './nearDuplicates.js';
import { hashImages } from './pixels.js';
import { defaultCacheDir, ScanCache } from './scanCache.js';

export type AuditPhase = 'scan' | 'labels' | 'pixels';

/** "pixels: 640 / 10661": the audit's progress, worded once for the CLI and the editor. */
export function describeAuditProgress(phase: AuditPhase, done: number, total?: number): string {
  return `${phase}: ${done}${total ? ` / ${total}` : ''}`;
}

export interface AuditDatasetOptions extends AuditOptions {
  /** Decode every image to find duplicates and truncated pixel data (default true). */
  checkPixels?: boolean;
  /** Worker threads decoding images (default: the cores, at most 4; 0 decodes on the calling thread). */
  concurrency?: number;
  /**
   * Folder of the per-file cache that makes re-audits of unchanged files cheap (default `defaultCacheDir()`, never
   * inside the dataset); `false` for none.
   */
  cacheDir?: string | false;
  /** Follow symbolic links whose target lies outside the dataset folder (default false). */
  followLinksOutsideRoot?: boolean;
  /** Most files and folders one audit looks at (default `DEFAULT_MAX_FILES`). */
  maxFiles?: number;
  /** Most bytes one audit reads: image files decoded plus label tables (default 100 GiB). */
  maxBytes?: number;
  /** Images declaring more pixels are refused before decoding (default `DEFAULT_MAX_PIXELS`, 50 Mpx). */
  maxPixels?: number;
  onProgress?: (phase: AuditPhase, done: number, total?: number) => void;
  signal?: AbortSignal;
  /**
   * Label tables are read only when their real path lies inside one of these folders (an untrusted workspace
   * passes its folders, so a `labels.csv` symlink cannot read a file outside). Unset: any table in the tree.
   */
  tablesInside?: readonly string[];
}

const LABEL_TABLE = /\.(csv|tsv|txt)$/i;
const MAX_LABEL_TABLE_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_AUDIT_BYTES = 100 * 1024 ** 3;

export async function auditDataset(root: string, options: AuditDatasetOptions = {}): Promise<AuditReport> {
  return (await scanAndAudit(root, options)).report;
}

/** The audit together with what it was computed from, for callers (training) that go on to use them. */
export async function scanAndAudit(
  root: string,
  options: AuditDatasetOptions = {},
): Promise<{ report: AuditReport; scan: ScanResult; csvTables: CsvLabelTable[] }> {
  const { onProgress, signal } = options;
  const cache =
    options.cacheDir === false ? undefined : await ScanCache.open(root, options.cacheDir ?? defaultCacheDir());
  const scan = await scanDataset(root, {
    onProgress: (n) => onProgress?.('scan', n),
    signal,
    cache,
    followLinksOutsideRoot: options.followLinksOutsideRoot,
    maxFiles: options.maxFiles,
    maxPixels: options.maxPixels,
  });
  const budget = new ByteBudget(options.maxBytes ?? DEFAULT_MAX_AUDIT_BYTES);
  onProgress?.('labels', 0);
  const csvTables = await readLabelTables(scan, {
    signal,
    budget,
    followLinksOutsideRoot: options.followLinksOutsideRoot,
    inside: options.tablesInside,
  });
  let hashes: Map<string, ImageHashes> | undefined;
  let nearDuplicates: NearDuplicatePair[] | undefined;
  let checked = scan;
  if (options.checkPixels !== false) {
    budget.spend(
      scan.images.reduce((n, image) => n + (cache?.digest(image.path) ? 0 : image.size), 0),
      `the images under ${scan.root} that have to be decoded`,
    );
    const result = await hashImages(scan, {
      workers: options.concurrency,
      cache,
      maxPixels: options.maxPixels,
      signal,
      onProgress: (done, total) => onProgress?.('pixels', done, total),
    });
    hashes = result.hashes;
    checked = withUndecodable(scan, result.undecodable);
    const near = nearDuplicatePairs(hashes, { maxBits: options.nearDuplicateDistance, memo: cache?.nearDuplicates });
    nearDuplicates = near.pairs;
    cache?.rememberNearDuplicates(near.memo);
  }
  // A cache that cannot be written (read-only home, full disk) only costs the next audit its speed.
  await cache?.save().catch(() => undefined);
  return { report: auditScan(checked, { csvTables, hashes, nearDuplicates }, options), scan: checked, csvTables };
}

/** Counts the bytes an audit reads against its limit. */
class ByteBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  spend(bytes: number, what: string): void {
    this.used += bytes;
    if (this.used <= this.limit) return;
    throw new AuditLimitError(
      `The audit stopped before reading ${what}: that would make ${formatBytes(this.used)}, over its limit of ` +
        `${formatBytes(this.limit)} (maxBytes). Point it at the dataset folder itself, or raise the limit.`,
    );
  }
}

function formatBytes(n: number): string {
  const [value, unit] =
    n >= 1024 ** 3 ? [n / 1024 ** 3, 'GiB'] : n >= 1024 ** 2 ? [n / 1024 ** 2, 'MiB'] : [n, 'bytes'];
  return `${value.toLocaleString('en-US', { maximumFractionDigits: 1 })} ${unit}`;
}

/**
 * Label tables beside the images, each read only when it lies inside the dataset folder by real path (a
 * `labels.csv` link to a file elsewhere is not read), is at most 50 MB, and fits the audit's byte budget.
 */
export async function readLabelTables(
  scan: ScanResult,
  options: {
    signal?: AbortSignal;
    budget?: ByteBudget;
    followLinksOutsideRoot?: boolean;
    /** Read a table only when its real path lies inside one of these folders (untrusted workspaces). */
    inside?: readonly string[];
  } = {},
): Promise<CsvLabelTable[]> {
  const { signal, budget, inside } = options;
  const tables: CsvLabelTable[] = [];
  const realRoot = await realpath(scan.root).catch(() => scan.root);
  for (const file of scan.otherFiles.filter((f) => LABEL_TABLE.test(f))) {
    signal?.throwIfAborted();
    const path = join(scan.root, file);
    if (inside && !(await realPathInside(path, inside))) continue;
    try {
      const real = await realpath(path);
      if (!options.followLinksOutsideRoot && !real.startsWith(realRoot + sep)) continue;
      const { size } = await stat(real);
      if (size > MAX_LABEL_TABLE_BYTES) continue;
      budget?.spend(size, `the label table ${file}`);
      const text = decodeTableText(await readFile(real, { signal }));
      const table = detectCsvLabels(file, parseDelimited(text), scan.images);
      if (table) tables.push(table);
    } catch (error) {
      if (signal?.aborted || error instanceof AuditLimitError) throw error;
      // An unreadable side file is not a label table; the scan already reported permission problems.
    }
  }
  return tables;
}

/** Images whose pixels could not be decoded leave `images` and join `unreadable`. */
export function withUndecodable(scan: ScanResult, undecodable: UnreadableEntry[]): ScanResult {
  if (undecodable.length === 0) return scan;
  const bad = new Set(undecodable.map((u) => u.path));
  return {
    ...scan,
    images: scan.images.filter((img) => !bad.has(img.path)),
    unreadable: [...scan.unreadable, ...undecodable].sort((a, b) => (a.path < b.path ? -1 : 1)),
  };
}
