import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeBmp } from '../src/core/image/bmpDecode.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { decodeImage } from '../src/core/image/decode.js';
import { pixelHash } from '../src/core/image/hash.js';
import { ImageFormatError } from '../src/core/image/header.js';
import type { RawImage } from '../src/core/types.js';

// Every BMP here is assembled byte by byte: file header, DIB header, masks or palette, then the pixel array.

const BI_RGB = 0;
const BI_RLE8 = 1;
const BI_RLE4 = 2;
const BI_BITFIELDS = 3;
const BI_PNG = 5;
const BI_ALPHABITFIELDS = 6;

type Rgb = [number, number, number];

interface BmpSpec {
  width: number;
  /** Negative for top-down, as stored. */
  height: number;
  bitsPerPixel: number;
  compression?: number;
  dibSize?: 12 | 40 | 108 | 124;
  palette?: Rgb[];
  colorsUsed?: number;
  /** After a 40-byte header, or inside a V4/V5 header. */
  masks?: number[];
  /** The pixel array exactly as stored. */
  pixels: Uint8Array;
}

function buildBmp(spec: BmpSpec): Uint8Array {
  const dibSize = spec.dibSize ?? 40;
  const isCore = dibSize === 12;
  const masksAfterHeader = dibSize === 40 && spec.masks ? spec.masks.length * 4 : 0;
  const paletteBytes = (spec.palette?.length ?? 0) * (isCore ? 3 : 4);
  const pixelOffset = 14 + dibSize + masksAfterHeader + paletteBytes;
  const out = new Uint8Array(pixelOffset + spec.pixels.length);
  const view = new DataView(out.buffer);
  out[0] = 0x42;
  out[1] = 0x4d;
  view.setUint32(2, out.length, true);
  view.setUint32(10, pixelOffset, true);
  view.setUint32(14, dibSize, true);
  if (isCore) {
    view.setUint16(18, spec.width, true);
    view.setUint16(20, spec.height, true);
    view.setUint16(22, 1, true);
    view.setUint16(24, spec.bitsPerPixel, true);
  } else {
    view.setInt32(18, spec.width, true);
    view.setInt32(22, spec.height, true);
    view.setUint16(26, 1, true);
    view.setUint16(28, spec.bitsPerPixel, true);
    view.setUint32(30, spec.compression ?? BI_RGB, true);
    view.setUint32(34, spec.pixels.length, true);
    view.setUint32(46, spec.colorsUsed ?? 0, true);
    spec.masks?.forEach((mask, i) => view.setUint32(54 + i * 4, mask, true));
  }
  let at = 14 + dibSize + masksAfterHeader;
  for (const [r, g, b] of spec.palette ?? []) {
    out[at++] = b;
    out[at++] = g;
    out[at++] = r;
    if (!isCore) out[at++] = 0;
  }
  out.set(spec.pixels, pixelOffset);
  return out;
}

/** Concatenates stored rows, each zero-padded to a multiple of 4 bytes. */
function paddedRows(rows: number[][]): Uint8Array {
  const stride = Math.ceil(rows[0].length / 4) * 4;
  const out = new Uint8Array(stride * rows.length);
  rows.forEach((row, y) => out.set(row, y * stride));
  return out;
}

const PALETTE: Rgb[] = [
  [9, 9, 9],
  [255, 0, 0],
  [0, 128, 255],
  [250, 240, 10],
];

/** 5×3 picture of palette indices, top row first; odd width exercises row padding. */
const INDICES = [
  [0, 1, 2, 3, 1],
  [3, 2, 1, 0, 2],
  [1, 1, 3, 3, 0],
];

function rgbOf(indices: number[][], palette: Rgb[]): Uint8Array {
  return Uint8Array.from(indices.flat().flatMap((i) => palette[i]));
}

function picture(width: number, height: number, channels: 3 | 4, data: Uint8Array | number[]): RawImage {
  return { width, height, channels, data: Uint8Array.from(data) };
}

/** Compares pixels, then checks that the same pixels written as PNG by sharp hash identically. */
async function assertDecodesTo(bmp: Uint8Array, expected: RawImage): Promise<void> {
  const decoded = decodeBmp(bmp);
  assert.deepEqual(
    { width: decoded.width, height: decoded.height, channels: decoded.channels },
    { width: expected.width, height: expected.height, channels: expected.channels },
  );
  assert.deepEqual(Array.from(decoded.data), Array.from(expected.data));
  const png = await sharp(expected.data, {
    raw: { width: expected.width, height: expected.height, channels: expected.channels },
  })
    .png()
    .toBuffer();
  assert.equal(pixelHash(await decodeImage(png)), pixelHash(decoded));
}

function bgrRows(indices: number[][], palette: Rgb[]): number[][] {
  return indices.map((row) => row.flatMap((i) => [palette[i][2], palette[i][1], palette[i][0]]));
}

test('24-bit bottom-up: rows reversed, BGR order, 5-pixel rows padded from 15 to 16 bytes', async () => {
  const bmp = buildBmp({
    width: 5,
    height: 3,
    bitsPerPixel: 24,
    pixels: paddedRows(bgrRows(INDICES, PALETTE).reverse()),
  });
  await assertDecodesTo(bmp, picture(5, 3, 3, rgbOf(INDICES, PALETTE)));
});

test('24-bit top-down (negative height) keeps the stored row order', async () => {
  const bmp = buildBmp({ width: 5, height: -3, bitsPerPixel: 24, pixels: paddedRows(bgrRows(INDICES, PALETTE)) });
  await assertDecodesTo(bmp, picture(5, 3, 3, rgbOf(INDICES, PALETTE)));
});

test('24-bit round trip through the project encoder', () => {
  const data = Uint8Array.from({ length: 7 * 4 * 3 }, (_, i) => (i * 29) % 256);
  const image = picture(7, 4, 3, data);
  assert.deepEqual(decodeBmp(encodeBmp24(image)), image);
});

test('8-bit paletted with a 4-entry palette (colorsUsed = 4)', async () => {
  const bmp = buildBmp({
    width: 5,
    height: 3,
    bitsPerPixel: 8,
    palette: PALETTE,
    colorsUsed: 4,
    pixels: paddedRows([...INDICES].reverse()),
  });
  await assertDecodesTo(bmp, picture(5, 3, 3, rgbOf(INDICES, PALETTE)));
});

test('8-bit paletted with colorsUsed = 0 reads all 256 entries', async () => {
  const palette: Rgb[] = Array.from({ length: 256 }, (_, i) => [i, 255 - i, (i * 7) % 256]);
  const indices = INDICES.map((row) => row.map((i) => [0, 200, 255, 17][i]));
  const bmp = buildBmp({ width: 5, height: 3, bitsPerPixel: 8, palette, pixels: paddedRows([...indices].reverse()) });
  await assertDecodesTo(bmp, picture(5, 3, 3, rgbOf(indices, palette)));
});

test('8-bit paletted with the OS/2 core header (3-byte palette entries, fewer than 256 stored)', async () => {
  const bmp = buildBmp({
    dibSize: 12,
    width: 5,
    height: 3,
    bitsPerPixel: 8,
    palette: PALETTE,
    pixels: paddedRows([...INDICES].reverse()),
  });
  await assertDecodesTo(bmp, picture(5, 3, 3, rgbOf(INDICES, PALETTE)));
});

test('4-bit paletted: high nibble first, odd pixel count leaves a half byte', async () => {
  // Stored bottom row first: [1 1 3 3 0] → 0x11 0x33 0x00, padded to 4 bytes.
  const pixels = paddedRows([
    [0x11, 0x33, 0x00],
    [0x32, 0x10, 0x20],
    [0x01, 0x23, 0x10],
  ]);
  const bmp = buildBmp({ width: 5, height: 3, bitsPerPixel: 4, palette: PALETTE, colorsUsed: 4, pixels });
  await assertDecodesTo(bmp, picture(5, 3, 3, rgbOf(INDICES, PALETTE)));
});

test('1-bit paletted: most significant bit is the leftmost pixel', async () => {
  const twoColours: Rgb[] = [
    [20, 30, 40],
    [200, 210, 220],
  ];
  const bits = [
    [1, 0, 1, 1, 0],
    [0, 0, 1, 0, 1],
  ];
  // Bottom row first: 00101 → 0b00101000, top row 10110 → 0b10110000.
  const bmp = buildBmp({
    width: 5,
    height: 2,
    bitsPerPixel: 1,
    palette: twoColours,
    pixels: paddedRows([[0b00101000], [0b10110000]]),
  });
  await assertDecodesTo(bmp, picture(5, 2, 3, rgbOf(bits, twoColours)));
});

/** 3×2 test values as 5-bit (or 6-bit green) components, top row first. */
const SIXTEEN_BIT_EXPECTED = [
  [255, 0, 0, 0, 255, 0, 0, 0, 255],
  [132, 66, 8, 255, 255, 255, 0, 0, 0],
];

function le16Rows(rows: number[][]): Uint8Array {
  return paddedRows(rows.map((row) => row.flatMap((v) => [v & 0xff, v >>> 8])));
}

test('16-bit BI_RGB is 5-5-5 with the top bit ignored; 5-bit 31 scales to 255, 16 to 132', async () => {
  const px = (r: number, g: number, b: number): number => (r << 10) | (g << 5) | b;
  const pixels = le16Rows([
    [px(16, 8, 1), px(31, 31, 31), 0x8000 | px(0, 0, 0)],
    [px(31, 0, 0), px(0, 31, 0), px(0, 0, 31)],
  ]);
  const bmp = buildBmp({ width: 3, height: 2, bitsPerPixel: 16, pixels });
  await assertDecodesTo(bmp, picture(3, 2, 3, SIXTEEN_BIT_EXPECTED.flat()));
});

test('16-bit BI_BITFIELDS 5-6-5', async () => {
  const px = (r: number, g: number, b: number): number => (r << 11) | (g << 5) | b;
  const pixels = le16Rows([
    [px(16, 32, 1), px(31, 63, 31), px(0, 1, 0)],
    [px(31, 0, 0), px(0, 63, 0), px(0, 0, 31)],
  ]);
  const bmp = buildBmp({
    width: 3,
    height: 2,
    bitsPerPixel: 16,
    compression: BI_BITFIELDS,
    masks: [0xf800, 0x07e0, 0x001f],
    pixels,
  });
  await assertDecodesTo(bmp, picture(3, 2, 3, [255, 0, 0, 0, 255, 0, 0, 0, 255, 132, 130, 8, 255, 255, 255, 0, 4, 0]));
});

test('32-bit BI_RGB ignores the fourth byte and yields RGB', async () => {
  const pixels = Uint8Array.from([
    // bottom row: BGRX
    ...[30, 20, 10, 0x7f],
    ...[0, 0, 255, 0],
    // top row
    ...[255, 255, 255, 0xff],
    ...[1, 2, 3, 0x00],
  ]);
  const bmp = buildBmp({ width: 2, height: 2, bitsPerPixel: 32, pixels });
  await assertDecodesTo(bmp, picture(2, 2, 3, [255, 255, 255, 3, 2, 1, 10, 20, 30, 255, 0, 0]));
});

test('32-bit BI_BITFIELDS in a V5 header with an alpha mask yields RGBA', async () => {
  const pixels = Uint8Array.from([
    ...[0, 0, 255, 255], // bottom-left: opaque red
    ...[255, 0, 0, 128], // half-transparent blue
    ...[0, 255, 0, 0], // transparent green
    ...[10, 20, 30, 40],
  ]);
  const bmp = buildBmp({
    dibSize: 124,
    width: 2,
    height: 2,
    bitsPerPixel: 32,
    compression: BI_BITFIELDS,
    masks: [0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000],
    pixels,
  });
  await assertDecodesTo(bmp, picture(2, 2, 4, [0, 255, 0, 0, 30, 20, 10, 40, 255, 0, 0, 255, 0, 0, 255, 128]));
});

test('32-bit bit fields in an unusual order (V4 header, RGBA from the most significant byte down)', async () => {
  // Little-endian value bytes: [A, B, G, R].
  const pixels = Uint8Array.from([...[200, 3, 2, 1], ...[255, 30, 20, 10]]);
  const bmp = buildBmp({
    dibSize: 108,
    width: 2,
    height: -1,
    bitsPerPixel: 32,
    compression: BI_BITFIELDS,
    masks: [0xff000000, 0x00ff0000, 0x0000ff00, 0x000000ff],
    pixels,
  });
  await assertDecodesTo(bmp, picture(2, 1, 4, [1, 2, 3, 200, 10, 20, 30, 255]));
});

test('BI_ALPHABITFIELDS: four masks after a 40-byte header', async () => {
  const pixels = Uint8Array.from([...[5, 6, 7, 99], ...[0, 0, 0, 255]]);
  const bmp = buildBmp({
    width: 2,
    height: 1,
    bitsPerPixel: 32,
    compression: BI_ALPHABITFIELDS,
    masks: [0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000],
    pixels,
  });
  await assertDecodesTo(bmp, picture(2, 1, 4, [7, 6, 5, 99, 0, 0, 0, 255]));
});

test('an alpha mask whose alpha is 0 everywhere means opaque: RGB out', async () => {
  const pixels = Uint8Array.from([...[5, 6, 7, 0], ...[50, 60, 70, 0]]);
  const bmp = buildBmp({
    dibSize: 124,
    width: 2,
    height: 1,
    bitsPerPixel: 32,
    compression: BI_BITFIELDS,
    masks: [0x00ff0000, 0x0000ff00, 0x000000ff, 0xff000000],
    pixels,
  });
  await assertDecodesTo(bmp, picture(2, 1, 3, [7, 6, 5, 70, 60, 50]));
});

const RLE_PALETTE: Rgb[] = Array.from({ length: 16 }, (_, i) => [i * 16 + 1, 255 - i * 16, (i * 40) % 256]);
const BLACK: Rgb = [0, 0, 0];

function rleExpected(rows: Array<Array<number | null>>): Uint8Array {
  return Uint8Array.from(rows.flat().flatMap((i) => (i === null ? BLACK : RLE_PALETTE[i])));
}

test('RLE8: runs, padded literal, early end of line, delta and end of bitmap; skipped pixels are black', async () => {
  const stream = Uint8Array.from([
    // file row 0 (bottom): two pixels of 7, then end of line
    ...[2, 7, 0, 0],
    // file row 1: literal of 3 (1, 2, 3) padded to 4 bytes, run of two 4s, end of line
    ...[0, 3, 1, 2, 3, 0, 2, 4, 0, 0],
    // file row 2 (top): move right by 1, four 5s, end of bitmap
    ...[0, 2, 1, 0, 4, 5, 0, 1],
  ]);
  const bmp = buildBmp({
    width: 5,
    height: 3,
    bitsPerPixel: 8,
    compression: BI_RLE8,
    palette: RLE_PALETTE,
    pixels: stream,
  });
  const expected = rleExpected([
    [null, 5, 5, 5, 5],
    [1, 2, 3, 4, 4],
    [7, 7, null, null, null],
  ]);
  await assertDecodesTo(bmp, picture(5, 3, 3, expected));
});

test('RLE4: runs alternate nibbles, an odd literal is padded to an even byte count', async () => {
  const stream = Uint8Array.from([
    // file row 0: run of three alternating 1 2 1, literal of 3 (15 0 9) in 2 bytes, end of line
    ...[3, 0x12, 0, 3, 0xf0, 0x90, 0, 0],
    // file row 1: literal of 5 (3 4 5 6 7) in 3 bytes + 1 pad byte, one pixel of 8, end of bitmap
    ...[0, 5, 0x34, 0x56, 0x70, 0x00, 1, 0x80, 0, 1],
  ]);
  const bmp = buildBmp({
    width: 6,
    height: 2,
    bitsPerPixel: 4,
    compression: BI_RLE4,
    palette: RLE_PALETTE,
    pixels: stream,
  });
  const expected = rleExpected([
    [3, 4, 5, 6, 7, 8],
    [1, 2, 1, 15, 0, 9],
  ]);
  await assertDecodesTo(bmp, picture(6, 2, 3, expected));
});

function assertCorrupt(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(
    () => decodeBmp(bytes),
    (error: unknown) => error instanceof ImageFormatError && error.reason === 'corrupt' && pattern.test(error.message),
  );
}

test('RLE stream that stops mid-image without end of bitmap is corrupt', () => {
  const bmp = buildBmp({
    width: 5,
    height: 3,
    bitsPerPixel: 8,
    compression: BI_RLE8,
    palette: RLE_PALETTE,
    pixels: Uint8Array.from([5, 1, 0, 0]),
  });
  assertCorrupt(bmp, /RLE8 data ends after 4 bytes, at row 2 of 3/);
});

test('truncated 24-bit file names the bytes present and needed', () => {
  const full = buildBmp({ width: 450, height: 450, bitsPerPixel: 24, pixels: new Uint8Array(1352 * 450) });
  assertCorrupt(full.subarray(0, 1024), /450×450×24 bit but the file holds 1,024 of 608,454 bytes needed/);
});

test('embedded PNG (BI_PNG) and unknown bit depths are reported as unsupported', () => {
  assertCorrupt(
    buildBmp({ width: 2, height: 2, bitsPerPixel: 0, compression: BI_PNG, pixels: new Uint8Array(16) }),
    /embedded PNG.*not supported/,
  );
  assertCorrupt(
    buildBmp({ width: 2, height: 2, bitsPerPixel: 64, pixels: new Uint8Array(32) }),
    /64 bits per pixel is not supported/,
  );
});

test('450×450 24-bit decodes in a few milliseconds', (t) => {
  const data = Uint8Array.from({ length: 450 * 450 * 3 }, (_, i) => (i * 13) % 256);
  const bmp = encodeBmp24(picture(450, 450, 3, data));
  for (let i = 0; i < 5; i++) decodeBmp(bmp);
  const times: number[] = [];
  for (let i = 0; i < 15; i++) {
    const start = performance.now();
    decodeBmp(bmp);
    times.push(performance.now() - start);
  }
  const median = times.sort((a, b) => a - b)[7];
  t.diagnostic(`median decode time ${median.toFixed(2)} ms`);
  // Generous bound: the machine is shared; a per-pixel allocation or DataView call would still blow past it.
  assert.ok(median < 25, `median ${median.toFixed(2)} ms`);
});
