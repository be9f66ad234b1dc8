/**
 * One image file to its duplicate-check digest: read once, decode once, hash and thumbnail from the same buffer.
 * Runs on pixel worker threads (and on the calling thread for small datasets); synchronous reads are fine there.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { decodeImage, type DecodeOptions } from './decode.js';
import { digestImage, type ImageDigest } from './hash.js';
import { ImageFormatError } from './header.js';
import type { UnreadableReason } from '../types.js';

export interface DigestOptions extends DecodeOptions {
  /** Files larger than this are not read (default 1 GiB): no cell image is, and reading it would hold it all. */
  maxFileBytes?: number;
}

export const DEFAULT_MAX_FILE_BYTES = 1024 ** 3;

/** With `sync`, reads block the thread: for worker threads, where that is the fastest way to read. */
export async function digestFile(file: string, options: DigestOptions = {}, sync = false): Promise<ImageDigest> {
  const maxBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const bytes = sync ? readWholeSync(file, maxBytes) : await readWhole(file, maxBytes);
  return digestImage(await decodeImage(bytes, options));
}

function checkFileSize(size: number, maxBytes: number): void {
  if (size <= maxBytes) return;
  throw new ImageFormatError(
    'too-large',
    `The file holds ${size.toLocaleString('en-US')} bytes, over the limit of ${maxBytes.toLocaleString('en-US')}`,
  );
}

async function readWhole(file: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await open(file, 'r');
  try {
    checkFileSize((await handle.stat()).size, maxBytes);
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function readWholeSync(file: string, maxBytes: number): Uint8Array {
  const fd = openSync(file, 'r');
  try {
    const { size } = fstatSync(fd);
    checkFileSize(size, maxBytes);
    const bytes = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const read = readSync(fd, bytes, filled, size - filled, filled);
      if (read === 0) break;
      filled += read;
    }
    return filled === size ? bytes : bytes.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}

/** Why a file has no digest, as the audit reports it. */
export interface DigestFailure {
  reason: UnreadableReason;
  detail: string;
}

export function describeDigestFailure(error: unknown): DigestFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ImageFormatError && error.reason === 'too-large')
    return { reason: 'too-large', detail: message };
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string') {
    return { reason: 'io-error', detail: `Could not read the file: ${message}` };
  }
  return { reason: 'corrupt', detail: `pixels could not be decoded: ${message}` };
}
