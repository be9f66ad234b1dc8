/**
 * The audit's pixel phase: every image decoded once, to its exact-copy hash, perceptual hash and thumbnail (the
 * duplicate checks), which is also the real readability check (a header can be fine and the pixels truncated).
 *
 * Large datasets are spread over worker threads, each decoding one file at a time, so at most `workers` images are
 * decoded at once; small ones run on the calling thread, where starting workers would cost more than it saves.
 * Results come from and go to the per-file cache when one is given.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { forEachBounded } from '../concurrency.js';
import {
  DEFAULT_MAX_FILE_BYTES,
  describeDigestFailure,
  digestFile,
  type DigestFailure,
  type DigestOptions,
} from '../image/digestFile.js';
import { THUMBNAIL_SIDE, type ImageDigest } from '../image/hash.js';
import { DEFAULT_MAX_PIXELS } from '../image/header.js';
import type { ScanResult, UnreadableEntry } from '../types.js';
import { startWorker } from '../worker.js';
import type { ImageHashes } from './duplicates.js';
import type { ScanCache } from './scanCache.js';

export interface PixelOptions {
  /** Worker threads (default: the cores, at most 4); 0 decodes on the calling thread. */
  workers?: number;
  /** Per-file results from earlier audits; new results are added to it. */
  cache?: ScanCache;
  maxPixels?: number;
  maxFileBytes?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** Fewer images to decode than this: no workers. */
const IN_THREAD_BELOW = 96;
const BATCH_FILES = 24;
const MAX_WORKERS = 4;

export interface PixelWorkerInit {
  root: string;
  limits: DigestOptions;
}
export interface PixelBatch {
  id: number;
  paths: string[];
}
type FileOutcome = { pixel: string; perceptual: string } | { failure: DigestFailure };
export interface PixelBatchResult {
  id: number;
  results: FileOutcome[];
  /** The features of the successful files, in order, back to back: content then texture of each. */
  features: Int8Array;
}

export async function hashImages(
  scan: ScanResult,
  options: PixelOptions = {},
): Promise<{ hashes: Map<string, ImageHashes>; undecodable: UnreadableEntry[]; decoded: number }> {
  const { cache, signal } = options;
  const limits: DigestOptions = {
    maxPixels: options.maxPixels ?? DEFAULT_MAX_PIXELS,
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
  };
  const hashes = new Map<string, ImageHashes>();
  const undecodable: UnreadableEntry[] = [];
  const total = scan.images.length;
  let done = 0;
  const todo: string[] = [];
  for (const image of scan.images) {
    const cached = cache?.digest(image.path);
    if (cached) hashes.set(image.path, cached);
    else todo.push(image.path);
  }
  done = hashes.size;
  options.onProgress?.(done, total);
  const record = (path: string, outcome: ImageDigest | DigestFailure): void => {
    if ('reason' in outcome) {
      undecodable.push({ path, ...outcome });
    } else {
      hashes.set(path, outcome);
      cache?.rememberDigest(path, outcome);
    }
    done++;
    if (done % 64 === 0 || done === total) options.onProgress?.(done, total);
  };
  const workers = Math.min(
    Math.max(0, Math.floor(options.workers ?? Math.min(MAX_WORKERS, availableParallelism()))),
    Math.ceil(todo.length / BATCH_FILES),
  );
  if (workers === 0 || todo.length < IN_THREAD_BELOW) {
    await forEachBounded(todo, 1, async (path) => {
      signal?.throwIfAborted();
      record(path, await digestFile(join(scan.root, path), limits).catch(describeDigestFailure));
    });
  } else {
    await digestInWorkers(scan.root, todo, workers, limits, record, signal);
  }
  return { hashes, undecodable, decoded: todo.length };
}

/** Two batches in flight per worker, so a worker never waits for the next one. */
async function digestInWorkers(
  root: string,
  paths: string[],
  count: number,
  limits: DigestOptions,
  record: (path: string, outcome: ImageDigest | DigestFailure) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  signal?.throwIfAborted();
  const init: PixelWorkerInit = { root, limits };
  const pool: Worker[] = Array.from({ length: count }, () => startWorker(__filename, 'pixelWorker', init));
  const batches = new Map<number, string[]>();
  let nextFile = 0;
  let nextId = 0;
  let onAbort: (() => void) | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      let inFlight = 0;
      const send = (worker: Worker): void => {
        if (nextFile >= paths.length) {
          if (inFlight === 0) resolve();
          return;
        }
        const batch: PixelBatch = { id: nextId++, paths: paths.slice(nextFile, nextFile + BATCH_FILES) };
        nextFile += batch.paths.length;
        batches.set(batch.id, batch.paths);
        inFlight++;
        worker.postMessage(batch);
      };
      onAbort = (): void => reject(signal!.reason);
      signal?.addEventListener('abort', onAbort, { once: true });
      for (const worker of pool) {
        worker.on('message', (reply: PixelBatchResult) => {
          inFlight--;
          const batchPaths = batches.get(reply.id)!;
          batches.delete(reply.id);
          const side = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
          let offset = 0;
          reply.results.forEach((outcome, i) => {
            if ('failure' in outcome) return record(batchPaths[i], outcome.failure);
            const content = reply.features.subarray(offset, (offset += side));
            const texture = reply.features.subarray(offset, (offset += side));
            record(batchPaths[i], { ...outcome, features: { content, texture } });
          });
          send(worker);
        });
        worker.on('error', (error) => reject(new Error(`A pixel worker failed: ${error.message}`, { cause: error })));
        worker.on('exit', (code) => {
          if (batches.size > 0) reject(new Error(`A pixel worker stopped (exit code ${code}) with files to decode`));
        });
      }
      for (let round = 0; round < 2; round++) for (const worker of pool) send(worker);
    });
  } finally {
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    await Promise.all(pool.map((worker) => worker.terminate()));
  }
}
