import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import { decodeImage, toRgb } from '../src/core/image/decode.js';
import { hammingDistance, perceptualHash, pixelHash } from '../src/core/image/hash.js';
import type { RawImage } from '../src/core/types.js';

const SIZE = 120;

/** A textured bright disc (a "cell") on a black background. */
function cell(centreX: number, centreY: number, radius: number): RawImage {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const distance = Math.hypot(x - centreX, y - centreY);
      if (distance > radius) continue;
      const o = (y * SIZE + x) * 3;
      const texture = ((x * 7 + y * 13) % 23) * 2;
      data[o] = 150 + texture;
      data[o + 1] = 90 + (distance < radius / 2 ? 80 : 0);
      data[o + 2] = 170 - texture;
    }
  }
  return { width: SIZE, height: SIZE, channels: 3, data };
}

function stripes(): RawImage {
  const data = new Uint8Array(SIZE * SIZE * 3);
  for (let i = 0; i < SIZE * SIZE; i++) data.fill(Math.floor(i / SIZE / 15) % 2 ? 230 : 10, i * 3, i * 3 + 3);
  return { width: SIZE, height: SIZE, channels: 3, data };
}

async function png(image: RawImage): Promise<Buffer> {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels } })
    .png()
    .toBuffer();
}

test('the same pixels stored as BMP and PNG have the same pixel hash', async () => {
  const image = cell(60, 60, 35);
  const fromBmp = await decodeImage(encodeBmp24(image));
  const fromPng = await decodeImage(await png(image));
  assert.match(pixelHash(fromBmp), /^[0-9a-f]{64}$/);
  assert.equal(pixelHash(fromBmp), pixelHash(fromPng));
  assert.equal(perceptualHash(fromBmp), perceptualHash(fromPng));
});

test('grey and the equivalent RGB hash equal; so do RGBA and its composite over black', () => {
  const grey: RawImage = { width: 2, height: 1, channels: 1, data: Uint8Array.from([7, 200]) };
  const rgb: RawImage = { width: 2, height: 1, channels: 3, data: Uint8Array.from([7, 7, 7, 200, 200, 200]) };
  assert.equal(pixelHash(grey), pixelHash(rgb));

  const rgba: RawImage = {
    width: 2,
    height: 1,
    channels: 4,
    data: Uint8Array.from([200, 100, 50, 128, 255, 255, 255, 0]),
  };
  const composite = toRgb(rgba);
  assert.deepEqual(Array.from(composite.data), [100, 50, 25, 0, 0, 0]);
  assert.equal(pixelHash(rgba), pixelHash(composite));
});

test('width and height are part of the pixel hash', () => {
  const data = Uint8Array.from({ length: 12 }, (_, i) => i);
  assert.notEqual(
    pixelHash({ width: 2, height: 2, channels: 3, data }),
    pixelHash({ width: 4, height: 1, channels: 3, data }),
  );
});

test('one changed pixel changes the pixel hash but barely the perceptual hash', () => {
  const original = cell(60, 60, 35);
  const edited = { ...original, data: Uint8Array.from(original.data) };
  const o = (60 * SIZE + 60) * 3;
  edited.data[o] ^= 0xff;
  assert.notEqual(pixelHash(edited), pixelHash(original));
  assert.ok(hammingDistance(perceptualHash(edited), perceptualHash(original)) <= 2);
});

test('the perceptual hash survives resizing and ignores uniform brightness', async () => {
  const original = cell(50, 70, 30);
  const halfSize = await sharp(original.data, { raw: { width: SIZE, height: SIZE, channels: 3 } })
    .resize(SIZE / 2, SIZE / 2, { kernel: 'cubic' })
    .raw()
    .toBuffer();
  const resized: RawImage = { width: SIZE / 2, height: SIZE / 2, channels: 3, data: new Uint8Array(halfSize) };
  assert.ok(hammingDistance(perceptualHash(resized), perceptualHash(original)) <= 6);

  const brighter = { ...original, data: original.data.map((v) => v + 20) };
  assert.equal(perceptualHash(brighter), perceptualHash(original));
});

test('different pictures are far apart', (t) => {
  const reference = perceptualHash(cell(60, 60, 35));
  const movedCell = hammingDistance(perceptualHash(cell(30, 85, 20)), reference);
  const striped = hammingDistance(perceptualHash(stripes()), reference);
  t.diagnostic(`distances: moved cell ${movedCell}, stripes ${striped}`);
  assert.ok(movedCell >= 16, `moved cell distance ${movedCell}`);
  assert.ok(striped >= 16, `stripes distance ${striped}`);
});

test('perceptual hash is 16 hex digits, stable across calls, and defined for images under 32 pixels', () => {
  const tiny: RawImage = { width: 3, height: 2, channels: 1, data: Uint8Array.from([0, 50, 100, 150, 200, 250]) };
  const hash = perceptualHash(tiny);
  assert.match(hash, /^[0-9a-f]{16}$/);
  assert.equal(perceptualHash(tiny), hash);
  assert.match(perceptualHash(cell(60, 60, 35)), /^[0-9a-f]{16}$/);
});

test('hammingDistance counts differing bits and rejects mismatched hashes', () => {
  assert.equal(hammingDistance('0000000000000000', 'ffffffffffffffff'), 64);
  assert.equal(hammingDistance('8000000000000001', '0000000000000000'), 2);
  assert.equal(hammingDistance('a5a5a5a5a5a5a5a5', 'a5a5a5a5a5a5a5a5'), 0);
  assert.throws(() => hammingDistance('00', '000'), /different lengths/);
  assert.throws(() => hammingDistance('0g', '00'), /Not a hex hash/);
});
