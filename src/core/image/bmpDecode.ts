import type { RawImage } from '../types.js';
import {
  checkPixelLimit,
  countTrailingZeros,
  DEFAULT_MAX_PIXELS,
  formatCount,
  ImageFormatError,
  readBmpLayout,
  type BmpLayout,
} from './header.js';

/**
 * Decodes the BMP variants that exist in practice: 1/2/4/8-bit paletted, RLE8, RLE4, 16-bit (5-5-5 or bit fields),
 * 24-bit and 32-bit (BI_RGB or bit fields), stored bottom-up or top-down.
 *
 * The result is RGB, or RGBA when the file declares an alpha mask and at least one pixel is not fully transparent:
 * writers that leave the alpha byte at 0 everywhere mean "opaque", not "invisible".
 * Pixels an RLE stream skips over (delta and early end-of-line codes) are black, as if transparent over black.
 * Images declaring more than `maxPixels` are refused before the output is allocated (RLE makes tiny files huge).
 */
export function decodeBmp(bytes: Uint8Array, maxPixels: number = DEFAULT_MAX_PIXELS): RawImage {
  const layout = readBmpLayout(bytes, bytes.length);
  const { width, height } = layout;
  checkPixelLimit({ format: 'bmp', width, height, channels: layout.channels }, maxPixels);
  const out = new Uint8Array(width * height * layout.channels);
  if (layout.compression === 'rle8' || layout.compression === 'rle4') {
    decodeRle(bytes, layout, readPalette(bytes, layout), out);
  } else if (layout.bitsPerPixel <= 8) {
    decodePaletted(bytes, layout, readPalette(bytes, layout), out);
  } else if (layout.bitsPerPixel === 24) {
    decodeBgr24(bytes, layout, out);
  } else {
    decodeMasked(bytes, layout, out);
    if (layout.channels === 4 && isAlphaAllZero(out)) return { width, height, channels: 3, data: dropAlpha(out) };
  }
  return { width, height, channels: layout.channels, data: out };
}

/** Row `fileRow` of the pixel array (0 = first stored) lands on this output row. */
function outputRow(layout: BmpLayout, fileRow: number): number {
  return layout.topDown ? fileRow : layout.height - 1 - fileRow;
}

/** RGB triples for every possible index; indices beyond the stored palette read as black. */
function readPalette(bytes: Uint8Array, layout: BmpLayout): Uint8Array {
  const palette = new Uint8Array(256 * 3);
  const { offset, entries, entryBytes } = layout.palette!;
  for (let i = 0; i < entries; i++) {
    const at = offset + i * entryBytes;
    palette[i * 3] = bytes[at + 2];
    palette[i * 3 + 1] = bytes[at + 1];
    palette[i * 3 + 2] = bytes[at];
  }
  return palette;
}

function decodePaletted(bytes: Uint8Array, layout: BmpLayout, palette: Uint8Array, out: Uint8Array): void {
  const { width, height, bitsPerPixel: bits, rowStride, pixelOffset } = layout;
  const indexMask = (1 << bits) - 1;
  for (let fileRow = 0; fileRow < height; fileRow++) {
    const rowStart = pixelOffset + fileRow * rowStride;
    let o = outputRow(layout, fileRow) * width * 3;
    for (let x = 0; x < width; x++) {
      const bitPosition = x * bits;
      // Leftmost pixel sits in the most significant bits of its byte.
      const index = (bytes[rowStart + (bitPosition >>> 3)] >>> (8 - bits - (bitPosition & 7))) & indexMask;
      const p = index * 3;
      out[o++] = palette[p];
      out[o++] = palette[p + 1];
      out[o++] = palette[p + 2];
    }
  }
}

function decodeBgr24(bytes: Uint8Array, layout: BmpLayout, out: Uint8Array): void {
  const { width, height, rowStride, pixelOffset } = layout;
  const rowBytes = width * 3;
  for (let fileRow = 0; fileRow < height; fileRow++) {
    const s = pixelOffset + fileRow * rowStride;
    const o = outputRow(layout, fileRow) * rowBytes;
    // Copy the row as is, then swap blue and red in place: fewer byte loads and stores than a per-channel copy.
    out.set(bytes.subarray(s, s + rowBytes), o);
    for (let i = o, end = o + rowBytes; i < end; i += 3) {
      const blue = out[i];
      out[i] = out[i + 2];
      out[i + 2] = blue;
    }
  }
}

/**
 * Extracts one colour field from a pixel value and scales it to 0–255: fields wider than 8 bits keep their top
 * 8 bits, narrower ones go through a table so that all-ones maps to 255 (5-bit 31 → 255, not 248).
 */
interface FieldReader {
  shift: number;
  mask: number;
  scale: Uint8Array;
}

function fieldReader(mask: number): FieldReader {
  if (mask === 0) return { shift: 0, mask: 0, scale: new Uint8Array([0]) };
  const low = countTrailingZeros(mask);
  const bits = 32 - Math.clz32(mask >>> low);
  const kept = Math.min(bits, 8);
  const max = (1 << kept) - 1;
  const scale = new Uint8Array(max + 1);
  for (let v = 0; v <= max; v++) scale[v] = Math.round((v * 255) / max);
  return { shift: low + bits - kept, mask: max, scale };
}

function decodeMasked(bytes: Uint8Array, layout: BmpLayout, out: Uint8Array): void {
  const { width, height, rowStride, pixelOffset, channels } = layout;
  const masks = layout.masks!;
  const bytesPerPixel = layout.bitsPerPixel >>> 3;
  const red = fieldReader(masks.red);
  const green = fieldReader(masks.green);
  const blue = fieldReader(masks.blue);
  const alpha = fieldReader(masks.alpha);
  for (let fileRow = 0; fileRow < height; fileRow++) {
    let s = pixelOffset + fileRow * rowStride;
    let o = outputRow(layout, fileRow) * width * channels;
    for (let x = 0; x < width; x++) {
      const value =
        bytesPerPixel === 4
          ? (bytes[s] | (bytes[s + 1] << 8) | (bytes[s + 2] << 16) | (bytes[s + 3] << 24)) >>> 0
          : bytes[s] | (bytes[s + 1] << 8);
      s += bytesPerPixel;
      out[o++] = red.scale[(value >>> red.shift) & red.mask];
      out[o++] = green.scale[(value >>> green.shift) & green.mask];
      out[o++] = blue.scale[(value >>> blue.shift) & blue.mask];
      if (channels === 4) out[o++] = alpha.scale[(value >>> alpha.shift) & alpha.mask];
    }
  }
}

function isAlphaAllZero(rgba: Uint8Array): boolean {
  for (let i = 3; i < rgba.length; i += 4) if (rgba[i] !== 0) return false;
  return true;
}

function dropAlpha(rgba: Uint8Array): Uint8Array {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let s = 0, o = 0; s < rgba.length; s += 4) {
    rgb[o++] = rgba[s];
    rgb[o++] = rgba[s + 1];
    rgb[o++] = rgba[s + 2];
  }
  return rgb;
}

/**
 * BI_RLE8 / BI_RLE4 (always bottom-up). Each 2-byte code is either a run (count, value) or an escape:
 * 0 0 end of line, 0 1 end of bitmap, 0 2 dx dy move, 0 n literal of n pixels padded to an even byte count.
 * RLE4 values hold two alternating 4-bit indices, high nibble first.
 */
function decodeRle(bytes: Uint8Array, layout: BmpLayout, palette: Uint8Array, out: Uint8Array): void {
  const { width, height } = layout;
  const isRle4 = layout.compression === 'rle4';
  const end = Math.min(bytes.length, layout.pixelOffset + layout.pixelBytes);
  let pos = layout.pixelOffset;
  let x = 0;
  let fileRow = 0;

  const put = (index: number): void => {
    if (x < width && fileRow < height) {
      const o = (outputRow(layout, fileRow) * width + x) * 3;
      const p = index * 3;
      out[o] = palette[p];
      out[o + 1] = palette[p + 1];
      out[o + 2] = palette[p + 2];
    }
    x++;
  };
  const truncated = (): ImageFormatError =>
    new ImageFormatError(
      'corrupt',
      `BMP ${layout.compression.toUpperCase()} data ends after ${formatCount(end - layout.pixelOffset)} bytes, ` +
        `at row ${fileRow + 1} of ${height}, without an end-of-bitmap code`,
    );

  while (fileRow < height) {
    if (pos + 2 > end) throw truncated();
    const count = bytes[pos];
    const value = bytes[pos + 1];
    pos += 2;
    if (count > 0) {
      for (let i = 0; i < count; i++) put(isRle4 ? (i & 1 ? value & 0x0f : value >>> 4) : value);
    } else if (value === 0) {
      x = 0;
      fileRow++;
    } else if (value === 1) {
      return;
    } else if (value === 2) {
      if (pos + 2 > end) throw truncated();
      x += bytes[pos];
      fileRow += bytes[pos + 1];
      pos += 2;
    } else {
      const literalBytes = isRle4 ? (value + 1) >>> 1 : value;
      if (pos + literalBytes > end) throw truncated();
      for (let i = 0; i < value; i++) {
        const byte = bytes[pos + (isRle4 ? i >>> 1 : i)];
        put(isRle4 ? (i & 1 ? byte & 0x0f : byte >>> 4) : byte);
      }
      pos += literalBytes + (literalBytes & 1);
    }
  }
}
