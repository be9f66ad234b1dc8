// Fault battery: images that declare far more pixels than they hold are refused before anything is allocated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { auditDataset } from '../../src/core/audit/runAudit.js';
import { decodeImage } from '../../src/core/image/decode.js';
import { DEFAULT_MAX_PIXELS } from '../../src/core/image/header.js';

/** 62 bytes: an RLE8 BMP declaring 8192×8192 pixels whose data is just "end of bitmap". */
function rleBomb(side = 8192): Uint8Array {
  const bytes = new Uint8Array(62);
  const view = new DataView(bytes.buffer);
  bytes.set([0x42, 0x4d]);
  view.setUint32(2, 62, true);
  view.setUint32(10, 58, true); // pixel data after the 4-byte palette
  view.setUint32(14, 40, true);
  view.setInt32(18, side, true);
  view.setInt32(22, side, true);
  view.setUint16(26, 1, true);
  view.setUint16(28, 8, true);
  view.setUint32(30, 1, true); // BI_RLE8
  view.setUint32(34, 4, true);
  view.setUint32(46, 1, true); // one palette entry
  bytes.set([0x00, 0x01, 0x00, 0x00], 58); // end of bitmap
  return bytes;
}

/** A real 1×1 PNG whose IHDR is rewritten (with a valid CRC) to declare `width`×`height`. */
async function pngDeclaring(width: number, height: number): Promise<Uint8Array> {
  const png = new Uint8Array(
    await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } })
      .png()
      .toBuffer(),
  );
  const view = new DataView(png.buffer);
  view.setUint32(16, width);
  view.setUint32(20, height);
  view.setUint32(29, crc32(png.subarray(12, 29)));
  return png;
}

function rssMb(): number {
  return process.memoryUsage().rss / 1024 ** 2;
}

test('a 62-byte RLE8 BMP declaring 8192² pixels is refused before decoding', async (t) => {
  const bomb = rleBomb();
  assert.equal(bomb.length, 62);
  const before = rssMb();
  await assert.rejects(decodeImage(bomb), (error: Error & { reason?: string }) => {
    assert.equal(error.reason, 'too-large');
    assert.match(error.message, /8,192×8,192 pixels \(67\.1 Mpx\), over the limit of 50 Mpx/);
    return true;
  });
  const grew = rssMb() - before;
  assert.ok(grew < 100, `memory grew by ${grew.toFixed(0)} MB`);
  t.diagnostic(
    `FAULT bmp-rle-bomb: 62-byte RLE8 BMP declaring 8192×8192: refused before decoding (memory +${grew.toFixed(0)} MB, ` +
      'was 1.1 GB)',
  );
});

test('the audit reports bombs of every format as too large, and the limit is configurable', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-fault-bomb-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'all'));
  await writeFile(path.join(root, 'all', 'bomb.bmp'), rleBomb());
  await writeFile(path.join(root, 'all', 'bomb.png'), await pngDeclaring(30_000, 30_000));
  const fine = await sharp({ create: { width: 100, height: 100, channels: 3, background: '#804080' } })
    .png()
    .toBuffer();
  await writeFile(path.join(root, 'all', 'fine.png'), fine);
  const before = rssMb();
  const report = await auditDataset(root, { cacheDir: false, concurrency: 0 });
  const grew = rssMb() - before;
  const unreadable = report.findings.find((f) => f.code === 'unreadable-images')!;
  const files = unreadable.evidence.files as { path: string; reason: string; detail: string }[];
  assert.deepEqual(
    files.map((f) => `${f.path} ${f.reason}`),
    ['all/bomb.bmp too-large', 'all/bomb.png too-large'],
  );
  assert.match(files[1].detail, /PNG declares 30,000×30,000 pixels \(900 Mpx\)/);
  assert.ok(grew < 200, `memory grew by ${grew.toFixed(0)} MB`);
  // A lower limit refuses the 100×100 PNG too, on our header and in sharp (`limitInputPixels`).
  await assert.rejects(decodeImage(fine, { maxPixels: 5_000 }), /10,000 pixels|over the limit/);
  const strict = await auditDataset(root, { cacheDir: false, concurrency: 0, maxPixels: 5_000 });
  const strictFiles = strict.findings.find((f) => f.code === 'unreadable-images')!.evidence.files as { path: string }[];
  assert.ok(strictFiles.some((f) => f.path === 'all/fine.png'));
  t.diagnostic(
    `FAULT decompression-bombs: RLE8 BMP 8192² and PNG 30000² in the audit: both "too-large" before decoding ` +
      `(memory +${grew.toFixed(0)} MB; limit ${DEFAULT_MAX_PIXELS / 1e6} Mpx, maxPixels configurable, passed to ` +
      `sharp as limitInputPixels), "${files[0].detail}"`,
  );
});
