/**
 * Reads PyTorch `.pth` / `.pt` files written by `torch.save` without Python and without running any of
 * the file's pickle code (see `pickle.ts`), into torchvision-keyed `HostTensor`s in PyTorch layout.
 *
 * Two container formats:
 *  - zip (torch ≥ 1.6, the default since): `<archive>/data.pkl` is the pickled object, each tensor storage
 *    is the raw record `<archive>/data/<key>`, `<archive>/byteorder` ("little"/"big", written since torch 2.0;
 *    absent means little-endian) and a version file. torch writes stored (uncompressed) records, 64-byte
 *    aligned through local-header padding, with sizes only in the central directory (data-descriptor
 *    flag) and always a zip64 end record; deflated entries (a re-zipped file) are inflated.
 *  - legacy (torch < 1.6, or `_use_new_zipfile_serialization=False`): five pickles back to back — magic
 *    number, protocol version, system info, the object, the list of storage keys — followed by each
 *    storage in that order as an int64 element count and the raw elements.
 *
 * In the object pickle a storage is a persistent id `('storage', torch.FloatStorage, key, location, numel)`
 * (legacy adds `view_metadata`), and a tensor is `torch._utils._rebuild_tensor_v2(storage, storage_offset,
 * size, stride, requires_grad, backward_hooks)`. Tensors are only described while unpickling and decoded
 * afterwards, and only those of the state dict, so an optimizer state next to it costs nothing.
 *
 * CRC-32s are not checked, as `torch.load` does not check them (torch ≥ 2.1 can even write files without
 * them); the download path verifies a SHA-256 instead.
 */
import { readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import {
  PickleDict,
  PickleExtension,
  PickleGlobal,
  PickleTuple,
  describe,
  unpickle,
  type PickleValue,
} from './pickle.js';
import { decodeSafetensors, type HostTensor, type SafetensorsDtype } from './safetensors.js';

/** A file that is not a readable PyTorch weights file; the message says why and, where possible, what to do. */
export class PthError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'PthError';
  }
}

type IntegerDtype = 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

interface StorageType {
  dtype: SafetensorsDtype | IntegerDtype;
  bytes: number;
}

/** torch storage class → element encoding. Floating types become Float32Array, integer and bool types BigInt64Array. */
const STORAGE_TYPES: ReadonlyMap<string, StorageType> = new Map([
  ['torch.FloatStorage', { dtype: 'F32', bytes: 4 }],
  ['torch.DoubleStorage', { dtype: 'F64', bytes: 8 }],
  ['torch.HalfStorage', { dtype: 'F16', bytes: 2 }],
  ['torch.BFloat16Storage', { dtype: 'BF16', bytes: 2 }],
  ['torch.LongStorage', { dtype: 'I64', bytes: 8 }],
  ['torch.IntStorage', { dtype: 'I32', bytes: 4 }],
  ['torch.ShortStorage', { dtype: 'I16', bytes: 2 }],
  ['torch.CharStorage', { dtype: 'I8', bytes: 1 }],
  ['torch.ByteStorage', { dtype: 'U8', bytes: 1 }],
  ['torch.BoolStorage', { dtype: 'BOOL', bytes: 1 }],
]);

const INTEGER_READERS: Readonly<Record<IntegerDtype, (view: DataView, at: number) => number>> = {
  I32: (view, at) => view.getInt32(at, true),
  I16: (view, at) => view.getInt16(at, true),
  I8: (view, at) => view.getInt8(at),
  U8: (view, at) => view.getUint8(at),
  BOOL: (view, at) => (view.getUint8(at) === 0 ? 0 : 1),
};

/** No ResNet tensor comes near this (the largest has 2.4 M elements); a larger view is a corrupt or hostile size. */
const MAX_TENSOR_ELEMENTS = 2 ** 28;
/**
 * Elements decoded from one file, in total: about twice ResNet-18's 11.7 M parameters with a 1000-class
 * head. Views can repeat elements (stride 0), so a tiny file can describe gigabytes; this bounds what any
 * file costs, whatever its views say. The checkpoint loader checks names and shapes against ResNet-18 first.
 */
export const MAX_DECODED_ELEMENTS = 24_000_000;
/** Bytes inflated from one zip, in total (each record once): float64 weights of that budget, plus the pickle. */
const MAX_INFLATED_TOTAL = MAX_DECODED_ELEMENTS * 8 + 64 * 2 ** 20;
const MAX_RANK = 32;
/** `torch.serialization.MAGIC_NUMBER` and `PROTOCOL_VERSION` of the legacy format. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/** PROTO 2, LONG1 of 10 bytes, then the magic number little-endian: how every legacy file starts. */
const LEGACY_PREFIX = Uint8Array.from([
  0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
]);
const ZIP_LOCAL_HEADER = 0x04034b50;
/** Where a training script's checkpoint dict usually keeps the model weights. */
const NESTED_STATE_DICT_KEYS = ['state_dict', 'model', 'model_state_dict'];
const DATA_PARALLEL_PREFIX = 'module.';

/** Throws a PthError; declared with an explicit type so that TypeScript narrows after a call. */
type Fail = (problem: string) => never;

/**
 * A storage: raw little- or big-endian elements. Zip storages are read (inflated, if need be) only when a
 * tensor over them is decoded; legacy storages get their bytes after the object pickle.
 */
class StorageRef extends PickleExtension {
  private loaded: Uint8Array | undefined;
  /** Set for zip records: reads the record on first use. */
  load: (() => Uint8Array) | undefined;
  constructor(
    readonly key: string,
    readonly type: StorageType,
    /** Elements, counted from `elementOffset` (non-zero only for legacy storage views). */
    readonly numel: number,
    readonly elementOffset = 0,
  ) {
    super();
  }

  get bytes(): Uint8Array | undefined {
    if (!this.loaded && this.load) this.loaded = this.load();
    return this.loaded;
  }

  set bytes(bytes: Uint8Array | undefined) {
    this.loaded = bytes;
  }
}

/** A tensor as `_rebuild_tensor_v2` describes it; decoded only if it belongs to the state dict. */
export class TensorRef extends PickleExtension {
  constructor(
    readonly storage: StorageRef,
    readonly storageOffset: number,
    readonly size: readonly number[],
    readonly stride: readonly number[],
  ) {
    super();
  }
}

/** True for what `torch.save` writes: a zip archive or the legacy pickle sequence. */
export function looksLikePth(bytes: Uint8Array): boolean {
  return readU32(bytes, 0) === ZIP_LOCAL_HEADER || startsWith(bytes, LEGACY_PREFIX);
}

export async function readPth(file: string): Promise<Map<string, HostTensor>> {
  return decodePth(await readFile(file), file);
}

/**
 * The state dict in a `torch.save` file: the top-level dict of tensors, or one nested under
 * `state_dict`, `model` or `model_state_dict`; a `module.` prefix on every key (DataParallel) is removed.
 * `file` is only used in messages.
 */
export function decodePth(bytes: Uint8Array, file: string): Map<string, HostTensor> {
  const opened = openPth(bytes, file);
  const entries = [...stateDictOf(opened.root, file)].map(
    ([key, tensor]) => [key as string, tensor as TensorRef] as const,
  );
  const stripPrefix = entries.every(([key]) => key.startsWith(DATA_PARALLEL_PREFIX));
  const dict = new Map<string, HostTensor>();
  for (const [key, tensor] of entries) {
    dict.set(stripPrefix ? key.slice(DATA_PARALLEL_PREFIX.length) : key, opened.decode(tensor, key));
  }
  return dict;
}

/** A `torch.save` file unpickled, with tensors described but not yet decoded. */
export interface OpenedPth {
  /** The pickled object: tensors are `TensorRef`s, placeholder classes `PickleObject`s. */
  root: PickleValue;
  format: 'zip' | 'legacy';
  /** A tensor's elements; every call counts against the file's budget of `MAX_DECODED_ELEMENTS`. */
  decode(tensor: TensorRef, name: string): HostTensor;
}

export interface OpenPthOptions {
  /** Read pickled objects (whole models) structurally; see `UnpickleOptions.placeholders`. */
  placeholders?: boolean;
}

/** Unpickles a `torch.save` file without decoding any tensor. */
export function openPth(bytes: Uint8Array, file: string, options: OpenPthOptions = {}): OpenedPth {
  let root: PickleValue;
  let bigEndian: boolean;
  const placeholders = options.placeholders ?? false;
  const zip = readU32(bytes, 0) === ZIP_LOCAL_HEADER;
  if (zip) ({ root, bigEndian } = unpickleZip(bytes, file, placeholders));
  else if (startsWith(bytes, LEGACY_PREFIX)) ({ root, bigEndian } = unpickleLegacy(bytes, file, placeholders));
  else if (bytes[0] === 0x80)
    throw new PthError(
      file,
      'is a plain pickle, not a file written by torch.save; save the weights with torch.save(model.state_dict(), path)',
    );
  else throw new PthError(file, 'is not a PyTorch file (neither the zip format of torch ≥ 1.6 nor the legacy format)');

  let decoded = 0;
  return {
    root,
    format: zip ? 'zip' : 'legacy',
    decode(tensor, name) {
      const numel = tensor.size.reduce((a, b) => a * b, 1);
      if (decoded + numel > MAX_DECODED_ELEMENTS) {
        throw new PthError(
          file,
          `tensor "${name}" (size [${tensor.size}]) would bring the elements decoded from this file to ${decoded + numel}, ` +
            `beyond the ${MAX_DECODED_ELEMENTS} (about twice ResNet-18) this reader decodes from one file`,
        );
      }
      decoded += numel;
      return materialise(tensor, bigEndian, file, name);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The object pickle: storages and tensors

function unpickleObject(
  bytes: Uint8Array,
  offset: number,
  pickleName: string,
  persistentLoad: (pid: PickleValue) => PickleValue,
  placeholders: boolean,
): { value: PickleValue; end: number } {
  const fail: Fail = (problem) => {
    throw new PthError(pickleName, problem);
  };
  return unpickle(bytes, {
    file: pickleName,
    offset,
    persistentLoad,
    placeholders,
    reduce: (callable, args) => rebuild(callable, args, fail),
  });
}

/** What the allowed torch functions mean as data; the storage classes are never called. */
function rebuild(callable: PickleGlobal, args: readonly PickleValue[], fail: Fail): PickleValue {
  switch (callable.qualifiedName) {
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      const [storage, offset, size, stride] = args;
      const what = callable.qualifiedName;
      if (!(storage instanceof StorageRef))
        return fail(`${what} is given ${describe(storage ?? null)} instead of a storage`);
      const sizes = integers(size, `${what} size`, fail);
      const strides = integers(stride, `${what} stride`, fail);
      if (sizes.length !== strides.length) fail(`${what}: size [${sizes}] and stride [${strides}] differ in rank`);
      if (sizes.length > MAX_RANK) fail(`${what}: rank ${sizes.length} is beyond any real tensor`);
      if (!isCount(offset)) return fail(`${what}: storage offset ${describe(offset ?? null)} is not a count`);
      return new TensorRef(storage, offset, sizes, strides);
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state': {
      // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor as far as weights go.
      const [data] = args;
      if (!(data instanceof TensorRef))
        return fail(`${callable.qualifiedName} is given ${describe(data ?? null)} instead of a tensor`);
      return data;
    }
    default:
      return fail(`${callable.qualifiedName} is only a storage type; a weights file never calls it`);
  }
}

function integers(value: PickleValue | undefined, what: string, fail: Fail): readonly number[] {
  const items = value instanceof PickleTuple ? value.items : Array.isArray(value) ? value : undefined;
  if (!items || !items.every(isCount)) return fail(`${what} ${describe(value ?? null)} is not a tuple of counts`);
  return items;
}

function isCount(value: PickleValue | undefined): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Checks a persistent id `('storage', type, key, location, numel[, view_metadata])` and returns its parts. */
function storageId(pid: PickleValue, legacy: boolean, fail: Fail) {
  const items = pid instanceof PickleTuple ? pid.items : [];
  const [kind, type, key, , numel, view] = items;
  if (kind !== 'storage') {
    return fail(
      kind === 'module'
        ? 'holds the source code of a pickled model (torch.save(model)); save the weights with torch.save(model.state_dict(), path)'
        : `unexpected persistent id ${describe(pid)}; only tensor storages are expected`,
    );
  }
  if (items.length !== (legacy ? 6 : 5)) fail(`storage id has ${items.length} fields, expected ${legacy ? 6 : 5}`);
  const storageType = type instanceof PickleGlobal ? STORAGE_TYPES.get(type.qualifiedName) : undefined;
  if (!storageType) return fail(`storage id names ${describe(type ?? null)}, which is not a storage type`);
  if (typeof key !== 'string') return fail(`storage key ${describe(key ?? null)} is not a string`);
  if (!isCount(numel)) return fail(`storage ${key}: element count ${describe(numel ?? null)} is not a count`);
  return { type: storageType, key, numel, view: view ?? null };
}

/** The state dict inside the unpickled object, or an error that says what the file holds instead. */
function stateDictOf(root: PickleValue, file: string): PickleDict {
  if (isTensorDict(root)) return root;
  if (root instanceof PickleDict) {
    for (const key of NESTED_STATE_DICT_KEYS) {
      const nested = root.get(key);
      if (isTensorDict(nested)) return nested;
    }
    const offending = [...root].find(([, value]) => !(value instanceof TensorRef));
    const keys = [...root.keys()].slice(0, 8).map((key) => (typeof key === 'string' ? key : describe(key)));
    throw new PthError(
      file,
      root.size === 0
        ? 'holds an empty dict, not a state dict'
        : `holds a dict (keys ${keys.join(', ')}${root.size > 8 ? ', …' : ''}) that is not a state dict: ` +
            `"${String(offending?.[0])}" is ${describe(offending?.[1] ?? null)}, not a tensor, and none of ${NESTED_STATE_DICT_KEYS.join(', ')} holds one`,
    );
  }
  throw new PthError(file, `holds ${describe(root)}, not a state dict (a dict of tensor names to tensors)`);
}

function isTensorDict(value: PickleValue | undefined): value is PickleDict {
  if (!(value instanceof PickleDict) || value.size === 0) return false;
  for (const [key, tensor] of value) if (typeof key !== 'string' || !(tensor instanceof TensorRef)) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Decoding tensors

/** The tensor's elements in row-major order, gathered through its strides when it is not contiguous. */
function materialise(tensor: TensorRef, bigEndian: boolean, file: string, name: string): HostTensor {
  const { storage, storageOffset, size, stride } = tensor;
  const fail: Fail = (problem) => {
    throw new PthError(file, `tensor "${name}": ${problem}`);
  };
  const numel = size.reduce((a, b) => a * b, 1);
  if (numel > MAX_TENSOR_ELEMENTS)
    fail(`size [${size}] has ${numel} elements, beyond the ${MAX_TENSOR_ELEMENTS} this reader accepts`);
  // Elements from the first to the last one the view touches (strides are never negative in PyTorch).
  const span = numel === 0 ? 0 : 1 + size.reduce((sum, extent, k) => sum + (extent - 1) * stride[k], 0);
  if (storageOffset + span > storage.numel) {
    fail(
      `size [${size}], stride [${stride}] at offset ${storageOffset} reach element ${storageOffset + span} of a ${storage.numel}-element storage`,
    );
  }
  const source = decodeElements(storage, storageOffset, span, bigEndian, file, name);
  if (isContiguous(size, stride)) return { shape: [...size], data: source };
  const data = source instanceof Float32Array ? new Float32Array(numel) : new BigInt64Array(numel);
  const index = new Array<number>(size.length).fill(0);
  for (let i = 0, at = 0; i < numel; i++) {
    data[i] = source[at] as never;
    // Odometer over the multi-index, last axis fastest.
    for (let k = size.length - 1; k >= 0; k--) {
      index[k]++;
      at += stride[k];
      if (index[k] < size[k]) break;
      at -= stride[k] * size[k];
      index[k] = 0;
    }
  }
  return { shape: [...size], data };
}

/** Row-major with no gaps; the stride of a size-1 axis does not matter (PyTorch's own definition). */
function isContiguous(size: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let k = size.length - 1; k >= 0; k--) {
    if (size[k] !== 1 && stride[k] !== expected) return false;
    expected *= size[k];
  }
  return true;
}

/**
 * `count` elements of `storage` from element `start`. Floating types and int64 go through the
 * safetensors decoder (one decoder for every weights format), wrapped as a one-tensor file.
 */
function decodeElements(
  storage: StorageRef,
  start: number,
  count: number,
  bigEndian: boolean,
  file: string,
  name: string,
): Float32Array | BigInt64Array {
  const { dtype, bytes: size } = storage.type;
  if (!storage.bytes) throw new PthError(file, `tensor "${name}": storage ${storage.key} has no data in the file`);
  const begin = (storage.elementOffset + start) * size;
  const raw = storage.bytes.subarray(begin, begin + count * size);
  if (dtype === 'I32' || dtype === 'I16' || dtype === 'I8' || dtype === 'U8' || dtype === 'BOOL') {
    const bytes = bigEndian ? swapBytes(raw.slice(), size) : raw;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const read = INTEGER_READERS[dtype];
    return BigInt64Array.from({ length: count }, (_, i) => BigInt(read(view, i * size)));
  }
  const header = new TextEncoder().encode(
    JSON.stringify({ t: { dtype, shape: [count], data_offsets: [0, raw.length] } }),
  );
  const wrapped = new Uint8Array(8 + header.length + raw.length);
  new DataView(wrapped.buffer).setBigUint64(0, BigInt(header.length), true);
  wrapped.set(header, 8);
  wrapped.set(raw, 8 + header.length);
  if (bigEndian) swapBytes(wrapped.subarray(8 + header.length), size);
  return decodeSafetensors(wrapped, `${file} (tensor "${name}")`).tensors.get('t')!.data;
}

/** Reverses the bytes of every `size`-byte element in place (big-endian files). */
function swapBytes(bytes: Uint8Array, size: number): Uint8Array {
  if (size > 1) for (let at = 0; at < bytes.length; at += size) bytes.subarray(at, at + size).reverse();
  return bytes;
}

// ---------------------------------------------------------------------------------------------------
// Zip format

function unpickleZip(
  bytes: Uint8Array,
  file: string,
  placeholders: boolean,
): { root: PickleValue; bigEndian: boolean } {
  const entries = readZipDirectory(bytes, file);
  const inflater = new ZipReader(bytes, file);
  const pickles = [...entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    const torchScript = [...entries.keys()].some((name) => /^[^/]+\/(constants\.pkl|code\/)/.test(name));
    throw new PthError(
      file,
      torchScript
        ? 'is a TorchScript archive (torch.jit.save), which holds code; save the weights with torch.save(model.state_dict(), path)'
        : `is a zip file but not a torch.save archive (${pickles.length === 0 ? 'no <archive>/data.pkl' : `${pickles.length} data.pkl files`})`,
    );
  }
  const archive = pickles[0].slice(0, -'/data.pkl'.length);
  const byteorderEntry = entries.get(`${archive}/byteorder`);
  const byteorder = byteorderEntry ? new TextDecoder().decode(inflater.read(byteorderEntry)).trim() : 'little';
  if (byteorder !== 'little' && byteorder !== 'big')
    throw new PthError(file, `${archive}/byteorder says "${byteorder}", expected little or big`);

  const pickleName = `${file} (${pickles[0]})`;
  const fail: Fail = (problem) => {
    throw new PthError(pickleName, problem);
  };
  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: PickleValue): PickleValue => {
    const { type, key, numel } = storageId(pid, false, fail);
    const known = storages.get(key);
    if (known) return known;
    const record = entries.get(`${archive}/data/${key}`);
    if (!record) return fail(`storage ${key} is referenced but ${archive}/data/${key} is missing`);
    // The declared sizes are checked now; the bytes are read only if a decoded tensor needs them.
    if (record.size < numel * type.bytes)
      fail(`storage ${key} needs ${numel * type.bytes} bytes but its record holds ${record.size}`);
    const storage = new StorageRef(key, type, numel);
    storage.load = () => inflater.read(record);
    storages.set(key, storage);
    return storage;
  };
  const { value } = unpickleObject(
    inflater.read(entries.get(pickles[0])!),
    0,
    pickleName,
    persistentLoad,
    placeholders,
  );
  return { root: value, bigEndian: byteorder === 'big' };
}

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const ZIP64_EXTRA_ID = 0x0001;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** torch never deflates its records; a re-zipped file's entries stay far below this, a deflate bomb's claim need not. */
const MAX_INFLATED_BYTES = 2 ** 30;

/** The central directory (APPNOTE.TXT 4.3.12–4.3.16), zip64 records included. */
function readZipDirectory(bytes: Uint8Array, file: string): Map<string, ZipEntry> {
  const fail: Fail = (problem) => {
    throw new PthError(file, `broken zip archive: ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let at = bytes.length - EOCD_SIZE; at >= Math.max(0, bytes.length - EOCD_SIZE - MAX_COMMENT); at--) {
    if (view.getUint32(at, true) === EOCD_SIGNATURE) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record (the file is truncated or not a zip)');
  let count = view.getUint16(eocd + 10, true);
  let directorySize = view.getUint32(eocd + 12, true);
  let directoryOffset = view.getUint32(eocd + 16, true);
  const locator = eocd - 20;
  if (locator >= 0 && view.getUint32(locator, true) === ZIP64_LOCATOR_SIGNATURE) {
    const zip64 = safeNumber(view.getBigUint64(locator + 8, true), 'zip64 end record offset', fail);
    if (zip64 + 56 > bytes.length || view.getUint32(zip64, true) !== ZIP64_EOCD_SIGNATURE)
      fail('the zip64 locator points at no zip64 end record');
    count = safeNumber(view.getBigUint64(zip64 + 32, true), 'entry count', fail);
    directorySize = safeNumber(view.getBigUint64(zip64 + 40, true), 'central directory size', fail);
    directoryOffset = safeNumber(view.getBigUint64(zip64 + 48, true), 'central directory offset', fail);
  }
  if (directoryOffset + directorySize > bytes.length)
    fail(
      `the central directory (${directorySize} bytes at ${directoryOffset}) runs past the end of the ${bytes.length}-byte file`,
    );

  const entries = new Map<string, ZipEntry>();
  let at = directoryOffset;
  for (let i = 0; i < count; i++) {
    if (at + 46 > directoryOffset + directorySize || view.getUint32(at, true) !== CENTRAL_HEADER_SIGNATURE)
      fail(`central directory entry ${i} is damaged`);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    const next = at + 46 + nameLength + extraLength + commentLength;
    if (next > directoryOffset + directorySize) fail(`central directory entry ${i} runs past the directory`);
    const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLength));
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    let localHeaderOffset = view.getUint32(at + 42, true);
    // A 32-bit field of all ones means "see the zip64 extra field", which holds only those fields, in this order.
    for (let extra = at + 46 + nameLength; extra + 4 <= at + 46 + nameLength + extraLength;) {
      const id = view.getUint16(extra, true);
      const length = view.getUint16(extra + 2, true);
      if (id === ZIP64_EXTRA_ID) {
        let field = extra + 4;
        const next64 = (what: string): number => {
          if (field + 8 > extra + 4 + length) fail(`the zip64 field of ${name} lacks the ${what}`);
          const value = safeNumber(view.getBigUint64(field, true), what, fail);
          field += 8;
          return value;
        };
        if (size === 0xffffffff) size = next64('size');
        if (compressedSize === 0xffffffff) compressedSize = next64('compressed size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next64('local header offset');
      }
      extra += 4 + length;
    }
    entries.set(name, {
      name,
      method: view.getUint16(at + 10, true),
      flags: view.getUint16(at + 8, true),
      compressedSize,
      size,
      localHeaderOffset,
    });
    at = next;
  }
  return entries;
}

/**
 * Reads entries of one archive: each record at most once (entries that point at the same data share it),
 * and no more than `MAX_INFLATED_TOTAL` bytes inflated in all.
 */
class ZipReader {
  private readonly byHeader = new Map<number, Uint8Array>();
  private inflated = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {}

  read(entry: ZipEntry): Uint8Array {
    const known = this.byHeader.get(entry.localHeaderOffset);
    if (known) {
      if (known.length !== entry.size)
        throw new PthError(
          this.file,
          `broken zip archive: ${entry.name} shares its data with another entry of a different size`,
        );
      return known;
    }
    if (entry.method !== 0 && this.inflated + entry.size > MAX_INFLATED_TOTAL) {
      throw new PthError(
        this.file,
        `broken zip archive: inflating ${entry.name} (${entry.size} bytes) would bring this file to ${this.inflated + entry.size} bytes inflated, beyond the ${MAX_INFLATED_TOTAL} a ResNet-18 checkpoint can need`,
      );
    }
    const data = zipEntryData(this.bytes, entry, this.file);
    if (entry.method !== 0) this.inflated += data.length;
    this.byHeader.set(entry.localHeaderOffset, data);
    return data;
  }
}

/** An entry's bytes: a view into `bytes` when stored, inflated when deflated. */
function zipEntryData(bytes: Uint8Array, entry: ZipEntry, file: string): Uint8Array {
  const fail: Fail = (problem) => {
    throw new PthError(file, `broken zip archive: ${entry.name}: ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = entry.localHeaderOffset;
  if (header + 30 > bytes.length || view.getUint32(header, true) !== ZIP_LOCAL_HEADER)
    fail('no local header where the directory says');
  // The local header's own lengths count here: torch pads its extra field so that the data is 64-byte aligned.
  const start = header + 30 + view.getUint16(header + 26, true) + view.getUint16(header + 28, true);
  if (start + entry.compressedSize > bytes.length)
    fail(`its ${entry.compressedSize} bytes run past the end of the file (truncated?)`);
  if (entry.flags & 0x1) fail('it is encrypted');
  const compressed = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size)
      fail(`stored with ${entry.compressedSize} bytes but a size of ${entry.size}`);
    return compressed;
  }
  if (entry.method !== 8) fail(`compression method ${entry.method} is not supported (only stored and deflate)`);
  if (entry.size > MAX_INFLATED_BYTES)
    fail(
      `declares ${entry.size} bytes once inflated, more than the ${MAX_INFLATED_BYTES} this reader inflates in memory`,
    );
  let inflated: Uint8Array;
  try {
    // The declared size bounds the output, so a small deflate bomb cannot exhaust memory.
    inflated = inflateRawSync(compressed, { maxOutputLength: Math.max(1, entry.size) });
  } catch (error) {
    return fail(`cannot inflate (${(error as Error).message})`);
  }
  if (inflated.length !== entry.size) fail(`inflates to ${inflated.length} bytes instead of ${entry.size}`);
  return inflated;
}

function safeNumber(value: bigint, what: string, fail: Fail): number {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : fail(`${what} ${value} is beyond any real file`);
}

// ---------------------------------------------------------------------------------------------------
// Legacy format

function unpickleLegacy(
  bytes: Uint8Array,
  file: string,
  placeholders: boolean,
): { root: PickleValue; bigEndian: boolean } {
  const fail: Fail = (problem) => {
    throw new PthError(file, `legacy PyTorch format: ${problem}`);
  };
  const header = (offset: number) => unpickle(bytes, { file, offset });
  const magic = header(0);
  if (magic.value !== LEGACY_MAGIC) fail('wrong magic number');
  const protocol = header(magic.end);
  if (protocol.value !== LEGACY_PROTOCOL)
    fail(`protocol version ${describe(protocol.value)}, expected ${LEGACY_PROTOCOL}`);
  const sysInfo = header(protocol.end);
  const littleEndian = sysInfo.value instanceof PickleDict ? sysInfo.value.get('little_endian') : undefined;
  if (typeof littleEndian !== 'boolean') fail('system information lacks little_endian');

  const roots = new Map<string, StorageRef>();
  const views: { view: StorageRef; root: string }[] = [];
  const persistentLoad = (pid: PickleValue): PickleValue => {
    // torch.save(model) in the legacy format names each module class with its source code: a name is all we keep.
    if (placeholders && pid instanceof PickleTuple && pid.items[0] === 'module') return pid.items[1] ?? null;
    const { type, key, numel, view } = storageId(pid, true, fail);
    let root = roots.get(key);
    if (!root) roots.set(key, (root = new StorageRef(key, type, numel)));
    if (view === null) return root;
    // view_metadata (view_key, offset, view_size): a slice of the root storage, in elements.
    const parts = view instanceof PickleTuple ? view.items : [];
    const [viewKey, offset, viewSize] = parts;
    if (parts.length !== 3 || typeof viewKey !== 'string' || !isCount(offset) || !isCount(viewSize))
      return fail(`storage ${key}: malformed view ${describe(view)}`);
    if (offset + viewSize > numel) fail(`storage view ${viewKey} reaches past storage ${key}`);
    const slice = new StorageRef(viewKey, type, viewSize, offset);
    views.push({ view: slice, root: key });
    return slice;
  };
  const object = unpickleObject(bytes, sysInfo.end, file, persistentLoad, placeholders);
  const keys = header(object.end);
  if (!Array.isArray(keys.value) || !keys.value.every((key) => typeof key === 'string'))
    fail('the storage key list is missing');

  // Each storage: its element count as a native-endian int64, then its elements.
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = keys.end;
  for (const key of keys.value) {
    const storage = roots.get(key) ?? fail(`storage ${key} is listed but never used`);
    if (at + 8 > bytes.length) fail(`truncated before storage ${key}`);
    const count = view.getBigInt64(at, littleEndian);
    if (count !== BigInt(storage.numel)) fail(`storage ${key} holds ${count} elements, its id says ${storage.numel}`);
    const length = storage.numel * storage.type.bytes;
    if (at + 8 + length > bytes.length) fail(`truncated inside storage ${key}`);
    storage.bytes = bytes.subarray(at + 8, at + 8 + length);
    at += 8 + length;
  }
  for (const { view: slice, root } of views) slice.bytes = roots.get(root)!.bytes;
  return { root: object.value, bigEndian: !littleEndian };
}

// ---------------------------------------------------------------------------------------------------

function readU32(bytes: Uint8Array, at: number): number | undefined {
  return bytes.length >= at + 4
    ? new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at, true)
    : undefined;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
}
