// The per-file cache of the audit (headers and pixel digests keyed by path, size, times and inode) and the pixel
// phase on worker threads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { hashImages } from '../src/core/audit/pixels.js';
import { auditDataset } from '../src/core/audit/runAudit.js';
import { ScanCache, STALE_CACHE_MS } from '../src/core/audit/scanCache.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { scanDataset } from '../src/core/audit/scan.js';
import type { RawImage } from '../src/core/types.js';
import { randomStainTint, renderCell } from '../src/core/demo/generate.js';
import { createRng } from '../src/core/random.js';

function picture(seed: number, side = 40): RawImage {
  const data = new Uint8Array(side * side * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 97 + ((i * seed) >>> 3)) % 251;
  return { width: side, height: side, channels: 3, data };
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function dataset(t: { after: (fn: () => Promise<void>) => void }, count: number): Promise<string> {
  const root = await tempDir(t, 'leukemia-audit-cache-data-');
  for (const label of ['all', 'hem']) await mkdir(path.join(root, label));
  for (let i = 0; i < count; i++) {
    await writeFile(path.join(root, i % 2 ? 'hem' : 'all', `img_${i}.bmp`), encodeBmp24(picture(i)));
  }
  return root;
}

/** Scan and pixel phase with a cache from `dir`, as the audit runs them; the cache is saved afterwards. */
async function cachedPass(root: string, dir: string, workers = 0) {
  const cache = await ScanCache.open(root, dir);
  const scan = await scanDataset(root, { cache });
  const pixels = await hashImages(scan, { cache, workers });
  await cache.save();
  return { cache, scan, pixels };
}

test('a second pass over unchanged files decodes nothing; a rewritten file is decoded again', async (t) => {
  const root = await dataset(t, 12);
  const cacheDir = await tempDir(t, 'leukemia-audit-cache-');
  const first = await cachedPass(root, cacheDir);
  assert.equal(first.cache.loaded, 0);
  assert.equal(first.pixels.decoded, 12);
  const second = await cachedPass(root, cacheDir);
  assert.equal(second.cache.loaded, 12);
  assert.equal(second.pixels.decoded, 0);
  assert.deepEqual([...second.pixels.hashes.keys()].sort(), [...first.pixels.hashes.keys()].sort());
  for (const [file, digest] of first.pixels.hashes) {
    assert.equal(second.pixels.hashes.get(file)!.pixel, digest.pixel);
    assert.deepEqual(second.pixels.hashes.get(file)!.features, digest.features);
  }
  // Same size, new content: the stamp (mtime, ctime) changes, the entry is not used.
  await writeFile(path.join(root, 'all', 'img_0.bmp'), encodeBmp24(picture(1000)));
  await rm(path.join(root, 'hem', 'img_1.bmp'));
  const third = await cachedPass(root, cacheDir);
  assert.equal(third.pixels.decoded, 1);
  assert.notEqual(third.pixels.hashes.get('all/img_0.bmp')!.pixel, first.pixels.hashes.get('all/img_0.bmp')!.pixel);
  const fourth = await cachedPass(root, cacheDir);
  assert.equal(fourth.cache.loaded, 11, 'the deleted file left the cache');
});

test('the cache lives in the folder given, one file per dataset, nothing inside the dataset', async (t) => {
  const root = await dataset(t, 4);
  const cacheDir = await tempDir(t, 'leukemia-audit-cache-');
  await auditDataset(root, { cacheDir });
  assert.deepEqual((await readdir(root)).sort(), ['all', 'hem']);
  const files = await readdir(cacheDir);
  assert.equal(files.length, 1);
  assert.match(files[0], /^scan-[0-9a-f]{24}\.bin$/);
});

test('a corrupt, truncated or foreign cache file is ignored and rebuilt, and the audit is unchanged', async (t) => {
  const root = await dataset(t, 6);
  const cacheDir = await tempDir(t, 'leukemia-audit-cache-');
  const reference = await auditDataset(root, { cacheDir: false });
  await cachedPass(root, cacheDir);
  const [name] = await readdir(cacheDir);
  const file = path.join(cacheDir, name);
  const good = await readFile(file);
  const damaged: Array<[string, Uint8Array]> = [
    ['one flipped byte', Uint8Array.from(good, (b, i) => (i === good.length >> 1 ? b ^ 1 : b))],
    ['truncated', good.subarray(0, good.length - 100)],
    ['not a cache', new TextEncoder().encode('{"rows": []}')],
    ['empty', new Uint8Array(0)],
  ];
  for (const [what, bytes] of damaged) {
    await writeFile(file, bytes);
    const cache = await ScanCache.open(root, cacheDir);
    assert.equal(cache.loaded, 0, what);
    if (bytes.length > 0) assert.ok(cache.ignoredBecause, `${what}: no reason given`);
    const report = await auditDataset(root, { cacheDir });
    assert.deepEqual(report.findings, reference.findings, what);
    assert.equal((await ScanCache.open(root, cacheDir)).loaded, 6, `${what}: not rebuilt`);
  }
  // A cache of another folder, copied over this one's name, is not used for it.
  const other = await dataset(t, 3);
  await cachedPass(other, cacheDir);
  const otherName = (await readdir(cacheDir)).find((f) => f !== name)!;
  await writeFile(file, await readFile(path.join(cacheDir, otherName)));
  const cache = await ScanCache.open(root, cacheDir);
  assert.equal(cache.loaded, 0);
  assert.equal(cache.ignoredBecause, 'for another folder');
});

test('worker threads give the same digests as the calling thread', async (t) => {
  const root = await dataset(t, 130);
  await writeFile(path.join(root, 'all', 'broken.bmp'), encodeBmp24(picture(7)).subarray(0, 300));
  const scan = await scanDataset(root);
  const inThread = await hashImages(scan, { workers: 0 });
  const inWorkers = await hashImages(scan, { workers: 2 });
  assert.equal(inWorkers.hashes.size, 130);
  for (const [file, digest] of inThread.hashes) assert.deepEqual(inWorkers.hashes.get(file), digest, file);
  assert.deepEqual(inWorkers.undecodable, inThread.undecodable);
});

/** A generated segmented cell (the demo's), and the same cell brightened: a near-duplicate with other pixels. */
function cellAndBrighterCopy(seed: number): [RawImage, RawImage] {
  const cell = renderCell(createRng(`cache-near/${seed}`), 'all', 200, randomStainTint(createRng(`stain/${seed}`)));
  const copy = { ...cell, data: cell.data.map((v) => Math.min(255, Math.round(v * 1.1 + 6))) };
  return [cell, copy];
}

test('the near-duplicate search is remembered, and a re-audit after an edit finds what a fresh audit finds', async (t) => {
  const root = await tempDir(t, 'leukemia-audit-cache-near-');
  for (const label of ['all', 'hem']) await mkdir(path.join(root, label));
  const write = (file: string, image: RawImage) => writeFile(path.join(root, file), encodeBmp24(image));
  for (let seed = 0; seed < 8; seed++)
    await write(`${seed % 2 ? 'hem' : 'all'}/cell_${seed}.bmp`, cellAndBrighterCopy(seed)[0]);
  await write('hem/brighter_2.bmp', cellAndBrighterCopy(2)[1]);
  const cacheDir = await tempDir(t, 'leukemia-audit-cache-');
  const fresh = () => auditDataset(root, { cacheDir: false, concurrency: 0 });
  const cached = () => auditDataset(root, { cacheDir, concurrency: 0 });
  const nearPairs = (report: Awaited<ReturnType<typeof fresh>>) =>
    JSON.stringify(report.findings.find((f) => f.code === 'duplicate-images')?.evidence ?? null);

  const first = await cached();
  assert.match(nearPairs(first), /brighter_2/, 'the brightened copy is found');
  const memo = (await ScanCache.open(root, cacheDir)).nearDuplicates;
  assert.equal(memo?.contents.length, 9, 'the search is remembered by content');
  assert.equal(nearPairs(await cached()), nearPairs(first));

  // The copy's original is replaced and a copy of another cell appears: the remembered pair of the old content
  // must not survive, the new pair must be found.
  await write('all/cell_2.bmp', cellAndBrighterCopy(20)[0]);
  await write('all/brighter_5.bmp', cellAndBrighterCopy(5)[1]);
  const after = nearPairs(await cached());
  assert.equal(after, nearPairs(await fresh()));
  assert.match(after, /brighter_5/);
  assert.doesNotMatch(after, /brighter_2/);
});

test('a save deletes other datasets’ cache files unused for 60 days, and nothing else', async (t) => {
  const root = await dataset(t, 2);
  const cacheDir = await tempDir(t, 'leukemia-audit-cache-');
  const old = new Date(Date.now() - STALE_CACHE_MS - 24 * 3600 * 1000);
  const stale = path.join(cacheDir, `scan-${'a'.repeat(24)}.bin`);
  const recent = path.join(cacheDir, `scan-${'b'.repeat(24)}.bin`);
  const other = path.join(cacheDir, 'notes.txt');
  for (const file of [stale, recent, other]) await writeFile(file, 'x');
  await utimes(stale, old, old);
  await utimes(other, old, old);
  await auditDataset(root, { cacheDir });
  const left = await readdir(cacheDir);
  assert.ok(!left.includes(path.basename(stale)), 'the stale cache is gone');
  assert.ok(left.includes(path.basename(recent)) && left.includes('notes.txt'), 'recent caches and other files stay');
  // Its own cache, used but unchanged (not saved again), has its time refreshed by the use.
  const own = left.find((name) => name.startsWith('scan-') && name !== path.basename(recent))!;
  await utimes(path.join(cacheDir, own), old, old);
  await auditDataset(root, { cacheDir });
  assert.ok((await stat(path.join(cacheDir, own))).mtimeMs > Date.now() - 60_000);
});
