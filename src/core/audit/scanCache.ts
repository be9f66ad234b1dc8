/**
 * Per-file results of earlier audits of one dataset folder — image header, exact-copy hash, perceptual hash and
 * thumbnail — so that re-auditing an unchanged tree reads no image. An entry is used only while the file's path,
 * size, modification and change times, device and inode are all the same as when it was computed.
 *
 * The cache lives outside the dataset (default: the OS cache folder, see `defaultCacheDir`), one file per dataset
 * folder. It is never trusted blindly: a file that is truncated, fails its checksum, was written by another version
 * or for another folder, or holds a malformed entry is ignored as a whole and rebuilt by the next save.
 *
 * File layout: "LKAUDITC", uint32 format version, uint32 JSON length, the JSON index (entries as arrays), the
 * thumbnail features back to back (content then texture, 1,024 bytes each), and the SHA-256 of everything before.
 */
import { createHash } from 'node:crypto';
import type { Stats } from 'node:fs';
import { readdir, readFile, realpath, rm, stat, utimes } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../fsAtomic.js';
import { THUMBNAIL_SIDE, type ImageDigest } from '../image/hash.js';
import type { ImageFormat, ImageHeader } from '../types.js';
import { parseNearDuplicateMemo, type NearDuplicateMemo } from './nearDuplicates.js';

const MAGIC = 'LKAUDITC';
/** Bump whenever a header, hash or thumbnail would come out differently: old entries must not survive. */
const FORMAT_VERSION = 3;
const FEATURE_BYTES = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
const DIGEST_BYTES = 2 * FEATURE_BYTES;
const MAX_CACHE_FILE_BYTES = 1024 ** 3;
/**
 * A dataset's cache file not used for this long is deleted by the next save of another one: datasets get moved,
 * renamed and deleted, and each cache of 15,000 images is about 30 MB. A use refreshes the file's time.
 */
export const STALE_CACHE_MS = 60 * 24 * 3600 * 1000;
const FORMATS: readonly ImageFormat[] = ['bmp', 'png', 'jpeg', 'tiff', 'webp'];

/** What identifies one version of a file's content without reading it. */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  dev: number;
}

export function stampOf(stats: Stats): FileStamp {
  return { size: stats.size, mtimeMs: stats.mtimeMs, ctimeMs: stats.ctimeMs, ino: stats.ino, dev: stats.dev };
}

function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.dev === b.dev;
}

interface Entry {
  stamp: FileStamp;
  header: ImageHeader;
  digest?: ImageDigest;
}

/**
 * `$XDG_CACHE_HOME/leukemia-audit` or `~/.cache/leukemia-audit` on Linux, `~/Library/Caches/leukemia-audit` on
 * macOS, `%LOCALAPPDATA%\leukemia-audit\Cache` on Windows.
 */
export function defaultCacheDir(): string {
  if (process.platform === 'win32') {
    return join(process.env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'leukemia-audit', 'Cache');
  }
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Caches', 'leukemia-audit');
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'leukemia-audit');
}

export class ScanCache {
  /** Entries as loaded; only those of files seen in this run are saved again, so deleted files drop out. */
  private readonly previous: Map<string, Entry>;
  private readonly current = new Map<string, Entry>();
  private changed = false;
  /** The last near-duplicate search of this folder, by content (`nearDuplicatePairs`). */
  private nearDuplicateMemo: NearDuplicateMemo | undefined;

  private constructor(
    readonly file: string,
    private readonly root: string,
    previous: Map<string, Entry>,
    /** Why the cache file on disk was not used, when it exists but was ignored. */
    readonly ignoredBecause: string | undefined,
    nearDuplicates?: NearDuplicateMemo,
  ) {
    this.previous = previous;
    this.nearDuplicateMemo = nearDuplicates;
  }

  /** Loads the cache of `root` from `dir`; never throws on a missing or bad cache file (it is just not used). */
  static async open(root: string, dir: string = defaultCacheDir()): Promise<ScanCache> {
    const realRoot = await realpath(root).catch(() => root);
    const key = createHash('sha256').update(realRoot).digest('hex').slice(0, 24);
    const file = join(dir, `scan-${key}.bin`);
    let bytes: Uint8Array;
    try {
      if ((await stat(file)).size > MAX_CACHE_FILE_BYTES) return new ScanCache(file, realRoot, new Map(), 'too large');
      bytes = await readFile(file);
    } catch {
      return new ScanCache(file, realRoot, new Map(), undefined);
    }
    try {
      const { entries, nearDuplicates } = decode(bytes, realRoot);
      const now = new Date();
      await utimes(file, now, now).catch(() => undefined); // in use, so not stale (STALE_CACHE_MS)
      return new ScanCache(file, realRoot, entries, undefined, nearDuplicates);
    } catch (error) {
      return new ScanCache(file, realRoot, new Map(), (error as Error).message);
    }
  }

  /** Entries loaded from disk. */
  get loaded(): number {
    return this.previous.size;
  }

  /** The cached header of a file whose stamp is unchanged; records the stamp for this run either way. */
  header(relPath: string, stamp: FileStamp): ImageHeader | undefined {
    const entry = this.previous.get(relPath);
    if (entry === undefined || !sameStamp(entry.stamp, stamp)) return undefined;
    this.current.set(relPath, entry);
    return entry.header;
  }

  rememberHeader(relPath: string, stamp: FileStamp, header: ImageHeader): void {
    this.current.set(relPath, { stamp, header });
    this.changed = true;
  }

  /** The cached digest of a file whose header this run took from the cache or remembered. */
  digest(relPath: string): ImageDigest | undefined {
    return this.current.get(relPath)?.digest;
  }

  rememberDigest(relPath: string, digest: ImageDigest): void {
    const entry = this.current.get(relPath);
    if (entry === undefined) return; // a file not stamped in this run's scan cannot be keyed
    entry.digest = digest;
    this.changed = true;
  }

  get nearDuplicates(): NearDuplicateMemo | undefined {
    return this.nearDuplicateMemo;
  }

  rememberNearDuplicates(memo: NearDuplicateMemo): void {
    const before = this.nearDuplicateMemo;
    this.nearDuplicateMemo = memo;
    if (!before || before.key !== memo.key || !sameContents(before, memo) || before.pairs.length !== memo.pairs.length)
      this.changed = true;
  }

  /** Writes this run's entries when anything changed (a file added, edited, hashed or gone). */
  async save(): Promise<void> {
    if (!this.changed && this.current.size === this.previous.size) return;
    await writeFileAtomic(this.file, encode(this.current, this.root, this.nearDuplicateMemo), { durable: false });
    this.changed = false;
    await removeStaleCaches(dirname(this.file), this.file);
  }
}

/** Deletes the other datasets' cache files in `dir` not used for `STALE_CACHE_MS`; never fails the save. */
export async function removeStaleCaches(dir: string, keep: string, now = Date.now()): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    const file = join(dir, name);
    if (!/^scan-[0-9a-f]{24}\.bin$/.test(name) || file === keep) continue;
    const stats = await stat(file).catch(() => undefined);
    if (stats && now - stats.mtimeMs > STALE_CACHE_MS) await rm(file, { force: true }).catch(() => undefined);
  }
}

type EntryRow = [
  path: string,
  size: number,
  mtimeMs: number,
  ctimeMs: number,
  ino: number,
  dev: number,
  format: ImageFormat,
  width: number,
  height: number,
  channels: number,
  pixel: string | null,
  perceptual: string | null,
];

function sameContents(a: NearDuplicateMemo, b: NearDuplicateMemo): boolean {
  return a.contents.length === b.contents.length && a.contents.every((c, i) => c === b.contents[i]);
}

function encode(entries: Map<string, Entry>, root: string, nearDuplicates: NearDuplicateMemo | undefined): Uint8Array {
  const rows: EntryRow[] = [];
  const vectors: Int8Array[] = [];
  for (const [path, { stamp, header, digest }] of entries) {
    const withThumbnail =
      digest !== undefined &&
      digest.features.content.length === FEATURE_BYTES &&
      digest.features.texture.length === FEATURE_BYTES;
    rows.push([
      path,
      stamp.size,
      stamp.mtimeMs,
      stamp.ctimeMs,
      stamp.ino,
      stamp.dev,
      header.format,
      header.width,
      header.height,
      header.channels,
      withThumbnail ? digest.pixel : null,
      withThumbnail ? digest.perceptual : null,
    ]);
    if (withThumbnail) vectors.push(digest.features.content, digest.features.texture);
  }
  const index = Buffer.from(JSON.stringify({ root, rows, nearDuplicates }));
  const out = new Uint8Array(16 + index.length + vectors.length * FEATURE_BYTES + 32);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(MAGIC, 'latin1'), 0);
  view.setUint32(8, FORMAT_VERSION, true);
  view.setUint32(12, index.length, true);
  out.set(index, 16);
  let offset = 16 + index.length;
  for (const vector of vectors) {
    out.set(new Uint8Array(vector.buffer, vector.byteOffset, vector.length), offset);
    offset += FEATURE_BYTES;
  }
  out.set(createHash('sha256').update(out.subarray(0, offset)).digest(), offset);
  return out;
}

/** Throws a sentence saying what is wrong with the file. */
function decode(
  bytes: Uint8Array,
  root: string,
): { entries: Map<string, Entry>; nearDuplicates: NearDuplicateMemo | undefined } {
  if (bytes.length < 48 || Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== MAGIC) {
    throw new Error('not a scan cache file');
  }
  const body = bytes.subarray(0, bytes.length - 32);
  const checksum = createHash('sha256').update(body).digest();
  if (!checksum.equals(bytes.subarray(bytes.length - 32))) throw new Error('checksum mismatch (truncated or edited)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(8, true) !== FORMAT_VERSION) throw new Error('written by another version');
  const indexLength = view.getUint32(12, true);
  if (16 + indexLength > body.length) throw new Error('index runs past the end');
  const index = JSON.parse(Buffer.from(body.subarray(16, 16 + indexLength)).toString('utf8')) as unknown;
  if (!isRecord(index) || index.root !== root || !Array.isArray(index.rows)) throw new Error('for another folder');
  let thumbnailAt = 16 + indexLength;
  const entries = new Map<string, Entry>();
  for (const row of index.rows as unknown[]) {
    if (!isEntryRow(row)) throw new Error('malformed entry');
    const [path, size, mtimeMs, ctimeMs, ino, dev, format, width, height, channels, pixel, perceptual] = row;
    const entry: Entry = { stamp: { size, mtimeMs, ctimeMs, ino, dev }, header: { format, width, height, channels } };
    if (pixel !== null && perceptual !== null) {
      if (thumbnailAt + DIGEST_BYTES > body.length) throw new Error('thumbnails run past the end');
      // A copy, so one entry does not keep the whole file's buffer alive.
      const vectors = new Int8Array(DIGEST_BYTES);
      vectors.set(new Int8Array(body.buffer, body.byteOffset + thumbnailAt, DIGEST_BYTES));
      const features = { content: vectors.subarray(0, FEATURE_BYTES), texture: vectors.subarray(FEATURE_BYTES) };
      entry.digest = { pixel, perceptual, features };
      thumbnailAt += DIGEST_BYTES;
    }
    entries.set(path, entry);
  }
  if (thumbnailAt !== body.length) throw new Error('unexpected bytes after the thumbnails');
  // A memo that does not parse only costs one full near-duplicate search.
  return { entries, nearDuplicates: parseNearDuplicateMemo(index.nearDuplicates) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function isEntryRow(row: unknown): row is EntryRow {
  if (!Array.isArray(row) || row.length !== 12) return false;
  const [path, size, mtimeMs, ctimeMs, ino, dev, format, width, height, channels, pixel, perceptual] = row;
  const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  const isTime = (n: unknown) => typeof n === 'number' && Number.isFinite(n);
  return (
    typeof path === 'string' &&
    isCount(size) &&
    isTime(mtimeMs) &&
    isTime(ctimeMs) &&
    isTime(ino) &&
    isTime(dev) &&
    FORMATS.includes(format as ImageFormat) &&
    isCount(width) &&
    (width as number) > 0 &&
    isCount(height) &&
    (height as number) > 0 &&
    [1, 2, 3, 4].includes(channels as number) &&
    (pixel === null ? perceptual === null : typeof pixel === 'string' && /^[0-9a-f]{64}$/.test(pixel)) &&
    (perceptual === null || (typeof perceptual === 'string' && /^[0-9a-f]{16}$/.test(perceptual)))
  );
}
