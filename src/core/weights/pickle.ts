/**
 * A safe unpickler for the subset of Python's pickle format that PyTorch weights files use
 * (https://docs.python.org/3/library/pickle.html, opcodes as documented in CPython's `pickletools`).
 *
 * Why not "just unpickle": a pickle is a program for a stack machine whose GLOBAL + REDUCE opcodes call
 * any importable Python function — `os.system` included — so loading an untrusted `.pth` with plain
 * `pickle` runs whatever its author wanted. This machine never calls anything: in the spirit of
 * `torch.load(weights_only=True)`, GLOBAL and STACK_GLOBAL accept only the names on `ALLOWED_GLOBALS`
 * and produce an inert `PickleGlobal` descriptor; any other name stops the load at the opcode that names
 * it, before another byte is read. REDUCE on an allowed name either builds a plain value
 * (`collections.OrderedDict`, `torch.Size`) or is handed to the caller's `reduce` hook, which decides
 * what, say, `torch._utils._rebuild_tensor_v2` means as data. Nothing here is dynamic: no eval, no
 * Function, no property lookups keyed by names from the file.
 *
 * Python values map to: None → null, bool → boolean, int → number (bigint beyond 2^53), float → number,
 * str → string, bytes → Uint8Array, list → array, tuple → PickleTuple, dict/OrderedDict → PickleDict.
 */

/** Python's `module.name` notation, used in messages and in the allow-list. */
export type QualifiedName = `${string}.${string}`;

/**
 * Every global a state dict saved by `torch.save` may reference. Storage types appear as arguments of
 * persistent ids, rebuild functions as REDUCE callables. Deliberately absent: `torch.storage._load_from_bytes`
 * (it runs an unrestricted `torch.load` on embedded bytes) and anything that builds model objects.
 */
export const ALLOWED_GLOBALS: ReadonlySet<string> = new Set<QualifiedName>([
  'collections.OrderedDict',
  'torch.Size',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch.FloatStorage',
  'torch.DoubleStorage',
  'torch.HalfStorage',
  'torch.BFloat16Storage',
  'torch.LongStorage',
  'torch.IntStorage',
  'torch.ShortStorage',
  'torch.CharStorage',
  'torch.ByteStorage',
  'torch.BoolStorage',
]);

/**
 * Names that are not only unneeded but known vectors for running code while loading; they get the
 * "may be malicious" wording even when they live in torch's own namespace.
 */
const KNOWN_DANGEROUS: ReadonlySet<string> = new Set([
  'torch.storage._load_from_bytes',
  'torch.load',
  'torch.jit.load',
]);

/**
 * Namespaces whose names are refused even where unknown classes become placeholders (`placeholders`): a
 * weights file or a pickled model never needs them, and they are how a hostile pickle runs code.
 * `builtins` is refused except for the container types of `SAFE_BUILTINS`. (`functools.partial` stays a
 * placeholder: models keep partials of layer classes as attributes, and a placeholder is never called.)
 */
const DENIED_MODULES: readonly string[] = [
  'os',
  'posix',
  'nt',
  'subprocess',
  'sys',
  'builtins',
  '__builtin__',
  'shutil',
  'socket',
  'importlib',
  'runpy',
  'code',
  'codeop',
  'pty',
  'pickle',
  '_pickle',
  'cPickle',
  'marshal',
  'types',
  'ctypes',
  'io',
  '_io',
  'operator',
  '_operator',
  'webbrowser',
  'multiprocessing',
  'threading',
  '_thread',
  'asyncio',
  'signal',
  'tempfile',
  'pathlib',
  'glob',
  'urllib',
  'http',
  'requests',
  'ftplib',
  'smtplib',
  'telnetlib',
  'platform',
  'pdb',
  'bdb',
  'timeit',
  'trace',
  'profile',
  'cProfile',
  'inspect',
  'gc',
  'ensurepip',
  'pip',
  'setuptools',
  'distutils',
  'numpy.load',
  'numpy.lib.npyio',
  'numpy.testing',
  'torch.hub',
  'torch.package',
  'torch.jit',
  'torch.serialization',
  'torch.utils.cpp_extension',
  'torch._C',
  'torch._ops',
  'torch.ops',
  'torch.distributed',
];
/** Built-in types a pickled model uses as plain containers (`_non_persistent_buffers_set` is a set). */
const SAFE_BUILTINS: ReadonlySet<string> = new Set(
  ['set', 'frozenset', 'bytearray', 'slice', 'complex'].flatMap((name) => [`builtins.${name}`, `__builtin__.${name}`]),
);

function isDenied(qualified: string): boolean {
  if (SAFE_BUILTINS.has(qualified)) return false;
  return KNOWN_DANGEROUS.has(qualified) || DENIED_MODULES.some((m) => qualified === m || qualified.startsWith(`${m}.`));
}

/** An allow-listed global. A descriptor only: it is compared by name, never called. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * A global outside the allow-list, read with `placeholders`: a class such as `__main__.LeukemiaNet` or
 * `torch.nn.modules.conv.Conv2d`. It is a name and nothing else: instantiating it (NEWOBJ) or applying it
 * (REDUCE) only records a `PickleObject`; no code of the class ever runs.
 */
export class PickleClass {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/**
 * An instance of a placeholder class: what `cls.__new__(cls, *args)` (NEWOBJ) or `cls(*args)` (REDUCE)
 * would have built, as data. `state` is what BUILD would have passed to `__setstate__` — for a
 * `torch.nn.Module`, its `__dict__` with `_parameters`, `_buffers` and `_modules`.
 */
export class PickleObject {
  state: PickleValue | undefined;
  constructor(
    readonly cls: PickleClass,
    readonly args: readonly PickleValue[],
  ) {}
}

/** A Python tuple (kept apart from lists so that APPEND to a tuple is rejected, as Python does). */
export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A dict or OrderedDict, in insertion order. `state` is what BUILD gave it (OrderedDict's `__dict__`, e.g. `_metadata`). */
export class PickleDict extends Map<PickleValue, PickleValue> {
  state: PickleValue | undefined;
}

/** Base class of values the caller's hooks create (e.g. storage and tensor references); the machine only passes them on. */
export abstract class PickleExtension {}

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleGlobal
  | PickleClass
  | PickleObject
  | PickleExtension;

/** A malformed or unsupported pickle; `file` and `offset` say where. */
export class PickleError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'PickleError';
  }
}

/** A pickle that references a global outside the allow-list; nothing in it was executed. */
export class UnsafePickleError extends PickleError {
  constructor(
    file: string,
    offset: number,
    readonly global: string,
  ) {
    super(file, offset, '');
    this.name = 'UnsafePickleError';
    this.message = unsafeGlobalMessage(file, global);
  }
}

function unsafeGlobalMessage(file: string, global: string): string {
  if (!KNOWN_DANGEROUS.has(global) && /^(torch|torchvision|__torch__)\./.test(global)) {
    return (
      `refusing to load ${file}: it references ${global}, which a plain weights file (a state_dict saved with ` +
      `torch.save) does not use; a pickled model object can only be loaded by running its code. ` +
      `Re-save the weights with torch.save(model.state_dict(), path).`
    );
  }
  return `refusing to load ${file}: it references ${global}, which a weights file never needs; this file may be malicious. Nothing in it was executed.`;
}

export interface UnpickleOptions {
  /** Named in every error. */
  file: string;
  /** Where the pickle starts in `bytes` (legacy PyTorch files hold several pickles back to back). */
  offset?: number;
  /** BINPERSID: resolves a persistent id (PyTorch: `('storage', type, key, location, numel)`). */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /**
   * REDUCE on an allowed global other than OrderedDict and torch.Size. Must build a value from `args`
   * without calling anything named by the file; throw to reject.
   */
  reduce?: (callable: PickleGlobal, args: readonly PickleValue[]) => PickleValue;
  /**
   * Read pickled objects structurally: a global outside the allow-list becomes an inert `PickleClass`
   * (unless it is in a namespace that only hostile files name, such as `os` or `subprocess`, which is
   * refused as before), and NEWOBJ/REDUCE/BUILD on it record a `PickleObject`. For whole-model files
   * (`torch.save(model)`), whose parameters are then read from the module tree's state.
   */
  placeholders?: boolean;
}

export interface UnpickleResult {
  value: PickleValue;
  /** Offset just past the STOP opcode. */
  end: number;
}

/** Every opcode of pickle protocols 0–5, for messages about opcodes this reader does not accept. */
const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK',
  0x2e: 'STOP',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4c: 'LONG',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x58: 'BINUNICODE',
  0x61: 'APPEND',
  0x62: 'BUILD',
  0x63: 'GLOBAL',
  0x64: 'DICT',
  0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS',
  0x67: 'GET',
  0x68: 'BINGET',
  0x69: 'INST',
  0x6a: 'LONG_BINGET',
  0x6c: 'LIST',
  0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS',
  0x47: 'BINFLOAT',
  0x80: 'PROTO',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8b: 'LONG4',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

const HIGHEST_PROTOCOL = 5;
/** Python ints in a weights file are sizes, strides and counts; a longer LONG is a corrupt length, not data. */
const MAX_LONG_BYTES = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** One stack frame per MARK: the values pushed since the mark sit on a fresh stack, as in CPython. */
class Machine {
  private position: number;
  private stack: PickleValue[] = [];
  private readonly metastack: PickleValue[][] = [];
  private readonly memo = new Map<number, PickleValue>();
  private readonly view: DataView;
  /** Offset of the opcode being executed, for messages. */
  private opcodeAt = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.position = options.offset ?? 0;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(problem: string, at = this.opcodeAt): never {
    throw new PickleError(this.options.file, at, `${problem} (pickle byte ${at})`);
  }

  private take(count: number, what: string): number {
    const at = this.position;
    if (count > this.bytes.length - at) {
      this.fail(`truncated: ${what} needs ${count} bytes at byte ${at} but only ${this.bytes.length - at} remain`);
    }
    this.position += count;
    return at;
  }

  private u8(what: string): number {
    return this.bytes[this.take(1, what)];
  }

  private u16(what: string): number {
    return this.view.getUint16(this.take(2, what), true);
  }

  private u32(what: string): number {
    return this.view.getUint32(this.take(4, what), true);
  }

  private u64(what: string): number {
    const value = this.view.getBigUint64(this.take(8, what), true);
    // Anything past 2^53 is longer than any file this reader can hold; take() then reports the truncation.
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
  }

  private slice(count: number, what: string): Uint8Array {
    const at = this.take(count, what);
    return this.bytes.subarray(at, at + count);
  }

  private text(count: number, what: string): string {
    const raw = this.slice(count, what);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail(`${what} is not valid UTF-8`);
    }
  }

  /** A newline-terminated line (GLOBAL's operands), without the newline. */
  private line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) this.fail(`truncated: ${what} has no terminating newline`);
    const value = this.text(end - this.position, what);
    this.position++; // the newline
    return value;
  }

  private push(value: PickleValue): void {
    this.stack.push(value);
  }

  private pop(): PickleValue {
    if (this.stack.length === 0) this.fail('stack underflow: an opcode needs a value that is not there');
    return this.stack.pop()!;
  }

  private top(): PickleValue {
    if (this.stack.length === 0) this.fail('stack underflow: an opcode needs a value that is not there');
    return this.stack[this.stack.length - 1];
  }

  /** The values pushed since the last MARK, restoring the stack below it. */
  private popMark(): PickleValue[] {
    const items = this.stack;
    const below = this.metastack.pop();
    if (!below) this.fail('an opcode needs a MARK that is not there');
    this.stack = below;
    return items;
  }

  private memoGet(index: number): PickleValue {
    if (!this.memo.has(index)) this.fail(`memo entry ${index} is read before it is written`);
    return this.memo.get(index)!;
  }

  private memoPut(index: number): void {
    this.memo.set(index, this.top());
  }

  /** GLOBAL and STACK_GLOBAL: the allow-list is the only way a name becomes a value. */
  private global(module: string, name: string): PickleGlobal | PickleClass {
    const qualified = `${module}.${name}`;
    if (ALLOWED_GLOBALS.has(qualified)) return new PickleGlobal(module, name);
    if (this.options.placeholders && !isDenied(qualified)) return new PickleClass(module, name);
    throw new UnsafePickleError(this.options.file, this.opcodeAt, qualified);
  }

  private setItems(target: PickleValue, items: readonly PickleValue[]): void {
    if (!(target instanceof PickleDict)) this.fail(`SETITEM(S) on ${describe(target)}; only dicts take items`);
    if (items.length % 2 !== 0) this.fail('SETITEMS with an odd number of values after the MARK');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
  }

  private append(target: PickleValue, items: readonly PickleValue[]): void {
    if (!Array.isArray(target)) this.fail(`APPEND(S) on ${describe(target)}; only lists can be appended to`);
    for (const item of items) target.push(item); // not push(...items): a huge APPENDS would overflow the call stack
  }

  private long(length: number): number | bigint {
    if (length > MAX_LONG_BYTES) this.fail(`a ${length}-byte integer is not something a weights file holds`);
    const raw = this.slice(length, 'LONG');
    let value = 0n;
    for (let i = raw.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(raw[i]);
    // Two's complement, little-endian, as pickle's encode_long writes it.
    if (length > 0 && raw[length - 1] & 0x80) value -= 1n << BigInt(8 * length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private reduce(callable: PickleValue, args: PickleValue): PickleValue {
    if (callable instanceof PickleClass) {
      if (!(args instanceof PickleTuple)) this.fail(`REDUCE of ${callable.qualifiedName} without an argument tuple`);
      // set([...]) and frozenset([...]) as lists; anything else is recorded, never applied.
      if (SAFE_BUILTINS.has(callable.qualifiedName) && /set$/.test(callable.name)) {
        const [items] = args.items;
        return Array.isArray(items) ? [...items] : [];
      }
      return new PickleObject(callable, args.items);
    }
    if (!(callable instanceof PickleGlobal))
      this.fail(`REDUCE calls ${describe(callable)}, which is not an allowed global`);
    if (!(args instanceof PickleTuple))
      this.fail(`REDUCE of ${callable.qualifiedName} with ${describe(args)} instead of an argument tuple`);
    switch (callable.qualifiedName) {
      case 'collections.OrderedDict':
        return this.orderedDict(args.items);
      case 'torch.Size': {
        const [dims] = args.items;
        if (args.items.length !== 1 || !(dims instanceof PickleTuple || Array.isArray(dims)))
          this.fail('torch.Size takes one tuple of sizes');
        return new PickleTuple(dims instanceof PickleTuple ? dims.items : dims);
      }
      default:
        if (!this.options.reduce) this.fail(`${callable.qualifiedName} cannot be applied here`);
        return this.options.reduce(callable, args.items);
    }
  }

  /** `OrderedDict()` or `OrderedDict([(key, value), …])`. */
  private orderedDict(args: readonly PickleValue[]): PickleDict {
    const dict = new PickleDict();
    if (args.length === 0) return dict;
    const [pairs] = args;
    if (args.length > 1 || !Array.isArray(pairs)) this.fail('OrderedDict takes at most one list of pairs');
    for (const pair of pairs) {
      const items = pair instanceof PickleTuple ? pair.items : Array.isArray(pair) ? pair : [];
      if (items.length !== 2) this.fail('OrderedDict initialiser holds something other than (key, value) pairs');
      dict.set(items[0], items[1]);
    }
    return dict;
  }

  run(): UnpickleResult {
    for (;;) {
      this.opcodeAt = this.position;
      if (this.position >= this.bytes.length) this.fail('truncated: the pickle ends without a STOP opcode');
      const opcode = this.bytes[this.position++];
      switch (opcode) {
        case 0x80: {
          // PROTO
          const protocol = this.u8('PROTO');
          if (protocol > HIGHEST_PROTOCOL)
            this.fail(`pickle protocol ${protocol} is newer than ${HIGHEST_PROTOCOL}, the newest this reader knows`);
          break;
        }
        case 0x95: // FRAME: only a read-ahead hint; the opcodes inside are read as usual
          this.u64('FRAME');
          break;
        case 0x2e: // STOP
          return { value: this.pop(), end: this.position };

        case 0x28: // MARK
          this.metastack.push(this.stack);
          this.stack = [];
          break;
        case 0x30: // POP
          this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.push(this.top());
          break;

        case 0x4e: // NONE
          this.push(null);
          break;
        case 0x88: // NEWTRUE
          this.push(true);
          break;
        case 0x89: // NEWFALSE
          this.push(false);
          break;
        case 0x4a: // BININT
          this.push(this.view.getInt32(this.take(4, 'BININT'), true));
          break;
        case 0x4b: // BININT1
          this.push(this.u8('BININT1'));
          break;
        case 0x4d: // BININT2
          this.push(this.u16('BININT2'));
          break;
        case 0x8a: // LONG1
          this.push(this.long(this.u8('LONG1')));
          break;
        case 0x8b: // LONG4
          this.push(this.long(this.u32('LONG4')));
          break;
        case 0x47: // BINFLOAT: big-endian, unlike everything else in pickle
          this.push(this.view.getFloat64(this.take(8, 'BINFLOAT'), false));
          break;

        case 0x8c: // SHORT_BINUNICODE
          this.push(this.text(this.u8('SHORT_BINUNICODE'), 'SHORT_BINUNICODE'));
          break;
        case 0x58: // BINUNICODE
          this.push(this.text(this.u32('BINUNICODE'), 'BINUNICODE'));
          break;
        case 0x8d: // BINUNICODE8
          this.push(this.text(this.u64('BINUNICODE8'), 'BINUNICODE8'));
          break;
        // Python 2 str; torch.load decodes them as UTF-8 (its default `encoding`).
        case 0x55: // SHORT_BINSTRING
          this.push(this.text(this.u8('SHORT_BINSTRING'), 'SHORT_BINSTRING'));
          break;
        case 0x54: {
          // BINSTRING
          const length = this.view.getInt32(this.take(4, 'BINSTRING'), true);
          if (length < 0) this.fail('BINSTRING with a negative length');
          this.push(this.text(length, 'BINSTRING'));
          break;
        }
        case 0x43: // SHORT_BINBYTES
          this.push(this.slice(this.u8('SHORT_BINBYTES'), 'SHORT_BINBYTES'));
          break;
        case 0x42: // BINBYTES
          this.push(this.slice(this.u32('BINBYTES'), 'BINBYTES'));
          break;
        case 0x8e: // BINBYTES8
          this.push(this.slice(this.u64('BINBYTES8'), 'BINBYTES8'));
          break;
        case 0x96: // BYTEARRAY8
          this.push(this.slice(this.u64('BYTEARRAY8'), 'BYTEARRAY8'));
          break;

        case 0x7d: // EMPTY_DICT
          this.push(new PickleDict());
          break;
        case 0x64: {
          // DICT
          const dict = new PickleDict();
          this.setItems(dict, this.popMark());
          this.push(dict);
          break;
        }
        case 0x5d: // EMPTY_LIST
          this.push([]);
          break;
        case 0x6c: // LIST
          this.push(this.popMark());
          break;
        case 0x29: // EMPTY_TUPLE
          this.push(new PickleTuple([]));
          break;
        case 0x74: // TUPLE
          this.push(new PickleTuple(this.popMark()));
          break;
        case 0x85: // TUPLE1
        case 0x86: // TUPLE2
        case 0x87: {
          // TUPLE3
          const count = opcode - 0x84;
          const items: PickleValue[] = [];
          for (let i = 0; i < count; i++) items.unshift(this.pop());
          this.push(new PickleTuple(items));
          break;
        }
        case 0x73: {
          // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.setItems(this.top(), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.setItems(this.top(), items);
          break;
        }
        case 0x61: {
          // APPEND
          const value = this.pop();
          this.append(this.top(), [value]);
          break;
        }
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          this.append(this.top(), items);
          break;
        }

        case 0x71: // BINPUT
          this.memoPut(this.u8('BINPUT'));
          break;
        case 0x72: // LONG_BINPUT
          this.memoPut(this.u32('LONG_BINPUT'));
          break;
        case 0x94: // MEMOIZE
          this.memoPut(this.memo.size);
          break;
        case 0x68: // BINGET
          this.push(this.memoGet(this.u8('BINGET')));
          break;
        case 0x6a: // LONG_BINGET
          this.push(this.memoGet(this.u32('LONG_BINGET')));
          break;

        case 0x63: {
          // GLOBAL
          const module = this.line('GLOBAL module');
          const name = this.line('GLOBAL name');
          this.push(this.global(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string')
            this.fail('STACK_GLOBAL needs a module and a name string');
          this.push(this.global(module, name));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          this.push(this.reduce(callable, args));
          break;
        }
        case 0x81: {
          // NEWOBJ: cls.__new__(cls, *args); the only class a state dict instantiates this way is OrderedDict
          const args = this.pop();
          const cls = this.pop();
          if (cls instanceof PickleClass && args instanceof PickleTuple) {
            this.push(new PickleObject(cls, args.items));
            break;
          }
          if (
            !(cls instanceof PickleGlobal) ||
            cls.qualifiedName !== 'collections.OrderedDict' ||
            !(args instanceof PickleTuple)
          ) {
            this.fail(`NEWOBJ of ${describe(cls)} is not supported: a weights file only creates OrderedDicts this way`);
          }
          this.push(new PickleDict());
          break;
        }
        case 0x62: {
          // BUILD: __setstate__; only OrderedDict's attribute dict (state_dict()._metadata) is accepted
          const state = this.pop();
          const target = this.top();
          if (target instanceof PickleObject) {
            target.state = state;
            break;
          }
          if (!(target instanceof PickleDict))
            this.fail(`BUILD on ${describe(target)} is not supported: a weights file only sets attributes of dicts`);
          target.state = state;
          break;
        }
        case 0x92: {
          // NEWOBJ_EX: cls.__new__(cls, *args, **kwargs), protocol 4; only for placeholder classes
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(cls instanceof PickleClass) || !(args instanceof PickleTuple) || !(kwargs instanceof PickleDict))
            this.fail(`NEWOBJ_EX of ${describe(cls)} is not supported`);
          this.push(new PickleObject(cls, args.items));
          break;
        }
        case 0x8f: // EMPTY_SET, as a list
          this.push([]);
          break;
        case 0x90: {
          // ADDITEMS
          const items = this.popMark();
          this.append(this.top(), items);
          break;
        }
        case 0x91: // FROZENSET
          this.push(this.popMark());
          break;
        case 0x51: {
          // BINPERSID
          const pid = this.pop();
          if (!this.options.persistentLoad)
            this.fail('a persistent id appears, but this pickle is not expected to reference external data');
          this.push(this.options.persistentLoad(pid));
          break;
        }

        default: {
          const name = OPCODE_NAMES[opcode];
          const hex = `0x${opcode.toString(16).padStart(2, '0')}`;
          if (name) this.fail(`pickle opcode ${name} (${hex}) is not supported: PyTorch weights files do not use it`);
          this.fail(`unknown pickle opcode ${hex}: this is not a pickle, or it is corrupt`);
        }
      }
    }
  }
}

/** What a value is, for messages. */
export function describe(value: PickleValue): string {
  if (value === null) return 'None';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof PickleTuple) return `a ${value.items.length}-tuple`;
  if (value instanceof PickleDict) return 'a dict';
  if (value instanceof PickleGlobal || value instanceof PickleClass) return value.qualifiedName;
  if (value instanceof PickleObject) return `a ${value.cls.qualifiedName} object`;
  if (value instanceof PickleExtension) return value.constructor.name;
  const text = String(value);
  return `a ${typeof value} (${text.length > 60 ? `${text.slice(0, 60)}…` : text})`;
}

/** Runs the pickle at `options.offset` (default 0) up to its STOP opcode. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  return new Machine(bytes, options).run();
}
