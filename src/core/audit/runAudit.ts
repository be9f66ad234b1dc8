/**
 * The audit with its I/O: scan the folder, read label tables, hash every image's pixels (decoding is also
 * the real readability check: a header can be fine and the pixels truncated), then run the pure audit.
 */
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachBounded } from '../concurrency.js';
import { decodeImage, toRgb } from '../image/decode.js';
import { lumaThumbnail, perceptualHash, pixelHash } from '../image/hash.js';
import { scanDataset } from './scan.js';
import type { ScanResult, UnreadableEntry } from '../types.js';
import { auditScan, type AuditOptions, type AuditReport } from './audit.js';
import { detectCsvLabels, parseDelimited, type CsvLabelTable } from './csvLabels.js';
import type { ImageHashes } from './duplicates.js';

export type AuditPhase = 'scan' | 'labels' | 'pixels';

/** "pixels: 640 / 10661": the audit's progress, worded once for the CLI and the editor. */
export function describeAuditProgress(phase: AuditPhase, done: number, total?: number): string {
  return `${phase}: ${done}${total ? ` / ${total}` : ''}`;
}

export interface AuditDatasetOptions extends AuditOptions {
  /** Decode every image to find duplicates and truncated pixel data (default true). */
  checkPixels?: boolean;
  concurrency?: number;
  onProgress?: (phase: AuditPhase, done: number, total?: number) => void;
  signal?: AbortSignal;
}

const LABEL_TABLE = /\.(csv|tsv|txt)$/i;
const MAX_LABEL_TABLE_BYTES = 50 * 1024 * 1024;

export async function auditDataset(root: string, options: AuditDatasetOptions = {}): Promise<AuditReport> {
  return (await scanAndAudit(root, options)).report;
}

/** The audit together with what it was computed from, for callers (training) that go on to use them. */
export async function scanAndAudit(
  root: string,
  options: AuditDatasetOptions = {},
): Promise<{ report: AuditReport; scan: ScanResult; csvTables: CsvLabelTable[] }> {
  const { onProgress, signal } = options;
  const scan = await scanDataset(root, { onProgress: (n) => onProgress?.('scan', n), signal });
  onProgress?.('labels', 0);
  const csvTables = await readLabelTables(scan);
  let hashes: Map<string, ImageHashes> | undefined;
  let checked = scan;
  if (options.checkPixels !== false) {
    const result = await hashImages(scan, {
      concurrency: options.concurrency,
      signal,
      onProgress: (done, total) => onProgress?.('pixels', done, total),
    });
    hashes = result.hashes;
    checked = withUndecodable(scan, result.undecodable);
  }
  return { report: auditScan(checked, { csvTables, hashes }, options), scan: checked, csvTables };
}

export async function readLabelTables(scan: ScanResult): Promise<CsvLabelTable[]> {
  const tables: CsvLabelTable[] = [];
  for (const file of scan.otherFiles.filter((f) => LABEL_TABLE.test(f))) {
    const path = join(scan.root, file);
    try {
      if ((await stat(path)).size > MAX_LABEL_TABLE_BYTES) continue;
      const table = detectCsvLabels(file, parseDelimited(await readFile(path, 'utf8')), scan.images);
      if (table) tables.push(table);
    } catch {
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

export async function hashImages(
  scan: ScanResult,
  options: { concurrency?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
): Promise<{ hashes: Map<string, ImageHashes>; undecodable: UnreadableEntry[] }> {
  const hashes = new Map<string, ImageHashes>();
  const undecodable: UnreadableEntry[] = [];
  const total = scan.images.length;
  let done = 0;
  await forEachBounded(scan.images, Math.max(1, options.concurrency ?? 8), async (image) => {
    options.signal?.throwIfAborted();
    try {
      const handle = await open(join(scan.root, image.path), 'r');
      let bytes: Uint8Array;
      try {
        bytes = await handle.readFile();
      } finally {
        await handle.close();
      }
      const rgb = toRgb(await decodeImage(bytes));
      hashes.set(image.path, { pixel: pixelHash(rgb), perceptual: perceptualHash(rgb), thumbnail: lumaThumbnail(rgb) });
    } catch (error) {
      undecodable.push({
        path: image.path,
        reason: 'corrupt',
        detail: `pixels could not be decoded: ${(error as Error).message}`,
      });
    }
    done++;
    if (done % 64 === 0 || done === total) options.onProgress?.(done, total);
  });
  return { hashes, undecodable };
}
