import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, open, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { scanDataset } from '../src/core/audit/scan.js';
import type { RawImage, ScanResult } from '../src/core/types.js';

function pixels(width: number, height: number): RawImage {
  const data = Uint8Array.from({ length: width * height * 3 }, (_, i) => (i * 31) % 256);
  return { width, height, channels: 3, data };
}

function encoder(width: number, height: number): sharp.Sharp {
  return sharp(pixels(width, height).data, { raw: { width, height, channels: 3 } });
}

async function put(root: string, relPath: string, content: Uint8Array | string): Promise<void> {
  const file = path.join(root, relPath);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
}

/** True when file permissions do not stop this process (root, or a file system that ignores modes). */
async function permissionsAreIgnored(file: string): Promise<boolean> {
  try {
    await (await open(file, 'r')).close();
    return true;
  } catch {
    return false;
  }
}

interface Fixture {
  root: string;
  permissionsIgnored: boolean;
}

/** A C-NMC-like tree with every kind of trouble the scanner must classify. */
async function buildFixture(t: { after: (fn: () => Promise<void>) => void }): Promise<Fixture> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-scan-'));
  t.after(async () => {
    await chmod(path.join(root, 'locked'), 0o755).catch(() => undefined);
    await rm(root, { recursive: true, force: true });
  });
  const bmp = encodeBmp24(pixels(6, 4));
  const png = await encoder(8, 3).png().toBuffer();
  await put(root, 'training_data/fold_0/all/UID_1_1_1_all.bmp', bmp);
  await put(root, 'training_data/fold_0/hem/UID_H1_1_1_hem.png', png);
  await put(root, 'formats/cell.jpg', await encoder(9, 5).jpeg().toBuffer());
  await put(root, 'formats/cell.TIFF', await encoder(10, 6).tiff().toBuffer());
  await put(root, 'formats/cell.webp', await encoder(11, 7).webp().toBuffer());
  await put(root, 'formats/really-a-png.jpg', png);
  await put(root, 'formats/no_extension', bmp);
  await put(root, 'Zelle_ü_日本.bmp', bmp);
  await put(root, 'broken/empty.bmp', '');
  await put(root, 'broken/text.bmp', 'this is a note, not a picture\n');
  await put(root, 'broken/truncated.bmp', bmp.subarray(0, 60));
  await put(root, 'labels.csv', 'file,label\nUID_1_1_1_all.bmp,all\n');
  await put(root, 'empty-notes.txt', '');
  await put(root, '.DS_Store', 'junk');
  await put(root, 'training_data/Thumbs.db', 'junk');
  await put(root, 'training_data/fold_0/all/._UID_1_1_1_all.bmp', 'resource fork');
  await put(root, '.cache/hidden.bmp', bmp);
  await put(root, '__MACOSX/fold_0/x.bmp', bmp);
  await put(root, 'locked/locked.bmp', bmp);
  await chmod(path.join(root, 'locked/locked.bmp'), 0o000);
  await symlink('..', path.join(root, 'training_data/back-to-root'));
  await symlink('training_data/fold_0/hem', path.join(root, 'hem-alias'));
  await symlink('missing.bmp', path.join(root, 'broken/dangling.bmp'));
  await symlink('ping.png', path.join(root, 'broken/pong.png'));
  await symlink('pong.png', path.join(root, 'broken/ping.png'));
  return { root, permissionsIgnored: await permissionsAreIgnored(path.join(root, 'locked/locked.bmp')) };
}

function summary(result: ScanResult) {
  return {
    images: result.images.map(
      ({ path: p, format, width, height, channels }) => `${p} ${format} ${width}x${height}x${channels}`,
    ),
    unreadable: result.unreadable.map(({ path: p, reason }) => `${p} ${reason}`),
    otherFiles: result.otherFiles,
    ignored: result.ignored,
  };
}

test('classifies every file of a messy tree by content', async (t) => {
  const { root, permissionsIgnored } = await buildFixture(t);
  const progress: number[] = [];
  const result = await scanDataset(root, { onProgress: (n) => progress.push(n) });

  const lockedImage = 'locked/locked.bmp bmp 6x4x3';
  if (permissionsIgnored) {
    t.diagnostic(
      'running with permissions ignored (root?): chmod 000 does not block reads, so locked.bmp scans as an image',
    );
  }
  assert.deepEqual(summary(result), {
    images: [
      'Zelle_ü_日本.bmp bmp 6x4x3',
      'formats/cell.TIFF tiff 10x6x3',
      'formats/cell.jpg jpeg 9x5x3',
      'formats/cell.webp webp 11x7x3',
      'formats/no_extension bmp 6x4x3',
      'formats/really-a-png.jpg png 8x3x3',
      ...(permissionsIgnored ? [lockedImage] : []),
      'training_data/fold_0/all/UID_1_1_1_all.bmp bmp 6x4x3',
      'training_data/fold_0/hem/UID_H1_1_1_hem.png png 8x3x3',
    ],
    unreadable: [
      'broken/dangling.bmp io-error',
      'broken/empty.bmp empty',
      'broken/ping.png symlink-loop',
      'broken/pong.png symlink-loop',
      'broken/text.bmp not-an-image',
      'broken/truncated.bmp corrupt',
      // A second way into a folder already scanned: listed once, so links cannot multiply a tree.
      'hem-alias linked-twice',
      ...(permissionsIgnored ? [] : ['locked/locked.bmp permission-denied']),
      'training_data/back-to-root symlink-loop',
    ],
    otherFiles: ['empty-notes.txt', 'labels.csv'],
    // .DS_Store, .cache, __MACOSX, Thumbs.db, ._UID_1_1_1_all.bmp
    ignored: 5,
  });

  assert.equal(result.root, root);
  const sizes = new Map(result.images.map((image) => [image.path, image.size]));
  assert.equal(sizes.get('Zelle_ü_日本.bmp'), 54 + 20 * 4);
  const details = new Map(result.unreadable.map((entry) => [entry.path, entry.detail]));
  assert.match(details.get('broken/truncated.bmp')!, /6×4×24 bit but the file holds 60 of 134 bytes needed/);
  assert.match(details.get('broken/text.bmp')!, /Named \.bmp, but the content is not a BMP.*"this is "/);
  assert.match(details.get('broken/dangling.bmp')!, /points to "missing.bmp", which does not exist/);
  assert.match(details.get('training_data/back-to-root')!, /leads back into a folder that contains it/);
  assert.match(details.get('hem-alias')!, /already scanned as "training_data\/fold_0\/hem"/);
  // 14 regular files, the dangling link and the two links that point at each other.
  assert.equal(progress.at(-1), 17);
});

test('results do not depend on concurrency', async (t) => {
  const { root } = await buildFixture(t);
  const serial = await scanDataset(root, { concurrency: 1 });
  const parallel = await scanDataset(root, { concurrency: 64 });
  assert.deepEqual(parallel, serial);
});

test('followSymlinks: false leaves linked folders alone', async (t) => {
  const { root } = await buildFixture(t);
  const result = await scanDataset(root, { followSymlinks: false });
  assert.ok(!result.images.some((image) => image.path.startsWith('hem-alias/')));
  assert.ok(!result.unreadable.some((entry) => entry.path === 'training_data/back-to-root'));
  assert.equal(result.ignored, 5 + 2);
});

test('an unreadable folder below the root is reported, not thrown', async (t) => {
  const { root, permissionsIgnored } = await buildFixture(t);
  await chmod(path.join(root, 'locked'), 0o000);
  const result = await scanDataset(root);
  if (permissionsIgnored) {
    t.diagnostic('running with permissions ignored (root?): the chmod 000 folder is still listed');
    assert.ok(result.images.some((image) => image.path === 'locked/locked.bmp'));
  } else {
    assert.deepEqual(
      result.unreadable.find((entry) => entry.path === 'locked'),
      { path: 'locked', reason: 'permission-denied', detail: 'Could not open the folder: permission denied' },
    );
  }
});

test('a root that cannot be scanned throws an error naming it', async (t) => {
  const parent = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-scan-root-'));
  const locked = path.join(parent, 'locked');
  t.after(async () => {
    await chmod(locked, 0o755).catch(() => undefined);
    await rm(parent, { recursive: true, force: true });
  });
  const missing = path.join(parent, 'no-such-folder');
  await assert.rejects(
    scanDataset(missing),
    (error: Error) => error.message === `Cannot scan ${missing}: it does not exist`,
  );
  const file = path.join(parent, 'labels.csv');
  await writeFile(file, 'a,b\n');
  await assert.rejects(
    scanDataset(file),
    (error: Error) => error.message === `Cannot scan ${file}: it is a file, not a folder`,
  );

  await mkdir(locked);
  await writeFile(path.join(locked, 'a.bmp'), encodeBmp24(pixels(2, 2)));
  await chmod(locked, 0o000);
  if (await permissionsAreIgnored(path.join(locked, 'a.bmp'))) {
    t.diagnostic('running with permissions ignored (root?): a chmod 000 root is still readable');
    assert.equal((await scanDataset(locked)).images.length, 1);
  } else {
    await assert.rejects(
      scanDataset(locked),
      (error: Error) => error.message === `Cannot scan ${locked}: permission denied`,
    );
  }
});

test('an aborted scan rejects with the abort reason', async (t) => {
  const { root } = await buildFixture(t);
  const controller = new AbortController();
  controller.abort(new Error('user cancelled'));
  await assert.rejects(scanDataset(root, { signal: controller.signal }), /user cancelled/);

  const midway = new AbortController();
  const scan = scanDataset(root, {
    concurrency: 1,
    signal: midway.signal,
    onProgress: () => midway.abort(new Error('stop')),
  });
  await assert.rejects(scan, /stop/);
});
