import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { decodeImage, readImageFile } from '../src/core/image/decode.js';
import {
  ImageFormatError,
  IncompleteHeaderError,
  readFileImageHeader,
  readImageHeader,
  sniffFormat,
} from '../src/core/image/header.js';

const WIDTH = 7;
const HEIGHT = 5;

function rawPixels(channels: number): Buffer {
  return Buffer.from(Array.from({ length: WIDTH * HEIGHT * channels }, (_, i) => (i * 37 + (i % channels) * 50) % 256));
}

/** Builds a sharp pipeline from raw pixels; grey input is tagged b-w so writers keep it grey. */
function fromRaw(channels: 1 | 2 | 3 | 4): sharp.Sharp {
  const pipeline = sharp(rawPixels(channels), { raw: { width: WIDTH, height: HEIGHT, channels } });
  return channels <= 2 ? pipeline.toColourspace('b-w') : pipeline;
}

function assertCorrupt(bytes: Uint8Array, pattern: RegExp, fileSize?: number): void {
  assert.throws(
    () => readImageHeader(bytes, fileSize),
    (error: unknown) => error instanceof ImageFormatError && error.reason === 'corrupt' && pattern.test(error.message),
  );
}

test('sniffFormat recognises each magic number and nothing else', () => {
  const cases: Array<[number[] | string, string | undefined]> = [
    [[0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0], 'png'],
    [[0xff, 0xd8, 0xff, 0xe0], 'jpeg'],
    [[0x49, 0x49, 0x2a, 0x00], 'tiff'],
    [[0x4d, 0x4d, 0x00, 0x2a], 'tiff'],
    [[0x4d, 0x4d, 0x00, 0x2b], 'tiff'],
    ['RIFF\0\0\0\0WEBPVP8 ', 'webp'],
    ['RIFF\0\0\0\0WAVEfmt ', undefined],
    ['BM', 'bmp'],
    ['BMW service history, 2019\n', undefined], // "BM" then text, not a DIB header size
    ['label,file\n', undefined],
    [[0xff, 0xd8], undefined],
  ];
  for (const [content, expected] of cases) {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'latin1') : Uint8Array.from(content);
    assert.equal(sniffFormat(bytes), expected, JSON.stringify(content));
  }
});

test('headers of files written by sharp agree with the channels decodeImage returns', async () => {
  const cases: Array<{ name: string; bytes: Promise<Buffer>; format: string; channels: number; decoded: number }> = [
    { name: 'PNG grey', bytes: fromRaw(1).png().toBuffer(), format: 'png', channels: 1, decoded: 1 },
    { name: 'PNG grey+alpha', bytes: fromRaw(2).png().toBuffer(), format: 'png', channels: 2, decoded: 4 },
    { name: 'PNG RGB', bytes: fromRaw(3).png().toBuffer(), format: 'png', channels: 3, decoded: 3 },
    { name: 'PNG RGBA', bytes: fromRaw(4).png().toBuffer(), format: 'png', channels: 4, decoded: 4 },
    {
      name: 'PNG palette',
      bytes: fromRaw(3).png({ palette: true }).toBuffer(),
      format: 'png',
      channels: 3,
      decoded: 3,
    },
    {
      name: 'PNG palette+tRNS',
      bytes: fromRaw(4).png({ palette: true }).toBuffer(),
      format: 'png',
      channels: 4,
      decoded: 4,
    },
    { name: 'JPEG grey', bytes: fromRaw(1).jpeg().toBuffer(), format: 'jpeg', channels: 1, decoded: 1 },
    { name: 'JPEG RGB', bytes: fromRaw(3).jpeg().toBuffer(), format: 'jpeg', channels: 3, decoded: 3 },
    {
      name: 'JPEG progressive',
      bytes: fromRaw(3).jpeg({ progressive: true }).toBuffer(),
      format: 'jpeg',
      channels: 3,
      decoded: 3,
    },
    {
      name: 'JPEG CMYK',
      bytes: fromRaw(3).toColourspace('cmyk').jpeg().toBuffer(),
      format: 'jpeg',
      channels: 3,
      decoded: 3,
    },
    {
      name: 'TIFF grey',
      bytes: fromRaw(1).tiff({ compression: 'lzw' }).toBuffer(),
      format: 'tiff',
      channels: 1,
      decoded: 1,
    },
    {
      name: 'TIFF RGB',
      bytes: fromRaw(3).tiff({ compression: 'none' }).toBuffer(),
      format: 'tiff',
      channels: 3,
      decoded: 3,
    },
    {
      name: 'TIFF RGBA',
      bytes: fromRaw(4).tiff({ compression: 'deflate' }).toBuffer(),
      format: 'tiff',
      channels: 4,
      decoded: 4,
    },
    {
      name: 'TIFF CMYK',
      bytes: fromRaw(3).toColourspace('cmyk').tiff().toBuffer(),
      format: 'tiff',
      channels: 3,
      decoded: 3,
    },
    { name: 'WebP lossy (VP8)', bytes: fromRaw(3).webp().toBuffer(), format: 'webp', channels: 3, decoded: 3 },
    {
      name: 'WebP lossless (VP8L)',
      bytes: fromRaw(3).webp({ lossless: true }).toBuffer(),
      format: 'webp',
      channels: 3,
      decoded: 3,
    },
    {
      name: 'WebP lossless alpha (VP8L)',
      bytes: fromRaw(4).webp({ lossless: true }).toBuffer(),
      format: 'webp',
      channels: 4,
      decoded: 4,
    },
    { name: 'WebP lossy alpha (VP8X)', bytes: fromRaw(4).webp().toBuffer(), format: 'webp', channels: 4, decoded: 4 },
  ];
  for (const { name, bytes, format, channels, decoded } of cases) {
    const file = await bytes;
    assert.deepEqual(readImageHeader(file), { format, width: WIDTH, height: HEIGHT, channels }, name);
    const image = await decodeImage(file);
    assert.deepEqual([image.width, image.height, image.channels], [WIDTH, HEIGHT, decoded], name);
  }
});

test('grey PNG decodes to exactly the stored grey values', async () => {
  const image = await decodeImage(await fromRaw(1).png().toBuffer());
  assert.deepEqual(Array.from(image.data), Array.from(rawPixels(1)));
});

function bmpHeaderOnly(dibSize: number, fields: (view: DataView) => void, totalSize: number): Uint8Array {
  const bytes = new Uint8Array(totalSize);
  const view = new DataView(bytes.buffer);
  bytes.set([0x42, 0x4d]);
  view.setUint32(2, totalSize, true);
  view.setUint32(10, 14 + dibSize, true);
  view.setUint32(14, dibSize, true);
  fields(view);
  return bytes;
}

test('BMP: core header, top-down height, alpha mask in a V5 header', () => {
  const core = bmpHeaderOnly(
    12,
    (v) => {
      v.setUint16(18, 3, true);
      v.setUint16(20, 2, true);
      v.setUint16(22, 1, true);
      v.setUint16(24, 24, true);
    },
    26 + 2 * 12,
  );
  assert.deepEqual(readImageHeader(core), { format: 'bmp', width: 3, height: 2, channels: 3 });

  const v5 = bmpHeaderOnly(
    124,
    (v) => {
      v.setInt32(18, 4, true);
      v.setInt32(22, -3, true);
      v.setUint16(26, 1, true);
      v.setUint16(28, 32, true);
      v.setUint32(30, 3, true); // BI_BITFIELDS
      [0xff0000, 0xff00, 0xff, 0xff000000].forEach((mask, i) => v.setUint32(54 + i * 4, mask, true));
    },
    138 + 4 * 4 * 3,
  );
  assert.deepEqual(readImageHeader(v5), { format: 'bmp', width: 4, height: 3, channels: 4 });
});

test('BMP truncation is judged against the file size, not the prefix', () => {
  const bmp = encodeBmp24({ width: 450, height: 450, channels: 3, data: new Uint8Array(450 * 450 * 3) });
  const prefix = bmp.subarray(0, 4096);
  assert.deepEqual(readImageHeader(prefix, bmp.length), { format: 'bmp', width: 450, height: 450, channels: 3 });
  assertCorrupt(prefix, /450×450×24 bit but the file holds 4,096 of 608,454 bytes needed/);
  assertCorrupt(prefix, /holds 608,453 of 608,454 bytes/, bmp.length - 1);
});

/** SOI, APPn segments (each at most 64 KiB), a COM segment, fill bytes, then a baseline SOF0 for 640×480×3. */
function jpegWithLargeExif(appSegments: number, bytesEach: number): Uint8Array {
  const app = [0xff, 0xe1, (bytesEach + 2) >> 8, (bytesEach + 2) & 0xff, ...new Array<number>(bytesEach).fill(0x45)];
  const comment = [0xff, 0xfe, 0x00, 0x05, 0x68, 0x69, 0x21];
  const sof0 = [
    0xff,
    0xff,
    0xff,
    0xc0,
    0x00,
    0x11,
    0x08,
    0x01,
    0xe0,
    0x02,
    0x80,
    0x03,
    ...new Array<number>(9).fill(0x11),
  ];
  const apps = Array.from({ length: appSegments }, () => app).flat();
  return Uint8Array.from([0xff, 0xd8, ...apps, ...comment, ...sof0, 0xff, 0xd9]);
}

test('JPEG: walks past large APPn segments and fill bytes to the frame header', () => {
  const jpeg = jpegWithLargeExif(1, 20_000);
  assert.deepEqual(readImageHeader(jpeg), { format: 'jpeg', width: 640, height: 480, channels: 3 });
  assert.throws(
    () => readImageHeader(jpeg.subarray(0, 4096), jpeg.length),
    (error: unknown) =>
      error instanceof IncompleteHeaderError && error.bytesNeeded > 4096 && error.bytesNeeded <= jpeg.length,
  );
});

test('readFileImageHeader reads further into the file when the header needs it', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-header-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'exif-heavy.jpg');
  const jpeg = jpegWithLargeExif(3, 60_000);
  await writeFile(file, jpeg);
  const handle = await open(file, 'r');
  try {
    assert.deepEqual(await readFileImageHeader(handle, jpeg.length), {
      format: 'jpeg',
      width: 640,
      height: 480,
      channels: 3,
    });
  } finally {
    await handle.close();
  }
});

/** A minimal TIFF: header, then one IFD of (tag, type, value) entries, optionally placed after some filler. */
function tiff(littleEndian: boolean, entries: Array<[number, 3 | 4, number]>, filler = 0): Uint8Array {
  const ifdOffset = 8 + filler;
  const bytes = new Uint8Array(ifdOffset + 2 + entries.length * 12 + 4);
  const view = new DataView(bytes.buffer);
  bytes.set(littleEndian ? [0x49, 0x49] : [0x4d, 0x4d]);
  view.setUint16(2, 42, littleEndian);
  view.setUint32(4, ifdOffset, littleEndian);
  view.setUint16(ifdOffset, entries.length, littleEndian);
  entries.forEach(([tag, type, value], i) => {
    const at = ifdOffset + 2 + i * 12;
    view.setUint16(at, tag, littleEndian);
    view.setUint16(at + 2, type, littleEndian);
    view.setUint32(at + 4, 1, littleEndian);
    if (type === 3) view.setUint16(at + 8, value, littleEndian);
    else view.setUint32(at + 8, value, littleEndian);
  });
  return bytes;
}

test('TIFF: both byte orders, SHORT and LONG sizes, directory beyond the first read', () => {
  const bigEndian = tiff(false, [
    [256, 4, 70_000],
    [257, 3, 3],
    [262, 3, 2],
    [277, 3, 3],
  ]);
  assert.deepEqual(readImageHeader(bigEndian), { format: 'tiff', width: 70_000, height: 3, channels: 3 });

  const greyAlphaAtEnd = tiff(
    true,
    [
      [256, 3, 12],
      [257, 4, 9],
      [262, 3, 1],
      [277, 3, 2],
    ],
    10_000,
  );
  assert.deepEqual(readImageHeader(greyAlphaAtEnd), { format: 'tiff', width: 12, height: 9, channels: 2 });
  assert.throws(() => readImageHeader(greyAlphaAtEnd.subarray(0, 4096), greyAlphaAtEnd.length), IncompleteHeaderError);

  assertCorrupt(tiff(true, [[257, 3, 3]]), /no ImageWidth or ImageLength/);
});

test('BigTIFF: 8-byte offsets and 20-byte directory entries', () => {
  const bytes = new Uint8Array(16 + 8 + 2 * 20 + 8);
  const view = new DataView(bytes.buffer);
  bytes.set([0x49, 0x49]);
  view.setUint16(2, 43, true);
  view.setUint16(4, 8, true);
  view.setBigUint64(8, 16n, true);
  view.setBigUint64(16, 2n, true);
  [
    [256, 16, 5],
    [257, 3, 6],
  ].forEach(([tag, type, value], i) => {
    const at = 24 + i * 20;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, type, true);
    view.setBigUint64(at + 4, 1n, true);
    if (type === 3) view.setUint16(at + 12, value, true);
    else view.setBigUint64(at + 12, BigInt(value), true);
  });
  assert.deepEqual(readImageHeader(bytes), { format: 'tiff', width: 5, height: 6, channels: 1 });
});

test('malformed headers throw ImageFormatError with a sentence naming the problem', async () => {
  const png = await fromRaw(3).png().toBuffer();
  const renamedChunk = Buffer.from(png);
  renamedChunk.write('IHDX', 12, 'latin1');
  assertCorrupt(renamedChunk, /PNG signature but no IHDR chunk/);

  const badCrc = Buffer.from(png);
  badCrc[20] ^= 0xff; // height byte changes, checksum no longer matches
  assertCorrupt(badCrc, /IHDR chunk fails its checksum/);

  assertCorrupt(png.subarray(0, 20), /PNG file ends after 20 bytes, before its IHDR chunk/);
  assertCorrupt(Uint8Array.from([0xff, 0xd8, 0xff, 0xd9]), /ends \(EOI marker\) before any frame header/);
  assertCorrupt(
    Buffer.from('RIFF\x10\0\0\0WEBPJUNK\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0', 'latin1'),
    /unknown chunk "JUNK"/,
  );

  assert.throws(
    () => readImageHeader(Buffer.from('Time,Event\n0,start\n')),
    (error: unknown) =>
      error instanceof ImageFormatError &&
      error.reason === 'not-an-image' &&
      /starts with "Time,Eve"/.test(error.message),
  );
});

test('truncation past the header surfaces at decode time, and readImageFile names the file', async (t) => {
  const isCorruptDecode = (pattern: RegExp) => (error: unknown) =>
    error instanceof ImageFormatError && error.reason === 'corrupt' && pattern.test(error.message);
  const png = await sharp(rawPixels(3), { raw: { width: WIDTH, height: HEIGHT, channels: 3 } })
    .png()
    .toBuffer();
  const jpeg = await sharp(Buffer.alloc(64 * 64 * 3, 90), { raw: { width: 64, height: 64, channels: 3 } })
    .jpeg()
    .toBuffer();
  const truncatedPng = png.subarray(0, png.length - 20);
  assert.deepEqual(readImageHeader(truncatedPng).width, WIDTH);
  await assert.rejects(decodeImage(truncatedPng), isCorruptDecode(/^PNG could not be decoded: /));
  await assert.rejects(
    decodeImage(jpeg.subarray(0, jpeg.length - 100)),
    isCorruptDecode(/^JPEG could not be decoded: /),
  );

  const dir = await mkdtemp(path.join(os.tmpdir(), 'leukemia-audit-decode-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'cut.png');
  await writeFile(file, truncatedPng);
  await assert.rejects(
    readImageFile(file),
    (error: unknown) =>
      error instanceof ImageFormatError && error.message.startsWith(`${file}: PNG could not be decoded: `),
  );
  const text = path.join(dir, 'notes.png');
  await writeFile(text, 'not a picture');
  await assert.rejects(
    readImageFile(text),
    (error: unknown) => error instanceof ImageFormatError && error.reason === 'not-an-image',
  );
});
