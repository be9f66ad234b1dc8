/**
 * An on-disk cache of preprocessed images, so each image is decoded and resized once per (content, size,
 * crop, preprocessing version) — not once per epoch, and not again on the next run.
 *
 * Layout: one file per image of exactly S·S·3 bytes, named by its cache key, in 256 sub-folders by the key's
 * first two hex digits. Chosen over one packed file per dataset because
 *   - content addressing needs no index: the trainer, the extension and a second CLI run can fill the same
 *     cache at once without locks, each file appears whole through an atomic rename, and a killed build
 *     keeps everything finished so far;
 *   - identical images (duplicates, the same dataset at another path) share one entry;
 *   - the exact byte length is the integrity check: a file of any other length is not trusted.
 * The cost is one small read per image per epoch, which the batch reader issues in parallel.
 *
 * To skip reading and hashing every source file (C-NMC is ~6 GB of BMP) on the next run, a per-dataset memo
 * of content hashes is kept, trusted only while a file's size, modification time and inode are unchanged.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { forEachBounded } from '../concurrency.js';
import { writeFileAtomic } from '../fsAtomic.js';
import { decodeImage } from '../image/decode.js';
import { ImageFormatError } from '../image/header.js';
import type { RawImage, UnreadableEntry, UnreadableReason } from '../types.js';
import type { CropMode } from '../train/settings.js';
import { PREPROCESSING_VERSION, preprocessImage } from './preprocess.js';

export interface ImageCacheOptions {
  /** Side S of the preprocessed square. */
  size: number;
  crop?: CropMode;
  /** Default: `defaultImageCacheDir()`. */
  cacheDir?: string;
  /** Images read and decoded at once (default 4: BMP decoding runs on this thread, more only helps I/O). */
  concurrency?: number;
  /** Called at most every 100 ms and once at the end. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** Decoder (default `decodeImage`); injectable so tests can count decodes. */
  decode?: (bytes: Uint8Array) => Promise<RawImage>;
}

export interface PreparedImages {
  /** Absolute dataset root the paths are relative to. */
  root: string;
  size: number;
  crop: CropMode;
  cacheDir: string;
  /** Cache key of every usable image, by path relative to the root. */
  keys: Map<string, string>;
  /** Images that could not be read or decoded, with the reason; the pipeline goes on without them. */
  skipped: UnreadableEntry[];
  stats: { decoded: number; fromCache: number; seconds: number };
  decode: (bytes: Uint8Array) => Promise<RawImage>;
}

const CACHE_FILE_EXTENSION = '.rgb';
const HASH_MEMO_FOLDER = 'content-hashes';
const HASH_MEMO_VERSION = 1;
const PROGRESS_INTERVAL_MS = 100;
const DEFAULT_CONCURRENCY = 4;

/** `<user cache folder>/leukemia-audit/images`; XDG_CACHE_HOME wins on every platform when set. */
export function defaultImageCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const home = os.homedir();
  const base = env.XDG_CACHE_HOME
    ? env.XDG_CACHE_HOME
    : platform === 'win32'
      ? (env.LOCALAPPDATA ?? path.join(home, 'AppData', 'Local'))
      : platform === 'darwin'
        ? path.join(home, 'Library', 'Caches')
        : path.join(home, '.cache');
  return path.join(base, 'leukemia-audit', 'images');
}

/** Everything that changes the preprocessed bytes is in the key, so a stale entry can never be found. */
export function cacheKey(contentSha256: string, size: number, crop: CropMode): string {
  return createHash('sha256')
    .update(`leukemia-audit preprocessed v${PREPROCESSING_VERSION} size=${size} crop=${crop} content=${contentSha256}`)
    .digest('hex');
}

export function cacheFilePath(cacheDir: string, key: string): string {
  return path.join(cacheDir, key.slice(0, 2), key + CACHE_FILE_EXTENSION);
}

/**
 * Makes sure every image has a cache entry: reuses existing ones, decodes and preprocesses the rest. Images
 * that cannot be read or decoded are listed in `skipped`; a cache folder that cannot be written is an error.
 */
export async function prepareImages(
  root: string,
  paths: readonly string[],
  options: ImageCacheOptions,
): Promise<PreparedImages> {
  const started = performance.now();
  const absoluteRoot = path.resolve(root);
  const crop = options.crop ?? 'none';
  const cacheDir = options.cacheDir ?? defaultImageCacheDir();
  const prepared: PreparedImages = {
    root: absoluteRoot,
    size: options.size,
    crop,
    cacheDir,
    keys: new Map(),
    skipped: [],
    stats: { decoded: 0, fromCache: 0, seconds: 0 },
    decode: options.decode ?? decodeImage,
  };
  const memo = await loadHashMemo(cacheDir, absoluteRoot);
  const expectedBytes = options.size * options.size * 3;
  let done = 0;
  let lastProgress = 0;

  await forEachBounded(paths, Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY), async (relative) => {
    options.signal?.throwIfAborted();
    const source = path.join(absoluteRoot, ...relative.split('/'));
    let bytes: Uint8Array | undefined;
    try {
      const fileStats = await readingSource(() => stat(source));
      const fingerprint = `${fileStats.size}:${fileStats.mtimeMs}:${fileStats.ino}`;
      let contentHash =
        memo.entries.get(relative)?.fingerprint === fingerprint ? memo.entries.get(relative)!.sha256 : undefined;
      if (contentHash === undefined) {
        bytes = await readingSource(() => readFile(source));
        contentHash = sha256(bytes);
        memo.entries.set(relative, { fingerprint, sha256: contentHash });
        memo.changed = true;
      }
      const key = cacheKey(contentHash, options.size, crop);
      if ((await fileSize(cacheFilePath(cacheDir, key))) === expectedBytes) {
        prepared.stats.fromCache++;
      } else {
        bytes ??= await readingSource(() => readFile(source));
        const pixels = await preprocessBytes(prepared, bytes);
        prepared.stats.decoded++;
        await storeEntry(cacheDir, key, pixels);
      }
      prepared.keys.set(relative, key);
    } catch (error) {
      if (!(error instanceof SourceImageError)) throw error;
      prepared.skipped.push({ path: relative, reason: error.reason, detail: error.message });
    }
    done++;
    const now = performance.now();
    if (now - lastProgress >= PROGRESS_INTERVAL_MS || done === paths.length) {
      lastProgress = now;
      options.onProgress?.(done, paths.length);
    }
  });

  if (memo.changed) await saveHashMemo(cacheDir, absoluteRoot, memo);
  prepared.skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  prepared.stats.seconds = (performance.now() - started) / 1000;
  return prepared;
}

/**
 * The preprocessed S·S·3 bytes of one prepared image. An entry deleted or damaged since `prepareImages` (a
 * user clearing the cache mid-training) is rebuilt from the source, which must still have the same content.
 */
export async function readPreprocessed(prepared: PreparedImages, relative: string): Promise<Uint8Array> {
  const key = prepared.keys.get(relative);
  if (key === undefined)
    throw new Error(`${relative} was not prepared (skipped or not in the list given to prepareImages)`);
  const file = cacheFilePath(prepared.cacheDir, key);
  const expectedBytes = prepared.size * prepared.size * 3;
  try {
    const cached = await readFile(file);
    if (cached.length === expectedBytes) return new Uint8Array(cached.buffer, cached.byteOffset, cached.byteLength);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const bytes = await readFile(path.join(prepared.root, ...relative.split('/')));
  if (cacheKey(sha256(bytes), prepared.size, prepared.crop) !== key) {
    throw new Error(`${relative} changed on disk after its images were prepared; prepare the dataset again`);
  }
  const pixels = await preprocessBytes(prepared, bytes);
  await storeEntry(prepared.cacheDir, key, pixels);
  return pixels;
}

/** A problem with one source image (unreadable, not decodable): skip it, the pipeline goes on. */
class SourceImageError extends Error {
  constructor(
    readonly reason: UnreadableReason,
    message: string,
  ) {
    super(message);
  }
}

async function preprocessBytes(prepared: PreparedImages, bytes: Uint8Array): Promise<Uint8Array> {
  if (bytes.length === 0) throw new SourceImageError('empty', 'the file is empty');
  let image: RawImage;
  try {
    image = await prepared.decode(bytes);
  } catch (error) {
    const reason: UnreadableReason = error instanceof ImageFormatError ? error.reason : 'corrupt';
    throw new SourceImageError(reason, `pixels could not be decoded: ${(error as Error).message ?? String(error)}`);
  }
  try {
    return preprocessImage(image, { size: prepared.size, crop: prepared.crop });
  } catch (error) {
    throw new SourceImageError('corrupt', `the decoded image could not be preprocessed: ${(error as Error).message}`);
  }
}

/** A source file that cannot be read (permissions, vanished since the scan) is that file's problem, not the run's. */
async function readingSource<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason: UnreadableReason =
      code === 'EACCES' || code === 'EPERM' ? 'permission-denied' : code === 'ELOOP' ? 'symlink-loop' : 'io-error';
    throw new SourceImageError(reason, `the file could not be read: ${(error as Error).message}`);
  }
}

async function storeEntry(cacheDir: string, key: string, pixels: Uint8Array): Promise<void> {
  const file = cacheFilePath(cacheDir, key);
  try {
    await writeFileAtomic(file, pixels);
  } catch (error) {
    // Another process may have written the same entry first (Windows refuses to rename over an open file).
    if ((await fileSize(file)) === pixels.length) return;
    throw new Error(`Cannot write the image cache in ${cacheDir}: ${(error as Error).message}`, { cause: error });
  }
}

async function fileSize(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch {
    return undefined;
  }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface HashMemo {
  entries: Map<string, { fingerprint: string; sha256: string }>;
  changed: boolean;
}

function hashMemoPath(cacheDir: string, root: string): string {
  return path.join(cacheDir, HASH_MEMO_FOLDER, `${createHash('sha256').update(root).digest('hex').slice(0, 32)}.json`);
}

/** A missing, unreadable or foreign memo is just empty: it only saves work, it never decides content. */
async function loadHashMemo(cacheDir: string, root: string): Promise<HashMemo> {
  const memo: HashMemo = { entries: new Map(), changed: false };
  try {
    const saved = JSON.parse(await readFile(hashMemoPath(cacheDir, root), 'utf8')) as {
      version?: number;
      root?: string;
      files?: Record<string, [string, string]>;
    };
    if (saved.version !== HASH_MEMO_VERSION || saved.root !== root || typeof saved.files !== 'object') return memo;
    for (const [relative, [fingerprint, hash]] of Object.entries(saved.files))
      memo.entries.set(relative, { fingerprint, sha256: hash });
  } catch {
    // First run for this dataset, or a damaged memo: rebuild it.
  }
  return memo;
}

async function saveHashMemo(cacheDir: string, root: string, memo: HashMemo): Promise<void> {
  const files = Object.fromEntries(
    [...memo.entries].map(([relative, entry]) => [relative, [entry.fingerprint, entry.sha256]]),
  );
  try {
    await writeFileAtomic(hashMemoPath(cacheDir, root), JSON.stringify({ version: HASH_MEMO_VERSION, root, files }));
  } catch {
    // Without the memo the next run re-reads the sources to hash them; slower, still correct.
  }
}
