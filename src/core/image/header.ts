import type { FileHandle } from 'node:fs/promises';
import type { ImageFormat, ImageHeader } from '../types.js';

/**
 * Header-only reading of BMP, PNG, JPEG, TIFF and WebP files: format, size and channel count without decoding
 * pixels, so a scan of tens of thousands of files touches only their first few KiB.
 */

export type ImageFormatErrorReason = 'not-an-image' | 'corrupt' | 'too-large';

/** The bytes are not an image, or are an image whose structure is broken or uses a variant we cannot read. */
export class ImageFormatError extends Error {
  override name = 'ImageFormatError';
  constructor(
    readonly reason: ImageFormatErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * Thrown when `readImageHeader` was given a prefix of a longer file and the header continues past the prefix
 * (a JPEG frame header behind a large EXIF segment, a TIFF directory stored at the end of the file).
 */
export class IncompleteHeaderError extends Error {
  override name = 'IncompleteHeaderError';
  constructor(readonly bytesNeeded: number) {
    super(`the image header continues past the first ${bytesNeeded} bytes read`);
  }
}

export const FORMAT_NAMES: Readonly<Record<ImageFormat, string>> = {
  bmp: 'BMP',
  png: 'PNG',
  jpeg: 'JPEG',
  tiff: 'TIFF',
  webp: 'WebP',
};

/**
 * Most pixels an image may declare before it is decoded (50 megapixels: a 7,000 × 7,000 slide tile; C-NMC cells are
 * 0.2). A 62-byte RLE BMP or a small PNG can declare 8192² pixels and take gigabytes once decoded.
 */
export const DEFAULT_MAX_PIXELS = 50_000_000;

/** Throws `too-large` when the header declares more than `maxPixels` pixels; call it before allocating any. */
export function checkPixelLimit(header: ImageHeader, maxPixels: number = DEFAULT_MAX_PIXELS): void {
  const pixels = header.width * header.height;
  if (pixels <= maxPixels) return;
  const megapixels = (n: number) => `${(n / 1e6).toLocaleString('en-US', { maximumFractionDigits: 1 })} Mpx`;
  throw new ImageFormatError(
    'too-large',
    `${FORMAT_NAMES[header.format]} declares ${formatCount(header.width)}×${formatCount(header.height)} pixels ` +
      `(${megapixels(pixels)}), over the limit of ${megapixels(maxPixels)}, so it was not decoded`,
  );
}

const thousands = new Intl.NumberFormat('en-US');
export function formatCount(n: number): string {
  return thousands.format(n);
}

/** DIB header sizes that occur in the wild; checking it keeps text files that start with "BM" out. */
const BMP_DIB_HEADER_SIZES = new Set([12, 16, 40, 52, 56, 64, 108, 124]);

export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  const b = bytes;
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) {
    if (b.length < 18) return 'bmp'; // too short to judge: let the header reader call it truncated
    const dibSize = b[14] | (b[15] << 8) | (b[16] << 16) | (b[17] << 24);
    return BMP_DIB_HEADER_SIZES.has(dibSize) ? 'bmp' : undefined;
  }
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(b, [0x49, 0x49, 0x2b, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff'; // BigTIFF
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  return undefined;
}

/**
 * Reads format, width, height and stored channel count from the start of an image file.
 *
 * `fileSize` is the length of the whole file when `bytes` is only its beginning. With a prefix, a header that runs
 * past it throws `IncompleteHeaderError` (read more and call again); with the whole file, it is corrupt.
 * `channels` follows `ImageHeader`: CMYK and palette images count as 3 (4 with alpha) because they decode to RGB.
 */
export function readImageHeader(bytes: Uint8Array, fileSize: number = bytes.length): ImageHeader {
  const format = sniffFormat(bytes);
  if (format === undefined) {
    throw new ImageFormatError(
      'not-an-image',
      `The content is not a BMP, PNG, JPEG, TIFF or WebP image (it starts with ${describeStart(bytes)})`,
    );
  }
  if (format === 'bmp') {
    const layout = readBmpLayout(bytes, fileSize);
    return { format, width: layout.width, height: layout.height, channels: layout.channels };
  }
  const reader = new HeaderReader(bytes, fileSize, FORMAT_NAMES[format]);
  switch (format) {
    case 'png':
      return { format, ...readPngHeader(reader) };
    case 'jpeg':
      return { format, ...readJpegHeader(reader) };
    case 'tiff':
      return { format, ...readTiffHeader(reader) };
    case 'webp':
      return { format, ...readWebpHeader(reader) };
  }
}

const FIRST_READ_BYTES = 4096;

/** Reads just enough of an open file for `readImageHeader`: one page, more only when the header asks for it. */
export async function readFileImageHeader(handle: FileHandle, fileSize: number): Promise<ImageHeader> {
  let prefix = new Uint8Array(Math.min(fileSize, FIRST_READ_BYTES));
  let filled = await readInto(handle, prefix, 0);
  for (;;) {
    // A file that shrank since it was stat'ed is judged by what is there now.
    const knownSize = filled < prefix.length ? filled : fileSize;
    try {
      return readImageHeader(prefix.subarray(0, filled), knownSize);
    } catch (error) {
      if (!(error instanceof IncompleteHeaderError)) throw error;
      const grown = new Uint8Array(Math.min(fileSize, Math.max(error.bytesNeeded, prefix.length * 8)));
      grown.set(prefix);
      prefix = grown;
      filled = await readInto(handle, prefix, filled);
    }
  }
}

async function readInto(handle: FileHandle, target: Uint8Array, from: number): Promise<number> {
  let filled = from;
  while (filled < target.length) {
    const { bytesRead } = await handle.read(target, filled, target.length - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled;
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  if (bytes.length < magic.length) return false;
  return magic.every((value, i) => bytes[i] === value);
}

function ascii(bytes: Uint8Array, offset: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(offset, offset + length));
}

function describeStart(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 8);
  if (head.length === 0) return 'nothing: it is empty';
  const printable = head.every((c) => (c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d);
  if (printable) return JSON.stringify(String.fromCharCode(...head));
  return `bytes ${Array.from(head, (c) => c.toString(16).padStart(2, '0')).join(' ')}`;
}

/** Bounds-checked reads that know whether running out of bytes means "read more" or "truncated file". */
class HeaderReader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly fileSize: number,
    readonly formatName: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** `purpose` completes "the file ends … before its …". */
  require(end: number, purpose: string): void {
    if (end <= this.bytes.length) return;
    if (this.bytes.length < this.fileSize && end <= this.fileSize) throw new IncompleteHeaderError(end);
    throw this.corrupt(`${this.formatName} file ends after ${formatCount(this.fileSize)} bytes, before its ${purpose}`);
  }

  corrupt(message: string): ImageFormatError {
    return new ImageFormatError('corrupt', message);
  }

  u8(offset: number, purpose: string): number {
    this.require(offset + 1, purpose);
    return this.bytes[offset];
  }
  u16(offset: number, littleEndian: boolean, purpose: string): number {
    this.require(offset + 2, purpose);
    return this.view.getUint16(offset, littleEndian);
  }
  u32(offset: number, littleEndian: boolean, purpose: string): number {
    this.require(offset + 4, purpose);
    return this.view.getUint32(offset, littleEndian);
  }
  i32(offset: number, littleEndian: boolean, purpose: string): number {
    this.require(offset + 4, purpose);
    return this.view.getInt32(offset, littleEndian);
  }
  u64(offset: number, littleEndian: boolean, purpose: string): number {
    this.require(offset + 8, purpose);
    const value = this.view.getBigUint64(offset, littleEndian);
    if (value > BigInt(Number.MAX_SAFE_INTEGER))
      throw this.corrupt(`${this.formatName} ${purpose} holds an impossible offset`);
    return Number(value);
  }
  text(offset: number, length: number, purpose: string): string {
    this.require(offset + length, purpose);
    return ascii(this.bytes, offset, length);
  }
}

type Dimensions = Omit<ImageHeader, 'format'>;

// ---------------------------------------------------------------------------------------------------------------
// BMP

export type BmpCompression = 'rgb' | 'rle8' | 'rle4' | 'bitfields';

export interface BmpChannelMasks {
  red: number;
  green: number;
  blue: number;
  /** 0 when the file has no alpha channel. */
  alpha: number;
}

/** Everything `decodeBmp` needs, validated against the file size. */
export interface BmpLayout {
  width: number;
  /** Always positive; `topDown` carries the sign the file stores. */
  height: number;
  topDown: boolean;
  bitsPerPixel: number;
  compression: BmpCompression;
  pixelOffset: number;
  /** Bytes of pixel data: stride × height when uncompressed, the RLE stream length when compressed. */
  pixelBytes: number;
  /** Bytes per stored row, padded to 4; meaningful for uncompressed data only. */
  rowStride: number;
  /** For 16- and 32-bit pixels (defaults filled in for BI_RGB). */
  masks: BmpChannelMasks | undefined;
  /** For 1- to 8-bit pixels. */
  palette: { offset: number; entries: number; entryBytes: 3 | 4 } | undefined;
  channels: 3 | 4;
}

const BI_RGB = 0;
const BI_RLE8 = 1;
const BI_RLE4 = 2;
const BI_BITFIELDS = 3;
const BI_JPEG = 4;
const BI_PNG = 5;
const BI_ALPHABITFIELDS = 6;

const DEFAULT_MASKS: Readonly<Record<number, BmpChannelMasks>> = {
  16: { red: 0x7c00, green: 0x03e0, blue: 0x001f, alpha: 0 }, // 5-5-5, top bit unused
  32: { red: 0x00ff0000, green: 0x0000ff00, blue: 0x000000ff, alpha: 0 }, // the fourth byte is unused under BI_RGB
};

/**
 * Parses the BMP file header and DIB header (BITMAPCOREHEADER, OS/2 2.x, BITMAPINFOHEADER and its V2–V5
 * extensions), checks that the pixel data fits in `fileSize`, and rejects variants we cannot decode.
 */
export function readBmpLayout(bytes: Uint8Array, fileSize: number = bytes.length): BmpLayout {
  const r = new HeaderReader(bytes, fileSize, 'BMP');
  const le = true;
  const pixelOffset = r.u32(10, le, 'file header');
  const dibSize = r.u32(14, le, 'DIB header');
  if (!BMP_DIB_HEADER_SIZES.has(dibSize)) throw r.corrupt(`BMP has a DIB header of unknown size ${dibSize}`);
  r.require(14 + dibSize, 'DIB header');

  const isCore = dibSize === 12;
  const width = isCore ? r.u16(18, le, 'DIB header') : r.i32(18, le, 'DIB header');
  const signedHeight = isCore ? r.u16(20, le, 'DIB header') : r.i32(22, le, 'DIB header');
  const planes = isCore ? r.u16(22, le, 'DIB header') : r.u16(26, le, 'DIB header');
  const bitsPerPixel = isCore ? r.u16(24, le, 'DIB header') : r.u16(28, le, 'DIB header');
  // OS/2 2.x headers may stop early; absent fields are zero.
  const field = (offset: number): number => (14 + dibSize >= offset + 4 ? r.u32(offset, le, 'DIB header') : 0);
  const compressionCode = isCore ? BI_RGB : field(30);
  const declaredImageSize = isCore ? 0 : field(34);
  const colorsUsed = isCore ? 0 : field(46);

  if (width <= 0 || signedHeight === 0 || signedHeight === -2147483648) {
    throw r.corrupt(`BMP header gives an impossible size of ${width}×${signedHeight} pixels`);
  }
  if (planes !== 1) throw r.corrupt(`BMP header says ${planes} colour planes; only 1 is valid`);
  const height = Math.abs(signedHeight);
  const topDown = signedHeight < 0;

  const isOs2v2 = dibSize === 16 || dibSize === 64;
  const compression = bmpCompression(compressionCode, bitsPerPixel, isOs2v2, r);
  if (topDown && (compression === 'rle8' || compression === 'rle4')) {
    throw r.corrupt('BMP is stored top-down and RLE-compressed, which the format does not allow');
  }
  if (![1, 2, 4, 8, 16, 24, 32].includes(bitsPerPixel)) {
    throw r.corrupt(`BMP with ${bitsPerPixel} bits per pixel is not supported`);
  }
  if (isCore && bitsPerPixel > 8 && bitsPerPixel !== 24) {
    throw r.corrupt(`BMP core header with ${bitsPerPixel} bits per pixel is not valid`);
  }

  let masksEnd = 14 + dibSize;
  let masks: BmpChannelMasks | undefined;
  if (compression === 'bitfields') {
    if (dibSize >= 52) {
      masks = {
        red: r.u32(54, le, 'colour masks'),
        green: r.u32(58, le, 'colour masks'),
        blue: r.u32(62, le, 'colour masks'),
        alpha: dibSize >= 56 ? r.u32(66, le, 'colour masks') : 0,
      };
    } else {
      const withAlpha = compressionCode === BI_ALPHABITFIELDS;
      masks = {
        red: r.u32(masksEnd, le, 'colour masks'),
        green: r.u32(masksEnd + 4, le, 'colour masks'),
        blue: r.u32(masksEnd + 8, le, 'colour masks'),
        alpha: withAlpha ? r.u32(masksEnd + 12, le, 'colour masks') : 0,
      };
      masksEnd += withAlpha ? 16 : 12;
    }
    validateMasks(masks, bitsPerPixel, r);
  } else if (bitsPerPixel === 16 || bitsPerPixel === 32) {
    masks = DEFAULT_MASKS[bitsPerPixel];
  }

  const headerEnd = masksEnd;
  if (pixelOffset < 14 + dibSize) {
    throw r.corrupt(`BMP pixel data offset ${pixelOffset} points inside the ${14 + dibSize}-byte header`);
  }

  let palette: BmpLayout['palette'];
  if (bitsPerPixel <= 8) {
    const entryBytes = isCore ? 3 : 4;
    const maxEntries = 1 << bitsPerPixel;
    const declared = colorsUsed === 0 ? maxEntries : Math.min(colorsUsed, maxEntries);
    // Some writers declare a full palette but store fewer entries before the pixels; use what is there.
    const room = Math.floor((pixelOffset - headerEnd) / entryBytes);
    const entries = Math.min(declared, room);
    if (entries < 1) throw r.corrupt(`BMP with ${bitsPerPixel} bits per pixel has no room for its colour palette`);
    palette = { offset: headerEnd, entries, entryBytes };
  }

  const rowStride = Math.floor((bitsPerPixel * width + 31) / 32) * 4;
  const isRle = compression === 'rle8' || compression === 'rle4';
  const pixelBytes = isRle ? declaredImageSize || Math.max(0, fileSize - pixelOffset) : rowStride * height;
  const needed = pixelOffset + pixelBytes;
  if (needed > fileSize) {
    const kind = isRle ? ` ${compression.toUpperCase()}` : '';
    throw r.corrupt(
      `BMP header says ${width}×${height}×${bitsPerPixel} bit${kind} but the file holds ` +
        `${formatCount(fileSize)} of ${formatCount(needed)} bytes needed`,
    );
  }
  if (isRle && pixelBytes < 2) throw r.corrupt('BMP has no RLE-compressed pixel data');

  return {
    width,
    height,
    topDown,
    bitsPerPixel,
    compression,
    pixelOffset,
    pixelBytes,
    rowStride,
    masks,
    palette,
    channels: masks !== undefined && masks.alpha !== 0 ? 4 : 3,
  };
}

function bmpCompression(code: number, bitsPerPixel: number, isOs2v2: boolean, r: HeaderReader): BmpCompression {
  if (isOs2v2 && (code === 3 || code === 4)) {
    throw r.corrupt(`OS/2 BMP with ${code === 3 ? 'Huffman' : 'RLE24'} compression is not supported`);
  }
  switch (code) {
    case BI_RGB:
      return 'rgb';
    case BI_RLE8:
      if (bitsPerPixel !== 8) throw r.corrupt(`BMP says RLE8 compression with ${bitsPerPixel} bits per pixel`);
      return 'rle8';
    case BI_RLE4:
      if (bitsPerPixel !== 4) throw r.corrupt(`BMP says RLE4 compression with ${bitsPerPixel} bits per pixel`);
      return 'rle4';
    case BI_BITFIELDS:
    case BI_ALPHABITFIELDS:
      if (bitsPerPixel !== 16 && bitsPerPixel !== 32) {
        throw r.corrupt(
          `BMP says bit-field compression with ${bitsPerPixel} bits per pixel; only 16 and 32 are supported`,
        );
      }
      return 'bitfields';
    case BI_JPEG:
      throw r.corrupt('BMP with an embedded JPEG (BI_JPEG) is not supported');
    case BI_PNG:
      throw r.corrupt('BMP with an embedded PNG (BI_PNG) is not supported');
    default:
      throw r.corrupt(`BMP compression type ${code} is not supported`);
  }
}

function validateMasks(masks: BmpChannelMasks, bitsPerPixel: number, r: HeaderReader): void {
  const limit = bitsPerPixel === 32 ? 0xffffffff : (1 << bitsPerPixel) - 1;
  for (const [channel, mask] of Object.entries(masks)) {
    if (mask === 0) continue;
    const shifted = mask >>> countTrailingZeros(mask);
    // A contiguous run of ones plus one is a power of two.
    const contiguous = ((shifted + 1) & shifted) === 0;
    if (mask > limit || !contiguous) {
      throw r.corrupt(
        `BMP ${channel} mask 0x${mask.toString(16)} is not a contiguous field of a ${bitsPerPixel}-bit pixel`,
      );
    }
  }
  if (masks.red === 0 && masks.green === 0 && masks.blue === 0) throw r.corrupt('BMP colour masks are all zero');
}

export function countTrailingZeros(value: number): number {
  return value === 0 ? 32 : 31 - Math.clz32(value & -value);
}

// ---------------------------------------------------------------------------------------------------------------
// PNG

const PNG_CHANNELS: Readonly<Record<number, { channels: number; depths: readonly number[] }>> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 3, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

function readPngHeader(r: HeaderReader): Dimensions {
  const be = false;
  r.require(16, 'IHDR chunk');
  const firstLength = r.u32(8, be, 'IHDR chunk');
  if (r.text(12, 4, 'IHDR chunk') !== 'IHDR') throw r.corrupt('PNG signature but no IHDR chunk');
  if (firstLength !== 13) throw r.corrupt(`PNG IHDR chunk is ${firstLength} bytes long instead of 13`);
  r.require(33, 'IHDR chunk');
  if (crc32(r.bytes.subarray(12, 29)) !== r.u32(29, be, 'IHDR chunk')) {
    throw r.corrupt('PNG IHDR chunk fails its checksum');
  }
  const width = r.u32(16, be, 'IHDR chunk');
  const height = r.u32(20, be, 'IHDR chunk');
  const bitDepth = r.u8(24, 'IHDR chunk');
  const colourType = r.u8(25, 'IHDR chunk');
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) {
    throw r.corrupt(`PNG IHDR gives an impossible size of ${width}×${height} pixels`);
  }
  const kind = PNG_CHANNELS[colourType];
  if (kind === undefined || !kind.depths.includes(bitDepth)) {
    throw r.corrupt(`PNG IHDR has an invalid colour type ${colourType} with bit depth ${bitDepth}`);
  }
  const canHaveTransparencyChunk = colourType === 0 || colourType === 2 || colourType === 3;
  const channels = canHaveTransparencyChunk && hasPngTransparency(r) ? kind.channels + 1 : kind.channels;
  return { width, height, channels };
}

/** A tRNS chunk before the first IDAT gives grey, RGB and palette images an alpha channel when decoded. */
function hasPngTransparency(r: HeaderReader): boolean {
  let offset = 33;
  for (;;) {
    const length = r.u32(offset, false, 'image data');
    const type = r.text(offset + 4, 4, 'image data');
    if (type === 'tRNS') return true;
    if (type === 'IDAT' || type === 'IEND') return false;
    if (length > 0x7fffffff) throw r.corrupt(`PNG chunk ${JSON.stringify(type)} claims an impossible length`);
    offset += 12 + length;
  }
}

let crcTable: Uint32Array | undefined;
/** CRC-32 as PNG uses it; zlib.crc32 needs Node 20.15, newer than some VS Code hosts. */
function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------------------------
// JPEG

function isStartOfFrame(marker: number): boolean {
  // C4 (DHT), C8 (reserved) and CC (DAC) share the range but are not frame headers.
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function readJpegHeader(r: HeaderReader): Dimensions {
  const be = false;
  const purpose = 'frame header (SOF)';
  let offset = 2;
  for (;;) {
    if (r.u8(offset, purpose) !== 0xff) {
      throw r.corrupt(`JPEG has stray data at byte ${formatCount(offset)} where a marker should start`);
    }
    while (r.u8(offset + 1, purpose) === 0xff) offset++; // fill bytes may pad any marker
    const marker = r.u8(offset + 1, purpose);
    offset += 2;
    const isStandalone = marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8);
    if (isStandalone) continue;
    if (marker === 0xd9) throw r.corrupt('JPEG ends (EOI marker) before any frame header');
    if (marker === 0xda) throw r.corrupt('JPEG scan data starts before any frame header');
    if (marker === 0x00) throw r.corrupt(`JPEG has an invalid marker at byte ${formatCount(offset - 2)}`);
    const length = r.u16(offset, be, purpose);
    if (length < 2)
      throw r.corrupt(`JPEG segment at byte ${formatCount(offset - 2)} has an impossible length ${length}`);
    if (isStartOfFrame(marker)) {
      const height = r.u16(offset + 3, be, purpose);
      const width = r.u16(offset + 5, be, purpose);
      const components = r.u8(offset + 7, purpose);
      if (height === 0) throw r.corrupt('JPEG defers its height to a DNL marker, which is not supported');
      if (width === 0) throw r.corrupt('JPEG frame header gives a width of 0');
      // 3 = YCbCr or RGB, 4 = CMYK or YCCK (decoded to RGB).
      if (components === 1) return { width, height, channels: 1 };
      if (components === 3 || components === 4) return { width, height, channels: 3 };
      throw r.corrupt(`JPEG with ${components} colour components is not supported`);
    }
    offset += length;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// TIFF

const TIFF_IMAGE_WIDTH = 256;
const TIFF_IMAGE_LENGTH = 257;
const TIFF_PHOTOMETRIC = 262;
const TIFF_SAMPLES_PER_PIXEL = 277;

const PHOTOMETRIC_WHITE_IS_ZERO = 0;
const PHOTOMETRIC_BLACK_IS_ZERO = 1;
const PHOTOMETRIC_SEPARATED = 5; // usually CMYK

function readTiffHeader(r: HeaderReader): Dimensions {
  const le = r.bytes[0] === 0x49;
  const big = r.u16(2, le, 'first directory') === 43;
  // Classic TIFF: 2-byte entry count, 12-byte entries with 4-byte values; BigTIFF: 8, 20 and 8.
  const firstDirectory = big ? r.u64(8, le, 'first directory') : r.u32(4, le, 'first directory');
  if (firstDirectory < 8) throw r.corrupt(`TIFF first directory offset ${firstDirectory} points inside the header`);
  const countBytes = big ? 8 : 2;
  const entryBytes = big ? 20 : 12;
  const valueOffset = big ? 12 : 8;
  const entryCount = big ? r.u64(firstDirectory, le, 'first directory') : r.u16(firstDirectory, le, 'first directory');
  const entriesStart = firstDirectory + countBytes;
  r.require(entriesStart + entryCount * entryBytes, 'first directory');

  const tags = new Map<number, number>();
  for (let i = 0; i < entryCount; i++) {
    const entry = entriesStart + i * entryBytes;
    const tag = r.u16(entry, le, 'first directory');
    if (
      tag !== TIFF_IMAGE_WIDTH &&
      tag !== TIFF_IMAGE_LENGTH &&
      tag !== TIFF_PHOTOMETRIC &&
      tag !== TIFF_SAMPLES_PER_PIXEL
    ) {
      continue;
    }
    const type = r.u16(entry + 2, le, 'first directory');
    const at = entry + valueOffset;
    // Only the first value is wanted, and it is always stored inline for these tags.
    if (type === 3) tags.set(tag, r.u16(at, le, 'first directory'));
    else if (type === 4) tags.set(tag, r.u32(at, le, 'first directory'));
    else if (type === 1) tags.set(tag, r.u8(at, 'first directory'));
    else if (type === 16 && big) tags.set(tag, r.u64(at, le, 'first directory'));
    else throw r.corrupt(`TIFF tag ${tag} has unexpected field type ${type}`);
  }
  const width = tags.get(TIFF_IMAGE_WIDTH);
  const height = tags.get(TIFF_IMAGE_LENGTH);
  if (width === undefined || height === undefined)
    throw r.corrupt('TIFF first directory has no ImageWidth or ImageLength');
  if (width === 0 || height === 0) throw r.corrupt(`TIFF gives an impossible size of ${width}×${height} pixels`);
  const samples = tags.get(TIFF_SAMPLES_PER_PIXEL) ?? 1;
  if (samples === 0) throw r.corrupt('TIFF says 0 samples per pixel');
  const photometric = tags.get(TIFF_PHOTOMETRIC) ?? (samples >= 3 ? 2 : PHOTOMETRIC_BLACK_IS_ZERO);
  return { width, height, channels: tiffChannels(photometric, samples) };
}

function tiffChannels(photometric: number, samples: number): number {
  if (photometric === PHOTOMETRIC_WHITE_IS_ZERO || photometric === PHOTOMETRIC_BLACK_IS_ZERO)
    return samples >= 2 ? 2 : 1;
  const colourSamples = photometric === PHOTOMETRIC_SEPARATED ? 4 : samples === 1 ? 1 : 3; // palette has 1 index sample
  return samples > colourSamples ? 4 : 3;
}

// ---------------------------------------------------------------------------------------------------------------
// WebP

function readWebpHeader(r: HeaderReader): Dimensions {
  const le = true;
  const chunk = r.text(12, 4, 'first chunk');
  if (chunk === 'VP8 ') {
    if (
      r.u8(23, 'VP8 frame header') !== 0x9d ||
      r.u8(24, 'VP8 frame header') !== 0x01 ||
      r.u8(25, 'VP8 frame header') !== 0x2a
    ) {
      throw r.corrupt('WebP VP8 chunk lacks its start code');
    }
    const width = r.u16(26, le, 'VP8 frame header') & 0x3fff;
    const height = r.u16(28, le, 'VP8 frame header') & 0x3fff;
    if (width === 0 || height === 0)
      throw r.corrupt(`WebP VP8 frame gives an impossible size of ${width}×${height} pixels`);
    return { width, height, channels: 3 };
  }
  if (chunk === 'VP8L') {
    if (r.u8(20, 'VP8L header') !== 0x2f) throw r.corrupt('WebP VP8L chunk lacks its signature byte');
    const bits = r.u32(21, le, 'VP8L header');
    const alphaIsUsed = (bits >>> 28) & 1;
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1, channels: alphaIsUsed ? 4 : 3 };
  }
  if (chunk === 'VP8X') {
    const flags = r.u8(20, 'VP8X header');
    const u24 = (offset: number): number =>
      r.u8(offset, 'VP8X header') | (r.u8(offset + 1, 'VP8X header') << 8) | (r.u8(offset + 2, 'VP8X header') << 16);
    const hasAlpha = (flags & 0x10) !== 0;
    return { width: u24(24) + 1, height: u24(27) + 1, channels: hasAlpha ? 4 : 3 };
  }
  throw r.corrupt(`WebP file starts with an unknown chunk ${JSON.stringify(chunk)}`);
}
