import { readFile } from 'node:fs/promises';
import type { RawImage } from '../types.js';
import { decodeBmp } from './bmpDecode.js';
import { checkPixelLimit, DEFAULT_MAX_PIXELS, FORMAT_NAMES, ImageFormatError, readImageHeader } from './header.js';

type Sharp = typeof import('sharp');
let sharpModule: Sharp | undefined;

/**
 * sharp is loaded on first use: a BMP-only dataset (C-NMC) never pays for starting libvips, and BMP decoding still
 * works where sharp's native binary is missing. `require`, not `import()`: the bundles are CommonJS and esbuild
 * would leave a dynamic import as a real ESM import for the extension host to resolve.
 */
export function loadSharp(): Sharp {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- see above: a lazy require keeps the bundles CommonJS
  sharpModule ??= require('sharp') as Sharp;
  return sharpModule;
}

export interface DecodeOptions {
  /** Refuse images that declare more pixels than this (default `DEFAULT_MAX_PIXELS`), before allocating any. */
  maxPixels?: number;
}

/**
 * Decodes an image to 8-bit interleaved pixels with the channels the file stores: grey stays 1 channel, RGB 3,
 * RGBA 4. Grey+alpha becomes RGBA, because `RawImage` has no 2-channel form and the alpha matters to `toRgb`.
 * Palette and CMYK images come out as RGB, 16-bit samples are reduced to 8. Multi-page files yield their first page.
 * EXIF orientation is not applied: a dataset's pixels are compared as stored. sharp's default `failOn: 'warning'`
 * stays, so a truncated PNG or JPEG is an error rather than an image with a grey bottom.
 * The pixel limit is checked on our own header reading and passed to sharp as `limitInputPixels`, which checks the
 * dimensions libvips itself reads (a TIFF page or JPEG frame our header reader did not look at).
 */
export async function decodeImage(bytes: Uint8Array, options: DecodeOptions = {}): Promise<RawImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  const header = readImageHeader(bytes);
  checkPixelLimit(header, maxPixels);
  if (header.format === 'bmp') return decodeBmp(bytes, maxPixels);
  const sharp = loadSharp();
  let pipeline = sharp(bytes, { limitInputPixels: Math.max(1, Math.floor(maxPixels)) });
  // sharp converts to sRGB on output; a grey file would otherwise come back as three equal channels.
  if (header.channels === 1) pipeline = pipeline.toColourspace('b-w');
  let decoded: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    decoded = await pipeline.raw().toBuffer({ resolveWithObject: true });
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    throw new ImageFormatError('corrupt', `${FORMAT_NAMES[header.format]} could not be decoded: ${reason}`, {
      cause: error,
    });
  }
  const { data, info } = decoded;
  const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const { width, height } = info;
  switch (info.channels) {
    case 1:
    case 3:
    case 4:
      return { width, height, channels: info.channels, data: pixels };
    case 2:
      return { width, height, channels: 4, data: greyAlphaToRgba(pixels) };
    default:
      throw new ImageFormatError('corrupt', `${FORMAT_NAMES[header.format]} decoded to ${info.channels} channels`);
  }
}

/** Reads and decodes a file; format errors name the file. */
export async function readImageFile(filePath: string, options: DecodeOptions = {}): Promise<RawImage> {
  const bytes = await readFile(filePath);
  try {
    return await decodeImage(bytes, options);
  } catch (error) {
    if (error instanceof ImageFormatError) {
      throw new ImageFormatError(error.reason, `${filePath}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

/**
 * Returns 3-channel RGB; the input itself when it already is. Alpha is composited over black because the cells in
 * these datasets are segmented onto a black background, so transparent means background.
 */
export function toRgb(image: RawImage): RawImage {
  const { width, height, channels, data } = image;
  if (channels === 3) return image;
  const rgb = new Uint8Array(width * height * 3);
  if (channels === 1) {
    for (let s = 0, o = 0; s < data.length; s++) {
      const grey = data[s];
      rgb[o++] = grey;
      rgb[o++] = grey;
      rgb[o++] = grey;
    }
  } else {
    for (let s = 0, o = 0; s < data.length; s += 4) {
      const alpha = data[s + 3];
      // (c·a + 127) / 255 rounds to nearest exactly: c·a/255 never ends in .5 because 255 is odd.
      rgb[o++] = ((data[s] * alpha + 127) / 255) | 0;
      rgb[o++] = ((data[s + 1] * alpha + 127) / 255) | 0;
      rgb[o++] = ((data[s + 2] * alpha + 127) / 255) | 0;
    }
  }
  return { width, height, channels: 3, data: rgb };
}

function greyAlphaToRgba(greyAlpha: Uint8Array): Uint8Array {
  const rgba = new Uint8Array(greyAlpha.length * 2);
  for (let s = 0, o = 0; s < greyAlpha.length; s += 2) {
    const grey = greyAlpha[s];
    rgba[o++] = grey;
    rgba[o++] = grey;
    rgba[o++] = grey;
    rgba[o++] = greyAlpha[s + 1];
  }
  return rgba;
}
