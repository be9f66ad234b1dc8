import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../fsAtomic.js';

/**
 * The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON mapping tensor names to `{ dtype, shape, data_offsets }` (offsets relative
 * to the end of the header) plus an optional `__metadata__` string map, then the raw little-endian data.
 *
 * Reading is as strict as the reference Rust implementation: offsets in range, no overlap, no gaps, no
 * trailing bytes, byte sizes matching shapes. Floating-point dtypes are widened or narrowed to
 * Float32Array; I64 stays a BigInt64Array (see `int64ToNumbers`).
 */

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64';

/** A tensor in host memory: shape plus row-major data. Float32Array is written as F32, BigInt64Array as I64. */
export interface HostTensor {
  shape: number[];
  data: Float32Array | BigInt64Array;
}

export interface LoadedTensor extends HostTensor {
  /** The dtype in the file, before conversion to Float32Array. */
  storedDtype: SafetensorsDtype;
}

export interface SafetensorsContents {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

/** A malformed file or an unwritable tensor; `file` and `tensor` name where. */
export class SafetensorsError extends Error {
  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    problem: string,
  ) {
    super(`${file}: ${tensor === undefined ? '' : `tensor "${tensor}": `}${problem}`);
    this.name = 'SafetensorsError';
  }
}

/** The reference implementation's limit; a larger header means a corrupt length field, not a real model. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';

type Decoder = (view: DataView, byteOffset: number, count: number) => Float32Array | BigInt64Array;

interface DtypeInfo {
  bytes: number;
  decode: Decoder;
}

function floats(count: number, valueAt: (index: number) => number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = valueAt(i);
  return out;
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  F32: { bytes: 4, decode: (view, at, count) => floats(count, (i) => view.getFloat32(at + 4 * i, true)) },
  F64: { bytes: 8, decode: (view, at, count) => floats(count, (i) => view.getFloat64(at + 8 * i, true)) },
  F16: { bytes: 2, decode: (view, at, count) => floats(count, (i) => halfToFloat(view.getUint16(at + 2 * i, true))) },
  BF16: {
    bytes: 2,
    decode: (view, at, count) => {
      // bfloat16 is the top half of a float32, so shifting its bits up reconstructs the value exactly.
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(at + 2 * i, true) << 16;
      return new Float32Array(bits.buffer);
    },
  },
  I64: {
    bytes: 8,
    decode: (view, at, count) => {
      const out = new BigInt64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getBigInt64(at + 8 * i, true);
      return out;
    },
  },
};

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function isDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Throws a SafetensorsError about the file being read (and the tensor, when one is to blame). */
type Fail = (problem: string, tensor?: string) => never;

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses and validates the bytes of a safetensors file; `file` is only used in error messages. */
export function decodeSafetensors(bytes: Uint8Array, file: string): SafetensorsContents {
  const fail: Fail = (problem, tensor) => {
    throw new SafetensorsError(file, tensor, problem);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes is too short for the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES))
    fail(`header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = 8 + Number(headerLength);
  if (dataStart > bytes.length)
    fail(`header length ${headerLength} runs past the end of the ${bytes.length}-byte file`);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (error) {
    fail(`header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) metadata = parseMetadata(value, fail);
    else entries.push(parseHeaderEntry(name, value, fail));
  }

  const dataLength = bytes.length - dataStart;
  checkCoverage(entries, dataLength, fail);

  const tensors = new Map<string, LoadedTensor>();
  for (const entry of entries) {
    const data = DTYPES[entry.dtype].decode(view, dataStart + entry.begin, elementCount(entry.shape));
    tensors.set(entry.name, { shape: entry.shape, data, storedDtype: entry.dtype });
  }
  return { tensors, metadata };
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${METADATA_KEY} is not an object`);
  const pairs = Object.entries(value as Record<string, unknown>);
  for (const [key, text] of pairs)
    if (typeof text !== 'string') fail(`${METADATA_KEY} value for "${key}" is not a string`);
  // fromEntries defines own properties, so a key such as "__proto__" cannot reach the prototype.
  return Object.fromEntries(pairs) as Record<string, string>;
}

function parseHeaderEntry(name: string, value: unknown, fail: Fail): HeaderEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('header entry is not an object', name);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDtype(dtype))
    fail(`unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`, name);
  if (!Array.isArray(shape) || !shape.every(isCount))
    fail(`shape ${JSON.stringify(shape)} is not a list of sizes`, name);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    fail(`data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`, name);
  }
  const [begin, end] = offsets as number[];
  const expectedBytes = elementCount(shape as number[]) * DTYPES[dtype as SafetensorsDtype].bytes;
  if (end - begin !== expectedBytes) {
    fail(
      `shape [${shape}] of ${dtype} needs ${expectedBytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      name,
    );
  }
  return { name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end };
}

/** Tensors must tile the data section exactly: in range, no overlap, no gap, nothing after the last one. */
function checkCoverage(entries: readonly HeaderEntry[], dataLength: number, fail: Fail): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: HeaderEntry | undefined;
  for (const entry of sorted) {
    if (entry.end > dataLength)
      fail(`data_offsets [${entry.begin}, ${entry.end}] run past the ${dataLength}-byte data section`, entry.name);
    if (entry.begin < covered)
      fail(`data_offsets [${entry.begin}, ${entry.end}] overlap tensor "${previous?.name}"`, entry.name);
    if (entry.begin > covered)
      fail(`bytes ${covered}..${entry.begin} of the data section belong to no tensor`, entry.name);
    covered = entry.end;
    previous = entry;
  }
  if (covered !== dataLength) fail(`data section has ${dataLength - covered} trailing bytes that belong to no tensor`);
}

/** Encodes tensors (in the map's order) and string metadata as a safetensors file. */
export function encodeSafetensors(
  tensors: ReadonlyMap<string, HostTensor>,
  metadata: Record<string, string> = {},
  file = '<memory>',
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = metadata;
  let dataLength = 0;
  for (const [name, tensor] of tensors) {
    if (name === METADATA_KEY) throw new SafetensorsError(file, name, `"${METADATA_KEY}" is reserved for metadata`);
    if (!tensor.shape.every(isCount) || elementCount(tensor.shape) !== tensor.data.length) {
      throw new SafetensorsError(
        file,
        name,
        `shape [${tensor.shape}] does not hold the ${tensor.data.length} values given`,
      );
    }
    const dtype: SafetensorsDtype = tensor.data instanceof Float32Array ? 'F32' : 'I64';
    const byteLength = tensor.data.length * DTYPES[dtype].bytes;
    header[name] = { dtype, shape: tensor.shape, data_offsets: [dataLength, dataLength + byteLength] };
    dataLength += byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces (JSON whitespace) so the data section starts 8-byte aligned, as the reference writer does.
  const headerLength = Math.ceil(json.length / 8) * 8;

  const out = new Uint8Array(8 + headerLength + dataLength);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerLength), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const { data } of tensors.values()) {
    if (data instanceof Float32Array) {
      for (let i = 0; i < data.length; i++, at += 4) view.setFloat32(at, data[i], true);
    } else {
      for (let i = 0; i < data.length; i++, at += 8) view.setBigInt64(at, data[i], true);
    }
  }
  return out;
}

export async function readSafetensors(file: string): Promise<SafetensorsContents> {
  return decodeSafetensors(await readFile(file), file);
}

/** Writes atomically (see `writeFileAtomic`), so a crash mid-save leaves the previous checkpoint intact. */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, HostTensor>,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(file, encodeSafetensors(tensors, metadata, file));
}

/** I64 values as numbers, refusing any that a double cannot represent exactly. */
export function int64ToNumbers(data: BigInt64Array, what: string): number[] {
  return Array.from(data, (value) => {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError(`${what}: int64 value ${value} is beyond what a JavaScript number holds exactly`);
    }
    return Number(value);
  });
}
