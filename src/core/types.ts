/**
 * Shared data shapes of the core. Everything here is plain JSON-serialisable data so it can cross the
 * process boundary (trainer), the webview boundary and the CLI's `--json` output unchanged.
 */

export type ImageFormat = 'bmp' | 'png' | 'jpeg' | 'tiff' | 'webp';

/** What a header-only read of an image tells: enough to audit without decoding pixels. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA), as stored in the file. */
  channels: number;
}

/** One image found by the scanner. `path` is relative to the scan root, with `/` separators. */
export interface ImageEntry extends ImageHeader {
  path: string;
  /** File size in bytes. */
  size: number;
}

export type UnreadableReason =
  | 'empty'
  | 'not-an-image'
  | 'corrupt'
  /** Declares more pixels than the decoding limit (a decompression bomb, or a slide far beyond a cell image). */
  | 'too-large'
  | 'permission-denied'
  | 'io-error'
  | 'symlink-loop'
  /** A symbolic link whose target lies outside the dataset folder: not followed. */
  | 'outside-root'
  /** A folder reached a second time (through a symbolic link): its files are listed under the first path only. */
  | 'linked-twice';

/** A file that looked like an image (by name or content) but could not be used. */
export interface UnreadableEntry {
  path: string;
  reason: UnreadableReason;
  /** A sentence naming the problem, e.g. "BMP header says 450×450 but the file ends after 1,024 bytes". */
  detail: string;
}

export interface ScanResult {
  /** Absolute path of the scanned folder. */
  root: string;
  images: ImageEntry[];
  unreadable: UnreadableEntry[];
  /** Relative paths of files that are not images and do not claim to be (CSV/TSV label files among them). */
  otherFiles: string[];
  /** Hidden files and OS junk (`.DS_Store`, `Thumbs.db`, `._*`, `desktop.ini`) that were ignored. */
  ignored: number;
}

/** Raw decoded pixels, interleaved, row-major, top row first. */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3 | 4;
  data: Uint8Array;
}
