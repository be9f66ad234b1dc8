import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { createResNet18, disposeModel, forward } from '../src/core/model/resnet18.js';
import { exportStateDict, loadStateDict } from '../src/core/model/stateDict.js';
import {
  ensureImagenetWeights,
  WeightsDownloadError,
  WEIGHTS_URL_ENV,
  WEIGHTS_SHA256_ENV,
  defaultWeightsCacheDir,
} from '../src/core/weights/imagenet.js';
import {
  PickleDict,
  PickleError,
  PickleTuple,
  UnsafePickleError,
  unpickle,
  type PickleValue,
} from '../src/core/weights/pickle.js';
import { PthError, decodePth, readPth } from '../src/core/weights/pth.js';
import { resolveWeights } from '../src/core/weights/resolveWeights.js';
import { writeSafetensors, type HostTensor } from '../src/core/weights/safetensors.js';
import { RANDOMISE_BATCHNORM_PY, referenceUnavailable, runPythonIfAvailable } from './helpers/python.js';

let workDir = '';

before(async () => {
  await tf.setBackend('wasm');
  workDir = await mkdtemp(join(tmpdir(), 'weights-test-'));
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Every Python run here (torch.save of two ResNet-18s and their references is the slowest) gets this long. */
const PYTHON_TIMEOUT_MS = 90_000;

// ---------------------------------------------------------------------------------------------------
// (a) The unpickler: hostile and broken pickles

/** Bytes from opcodes (numbers), raw text (latin-1 strings) and byte arrays. */
function bytesOf(...parts: (number | string | Uint8Array)[]): Uint8Array {
  return Buffer.concat(
    parts.map((part) =>
      typeof part === 'number' ? Uint8Array.of(part) : typeof part === 'string' ? Buffer.from(part, 'latin1') : part,
    ),
  );
}

/** BINUNICODE: 'X', little-endian u32 length, UTF-8. */
function unicode(text: string): Uint8Array {
  const utf8 = Buffer.from(text, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32LE(utf8.length);
  return bytesOf('X', length, utf8);
}

/** SHORT_BINUNICODE: 0x8c, one length byte, UTF-8 (what protocol 4 uses for STACK_GLOBAL operands). */
function shortUnicode(text: string): Uint8Array {
  const utf8 = Buffer.from(text, 'utf8');
  return bytesOf(0x8c, utf8.length, utf8);
}

const PROTO2 = bytesOf(0x80, 2);
const TUPLE1 = 0x85;
const REDUCE = 'R';
const STOP = '.';

interface Payload {
  name: string;
  global: string;
  bytes: Uint8Array;
  marker: string;
  /** Whether plain Python `pickle.loads` creates the marker synchronously (the proof that the payload is live). */
  liveInPython: boolean;
}

/** Hostile pickles, each of which would create its marker file if a real unpickler ran it. */
function payloads(folder: string): Payload[] {
  const marker = (name: string) => join(folder, `${name}.marker`);
  const touch = (name: string) => `touch '${marker(name)}'`;
  return [
    {
      name: 'os-system',
      global: 'os.system',
      marker: marker('os-system'),
      liveInPython: true,
      bytes: bytesOf(PROTO2, 'c', 'os\nsystem\n', unicode(touch('os-system')), TUPLE1, REDUCE, STOP),
    },
    {
      name: 'posix-system',
      global: 'posix.system',
      marker: marker('posix-system'),
      liveInPython: true,
      bytes: bytesOf(PROTO2, 'c', 'posix\nsystem\n', unicode(touch('posix-system')), TUPLE1, REDUCE, STOP),
    },
    {
      // Protocol 4 style: STACK_GLOBAL takes module and name from the stack.
      name: 'stack-global-eval',
      global: 'builtins.eval',
      marker: marker('stack-global-eval'),
      liveInPython: true,
      bytes: bytesOf(
        0x80,
        4,
        shortUnicode('builtins'),
        shortUnicode('eval'),
        0x93,
        unicode(`open(r'${marker('stack-global-eval')}', 'w').close()`),
        TUPLE1,
        REDUCE,
        STOP,
      ),
    },
    {
      // A valid-looking state dict whose second entry is the payload.
      name: 'nested',
      global: 'os.system',
      marker: marker('nested'),
      liveInPython: true,
      bytes: bytesOf(
        PROTO2,
        'c',
        'collections\nOrderedDict\n',
        ')',
        REDUCE,
        'q',
        0,
        '(',
        unicode('bn1.num_batches_tracked'),
        'K',
        3,
        unicode('conv1.weight'),
        'c',
        'os\nsystem\n',
        unicode(touch('nested')),
        TUPLE1,
        REDUCE,
        'u',
        STOP,
      ),
    },
    {
      name: 'popen',
      global: 'subprocess.Popen',
      marker: marker('popen'),
      liveInPython: false,
      bytes: bytesOf(
        PROTO2,
        'c',
        'subprocess\nPopen\n',
        ']',
        '(',
        unicode('touch'),
        unicode(marker('popen')),
        'e',
        TUPLE1,
        REDUCE,
        STOP,
      ),
    },
    {
      // torch's own loader of pickled storages runs an unrestricted torch.load on the embedded bytes.
      name: 'load-from-bytes',
      global: 'torch.storage._load_from_bytes',
      marker: marker('load-from-bytes'),
      liveInPython: false,
      bytes: bytesOf(PROTO2, 'c', 'torch.storage\n_load_from_bytes\n', 'C', 3, 'abc', TUPLE1, REDUCE, STOP),
    },
  ];
}

function assertUnsafe(run: () => unknown, global: string, file: string): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof UnsafePickleError, `expected an UnsafePickleError, got ${String(error)}`);
    assert.equal(error.global, global);
    assert.match(error.message, new RegExp(`^refusing to load ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.ok(error.message.includes(`references ${global}`), error.message);
    return true;
  });
}

test('pickle: globals outside the allow-list are refused by name and never executed', async (t) => {
  const folder = await mkdtemp(join(workDir, 'hostile-'));
  for (const payload of payloads(folder)) {
    assertUnsafe(() => unpickle(payload.bytes, { file: `${payload.name}.pkl` }), payload.global, `${payload.name}.pkl`);
    assert.ok(!existsSync(payload.marker), `${payload.name}: the marker must not exist`);
  }
  assert.match(
    (() => {
      try {
        unpickle(payloads(folder)[0].bytes, { file: 'evil.pth' });
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })(),
    /may be malicious/,
  );

  // The same bytes are live: Python's own pickle runs them and the markers appear.
  const live = payloads(folder).filter((payload) => payload.liveInPython);
  for (const payload of live) await writeFile(join(folder, `${payload.name}.pkl`), payload.bytes);
  const run = await runPythonIfAvailable(
    'import pickle, sys\nfor path in sys.argv[1:]:\n    pickle.loads(open(path, "rb").read())',
    live.map((payload) => join(folder, `${payload.name}.pkl`)),
    {
      timeoutMs: PYTHON_TIMEOUT_MS,
      purpose: 'that the hostile pickles are live',
    },
  );
  if ('unavailable' in run) return referenceUnavailable(t, run.unavailable);
  for (const payload of live)
    assert.ok(existsSync(payload.marker), `${payload.name}: plain Python pickle should have created the marker`);
});

test('pickle: a hostile data.pkl inside a .pth zip is refused naming the file', async (t) => {
  const folder = await mkdtemp(join(workDir, 'hostile-zip-'));
  const payload = payloads(folder)[0];
  const pickleFile = join(folder, 'data.pkl');
  const zipFile = join(folder, 'evil.pth');
  await writeFile(pickleFile, payload.bytes);
  // Built with the standard library's zipfile, like a real attacker's tool would.
  const run = await runPythonIfAvailable(
    'import sys, zipfile\nwith zipfile.ZipFile(sys.argv[2], "w") as z:\n    z.writestr("archive/data.pkl", open(sys.argv[1], "rb").read())\n    z.writestr("archive/version", "3\\n")',
    [pickleFile, zipFile],
    { timeoutMs: PYTHON_TIMEOUT_MS, purpose: 'hostile .pth zip' },
  );
  if ('unavailable' in run) return referenceUnavailable(t, run.unavailable);
  await assert.rejects(readPth(zipFile), (error: unknown) => {
    assert.ok(error instanceof UnsafePickleError);
    assert.equal(error.global, 'os.system');
    assert.ok(
      error.message.startsWith(`refusing to load ${zipFile} (archive/data.pkl): it references os.system`),
      error.message,
    );
    return true;
  });
  assert.ok(!existsSync(payload.marker));
});

test('pickle: unknown and unsupported opcodes, truncation and malformed streams are errors', () => {
  const file = 'broken.pkl';
  const fails = (bytes: Uint8Array, pattern: RegExp) =>
    assert.throws(
      () => unpickle(bytes, { file }),
      (error: unknown) => {
        assert.ok(error instanceof PickleError && !(error instanceof UnsafePickleError), String(error));
        assert.match(error.message, /^broken\.pkl: /);
        assert.match(error.message, pattern);
        return true;
      },
    );
  fails(bytesOf(PROTO2, 0xff, STOP), /unknown pickle opcode 0xff/);
  fails(bytesOf(PROTO2, 'i', 'os\nsystem\n', STOP), /opcode INST \(0x69\) .*not supported/);
  fails(bytesOf(PROTO2, 0x82, 1, STOP), /opcode EXT1 .*not supported/);
  fails(bytesOf(0x80, 6, 'N', STOP), /protocol 6 is newer/);
  fails(bytesOf(PROTO2, 'h', 4, STOP), /memo entry 4 is read before it is written/);
  fails(bytesOf(PROTO2, 'N', ')', REDUCE, STOP), /REDUCE calls None/);
  fails(bytesOf(PROTO2, REDUCE, STOP), /stack underflow/);
  fails(bytesOf(PROTO2, 'u', STOP), /needs a MARK/);
  fails(bytesOf(PROTO2, ')', 'N', 'a', STOP), /APPEND\(S\) on a 0-tuple/);
  fails(bytesOf(PROTO2, 'Q', STOP), /stack underflow/);
  fails(bytesOf(PROTO2, 'N', 'Q', STOP), /persistent id appears/);

  // Every proper prefix of a valid pickle is rejected as truncated.
  const valid = bytesOf(
    PROTO2,
    'c',
    'collections\nOrderedDict\n',
    ')',
    REDUCE,
    'q',
    0,
    unicode('fc.bias'),
    'J',
    Buffer.from([0xfe, 0xff, 0xff, 0xff]),
    's',
    STOP,
  );
  const value = unpickle(valid, { file }).value;
  assert.ok(value instanceof PickleDict);
  assert.deepEqual([...value], [['fc.bias', -2]]);
  for (let length = 0; length < valid.length; length++) {
    fails(valid.subarray(0, length), /truncated|stack underflow/);
  }
});

/** A plain-data view of an unpickled value, for comparing with what Python prints. */
function plain(value: PickleValue): unknown {
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof PickleTuple) return { tuple: value.items.map(plain) };
  if (value instanceof PickleDict) return { dict: [...value].map(([k, v]) => [plain(k), plain(v)]) };
  return value;
}

test('pickle: Python-written plain data round-trips at protocols 2–5 (memo, frames, STACK_GLOBAL, longs, floats)', async (t) => {
  // Protocol 2 has no bytes opcode: Python writes bytes as a call of _codecs.encode, which is refused like any
  // other function (torch.save uses protocol 2, and a state dict holds no bytes).
  const script = String.raw`
import collections, pickle, sys
shared = [1, 2]
data = {'ints': [0, 255, 65535, -1, -2**31, 2**31, 2**40, -(2**70), 2**64], 'floats': [1.5, -0.0, 1e300],
        'consts': (None, True, False), 'text': 'ünïcode ✓', 'bytes': b'\x00\xff', 'empty': ((), [], {}),
        'shared': (shared, shared), 'od': collections.OrderedDict([('b', 1), ('a', 2)]), 'long_text': 'x' * 300}
for protocol in range(2, 6):
    sys.stdout.buffer.write(pickle.dumps(data, protocol=protocol).hex().encode() + b'\n')
`;
  const run = await runPythonIfAvailable(script, [], { timeoutMs: PYTHON_TIMEOUT_MS, purpose: 'pickle protocols' });
  if ('unavailable' in run) return referenceUnavailable(t, run.unavailable);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines.length, 4);
  const dict = (pairs: [unknown, unknown][]) => ({ dict: pairs });
  const expected = dict([
    ['ints', [0, 255, 65535, -1, -(2 ** 31), 2 ** 31, 2 ** 40, `${-(2n ** 70n)}n`, `${2n ** 64n}n`]],
    ['floats', [1.5, -0, 1e300]],
    ['consts', { tuple: [null, true, false] }],
    ['text', 'ünïcode ✓'],
    ['bytes', { bytes: [0, 255] }],
    ['empty', { tuple: [{ tuple: [] }, [], dict([])] }],
    [
      'shared',
      {
        tuple: [
          [1, 2],
          [1, 2],
        ],
      },
    ],
    [
      'od',
      dict([
        ['b', 1],
        ['a', 2],
      ]),
    ],
    ['long_text', 'x'.repeat(300)],
  ]);
  assertUnsafe(() => unpickle(Buffer.from(lines[0], 'hex'), { file: 'protocol-2' }), '_codecs.encode', 'protocol-2');
  for (const [index, hex] of lines.entries()) {
    if (index === 0) continue;
    const value = unpickle(Buffer.from(hex, 'hex'), { file: `protocol-${index + 2}` }).value;
    assert.deepEqual(plain(value), expected, `protocol ${index + 2}`);
    const shared = (value as PickleDict).get('shared') as PickleTuple;
    assert.equal(shared.items[0], shared.items[1], `protocol ${index + 2}: the memo keeps one shared list`);
  }
});

// ---------------------------------------------------------------------------------------------------
// (b) Real torch.save files against PyTorch

/**
 * Writes .pth files with torch.save (state dicts of seeded torchvision ResNet-18s with randomised BatchNorm
 * statistics, a fp16 copy, a DataParallel one, a dict of every dtype and of non-contiguous views, legacy,
 * re-zipped with deflate, nested in checkpoint dicts, a whole pickled model) plus the reference values:
 * every tensor's row-major elements as little-endian float32 (floating dtypes) or int64 (the others) in
 * reference.bin, indexed by manifest.json.
 */
const PYTORCH_SCRIPT = String.raw`
import collections, json, sys, zipfile
import torch, torchvision
${RANDOMISE_BATCHNORM_PY}

assert sys.byteorder == 'little'
torch.set_num_threads(1)
folder = sys.argv[1]
manifest = {}
reference = open(folder + '/reference.bin', 'wb')

def record(group, tensors):
    entries = {}
    for name, t in tensors.items():
        floating = t.is_floating_point()
        raw = t.detach().to(torch.float32 if floating else torch.int64).contiguous().numpy().tobytes()
        entries[name] = {'shape': list(t.shape), 'dtype': 'float32' if floating else 'int64', 'offset': reference.tell(), 'length': len(raw)}
        reference.write(raw)
    manifest[group] = entries

torch.manual_seed(20240607)
three = randomise_batchnorm(torchvision.models.resnet18(num_classes=3), batches_tracked=3).eval()
thousand = randomise_batchnorm(torchvision.models.resnet18(), batches_tracked=3).eval()
state = three.state_dict()
torch.save(state, folder + '/resnet18-3.pth')
record('resnet18-3', state)
half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in state.items())
torch.save(half, folder + '/resnet18-3-half.pth')
record('resnet18-3-half', half)
torch.save(torch.nn.DataParallel(three).state_dict(), folder + '/resnet18-3-dataparallel.pth')
torch.save(thousand.state_dict(), folder + '/resnet18-1000.pth')
torch.save(three, folder + '/whole-model.pth')

images = torch.randn(2, 3, 224, 224)
captured = {}
thousand.avgpool.register_forward_hook(lambda module, inputs, output: captured.update(features=torch.flatten(output, 1)))
with torch.no_grad():
    logits = three(images)
    thousand(images)
record('outputs', {'images': images, 'logits3': logits, 'features1000': captured['features']})

base = torch.randn(4, 6)
mixed = collections.OrderedDict(
    float32=torch.randn(2, 3), float64=torch.randn(3, dtype=torch.float64) * 1e3,
    float16=torch.randn(5).half(), bfloat16=torch.randn(5).bfloat16(),
    special=torch.tensor([float('inf'), float('-inf'), -0.0, 1e-40, 3e38]),
    int64=torch.tensor([-(2 ** 40), 3, 0]), int32=torch.tensor([-5, 7], dtype=torch.int32),
    int16=torch.tensor([-300, 300], dtype=torch.int16), int8=torch.tensor([-128, 127], dtype=torch.int8),
    uint8=torch.tensor([0, 255], dtype=torch.uint8), bool=torch.tensor([True, False, True]),
    scalar=torch.tensor(2.5), empty=torch.zeros(0, 3),
    base=base, transposed=base.t(), every_other_column=base[:, 1::2], row=base[2], expanded=torch.randn(3, 1).expand(3, 4))
assert not mixed['transposed'].is_contiguous() and not mixed['every_other_column'].is_contiguous()
torch.save(mixed, folder + '/mixed.pth')
record('mixed', mixed)
torch.save(mixed, folder + '/mixed-legacy.pth', _use_new_zipfile_serialization=False)
# One non-empty storage: in mixed-legacy the storage order follows object ids, and the empty one may come last.
torch.save({'weight': torch.arange(16.0)}, folder + '/single-legacy.pth', _use_new_zipfile_serialization=False)
torch.save({'epoch': 3, 'model': mixed, 'optimizer': {'state': {}, 'param_groups': [{'lr': 0.1, 'params': [0, 1]}]}}, folder + '/checkpoint-model.pth')
torch.save({'epoch': 3, 'state_dict': mixed, 'best_accuracy': 0.9}, folder + '/checkpoint-state-dict.pth')
with zipfile.ZipFile(folder + '/mixed.pth') as source, zipfile.ZipFile(folder + '/mixed-deflated.pth', 'w', zipfile.ZIP_DEFLATED) as target:
    for name in source.namelist():
        target.writestr(name, source.read(name))
reloaded = torch.load(folder + '/mixed-deflated.pth')
assert all(torch.equal(reloaded[name], tensor) for name, tensor in mixed.items()), 'torch reads the deflated copy too'
json.dump(manifest, open(folder + '/manifest.json', 'w'))
`;

interface ReferenceEntry {
  shape: number[];
  dtype: 'float32' | 'int64';
  offset: number;
  length: number;
}

interface PyTorchFiles {
  folder: string;
  manifest: Record<string, Record<string, ReferenceEntry>>;
  bytes: Buffer;
}

let pytorchFiles: Promise<PyTorchFiles | string> | undefined;

/** The files, generated once per run, or the reason PyTorch is unavailable. */
function loadPyTorchFiles(): Promise<PyTorchFiles | string> {
  pytorchFiles ??= (async () => {
    const folder = await mkdtemp(join(workDir, 'pytorch-'));
    const run = await runPythonIfAvailable(PYTORCH_SCRIPT, [folder], {
      timeoutMs: PYTHON_TIMEOUT_MS,
      purpose: 'Reading torch.save files against PyTorch',
    });
    if ('unavailable' in run) return run.unavailable;
    return {
      folder,
      manifest: JSON.parse(await readFile(join(folder, 'manifest.json'), 'utf8')),
      bytes: await readFile(join(folder, 'reference.bin')),
    };
  })();
  return pytorchFiles;
}

function referenceFloats(files: PyTorchFiles, group: string, name: string): { shape: number[]; data: Float32Array } {
  const entry = files.manifest[group][name];
  // Copied into a fresh, 4-byte aligned buffer (Buffer's slice would share the file's).
  return {
    shape: entry.shape,
    data: new Float32Array(new Uint8Array(files.bytes.subarray(entry.offset, entry.offset + entry.length)).buffer),
  };
}

/** Same keys in the same order, same shapes and dtypes, and the same bits as PyTorch. */
function assertMatchesPyTorch(actual: Map<string, HostTensor>, files: PyTorchFiles, group: string, what: string): void {
  const expected = files.manifest[group];
  assert.deepEqual([...actual.keys()], Object.keys(expected), `${what}: keys in state_dict order`);
  for (const [name, entry] of Object.entries(expected)) {
    const tensor = actual.get(name)!;
    assert.deepEqual(tensor.shape, entry.shape, `${what}: ${name} shape`);
    assert.ok(
      entry.dtype === 'float32' ? tensor.data instanceof Float32Array : tensor.data instanceof BigInt64Array,
      `${what}: ${name} should be ${entry.dtype}`,
    );
    const bits = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    assert.ok(
      bits.equals(files.bytes.subarray(entry.offset, entry.offset + entry.length)),
      `${what}: ${name} differs from PyTorch`,
    );
  }
}

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

test('pth: torch.save files match PyTorch bit for bit (fp32, fp16, every dtype, strided views, legacy, deflate, DataParallel, nested)', async (t) => {
  const files = await loadPyTorchFiles();
  if (typeof files === 'string') return referenceUnavailable(t, files);
  const path = (name: string) => join(files.folder, name);
  assertMatchesPyTorch(await readPth(path('resnet18-3.pth')), files, 'resnet18-3', 'fp32 state dict');
  assertMatchesPyTorch(await readPth(path('resnet18-3-half.pth')), files, 'resnet18-3-half', 'fp16 state dict');
  assertMatchesPyTorch(
    await readPth(path('resnet18-3-dataparallel.pth')),
    files,
    'resnet18-3',
    'DataParallel state dict (module. stripped)',
  );
  for (const name of [
    'mixed.pth',
    'mixed-legacy.pth',
    'mixed-deflated.pth',
    'checkpoint-model.pth',
    'checkpoint-state-dict.pth',
  ]) {
    assertMatchesPyTorch(await readPth(path(name)), files, 'mixed', name);
  }
});

test('pth: a pickled whole model, truncated files and non-PyTorch files are refused with the reason', async (t) => {
  const files = await loadPyTorchFiles();
  if (typeof files === 'string') return referenceUnavailable(t, files);
  const path = (name: string) => join(files.folder, name);
  await assert.rejects(readPth(path('whole-model.pth')), (error: unknown) => {
    assert.ok(error instanceof UnsafePickleError);
    assert.match(error.global, /^torchvision\.models\.resnet\./);
    assert.match(error.message, /torch\.save\(model\.state_dict\(\), path\)/);
    return true;
  });
  const zip = await readFile(path('resnet18-3.pth'));
  assert.throws(
    () => decodePth(zip.subarray(0, zip.length - 100), 'cut.pth'),
    /cut\.pth: broken zip archive: no end-of-central-directory record/,
  );
  const legacy = await readFile(path('single-legacy.pth'));
  assert.throws(
    () => decodePth(legacy.subarray(0, legacy.length - 3), 'cut-legacy.pth'),
    /cut-legacy\.pth: legacy PyTorch format: truncated inside storage/,
  );
  assert.throws(
    () => decodePth(legacy.subarray(0, 200), 'cut-pickle.pth'),
    (error: unknown) => error instanceof PickleError && /truncated/.test(error.message),
  );
  // A zip whose records were cut out: the central directory points past the end.
  const centralDirectoryOnly = Buffer.concat([zip.subarray(0, 64), zip.subarray(zip.length - 40_000)]);
  assert.throws(() => decodePth(centralDirectoryOnly, 'hollow.pth'), PthError);
  assert.throws(() => decodePth(Buffer.from('hello'), 'hello.pth'), /hello\.pth: is not a PyTorch file/);
});

test("PyTorch parity: weights from .pth give PyTorch's logits (3 classes) and features (1000 → 2 classes, fc re-initialised)", async (t) => {
  const files = await loadPyTorchFiles();
  if (typeof files === 'string') return referenceUnavailable(t, files);
  const images = referenceFloats(files, 'outputs', 'images');
  const nhwc = () =>
    tf.transpose(
      tf.tensor4d(images.data, images.shape as [number, number, number, number]),
      [0, 2, 3, 1],
    ) as tf.Tensor4D;

  const three = createResNet18(3, 99);
  try {
    assert.equal(loadStateDict(three, await readPth(join(files.folder, 'resnet18-3.pth'))).headReinitialised, false);
    const logits = tf.tidy(() => forward(three, nhwc(), { training: false }).logits);
    const difference = maxAbsDifference(logits.dataSync(), referenceFloats(files, 'outputs', 'logits3').data);
    logits.dispose();
    t.diagnostic(`3 classes, 224 px: max |Δ logits| = ${difference.toExponential(2)}`);
    assert.ok(difference <= 1e-4, `logits differ by ${difference}`);
  } finally {
    disposeModel(three);
  }

  const two = createResNet18(2, 5);
  try {
    const dict = await readPth(join(files.folder, 'resnet18-1000.pth'));
    assert.throws(() => loadStateDict(two, dict), /checkpoint classifies 1000 classes/);
    assert.equal(loadStateDict(two, dict, { allowHeadMismatch: true, headSeed: 3 }).headReinitialised, true);
    for (const [name, tensor] of exportStateDict(two)) {
      if (name.startsWith('fc.')) continue;
      assert.deepEqual(tensor.data, dict.get(name)!.data, `${name} loaded unchanged`);
    }
    const fc = exportStateDict(two).get('fc.weight')!;
    assert.deepEqual(fc.shape, [2, 512]);
    assert.ok(
      (fc.data as Float32Array).every((value) => Math.abs(value) <= 1 / Math.sqrt(512)),
      'fc re-initialised like nn.Linear',
    );
    const features = tf.tidy(
      () => forward(two, nhwc(), { training: false, captureLayers: ['avgpool'] }).activations.avgpool,
    );
    const difference = maxAbsDifference(features.dataSync(), referenceFloats(files, 'outputs', 'features1000').data);
    features.dispose();
    t.diagnostic(`1000 → 2 classes, 224 px: max |Δ avgpool features| = ${difference.toExponential(2)}`);
    assert.ok(difference <= 1e-4, `features differ by ${difference}`);
  } finally {
    disposeModel(two);
  }
});

// ---------------------------------------------------------------------------------------------------
// (c) Download and resolveWeights

interface TestServer {
  origin: string;
  /** Requests per path. */
  requests: Map<string, number>;
  close: () => Promise<void>;
}

type Route = (request: http.IncomingMessage, response: http.ServerResponse) => void;

async function startServer(routes: Record<string, Route>): Promise<TestServer> {
  const requests = new Map<string, number>();
  const server = http.createServer((request, response) => {
    const pathname = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
    requests.set(pathname, (requests.get(pathname) ?? 0) + 1);
    const route = routes[pathname];
    if (route) route(request, response);
    else response.writeHead(404).end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function serve(body: Uint8Array): Route {
  return (_request, response) =>
    response.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body);
}

const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

test('download: streamed with progress, verified by the SHA-256 prefix in its name, cached, redirects followed', async () => {
  const body = randomBytes(300_000);
  const fileName = `fake-${sha256Hex(body).slice(0, 8)}.pth`;
  const corrupt = Buffer.from(body);
  corrupt[1234] ^= 0xff;
  const server = await startServer({
    [`/files/${fileName}`]: serve(body),
    [`/corrupt/${fileName}`]: serve(corrupt),
    [`/redirect/${fileName}`]: (_request, response) =>
      response.writeHead(302, { location: `/files/${fileName}` }).end(),
    [`/insecure/${fileName}`]: (_request, response) =>
      response.writeHead(301, { location: `http://example.com/${fileName}` }).end(),
    [`/truncated/${fileName}`]: (_request, response) => {
      response.writeHead(200, { 'content-length': body.length });
      response.write(body.subarray(0, 1000), () => setTimeout(() => response.destroy(), 20));
    },
  });
  const root = await mkdtemp(join(workDir, 'download-'));
  const env = {
    [WEIGHTS_URL_ENV]: `${server.origin}/files/${fileName}`,
    [WEIGHTS_SHA256_ENV]: sha256Hex(body),
    TORCH_HOME: join(root, 'torch-home'),
  };
  try {
    const cacheDir = join(root, 'cache');
    const progress: [number, number | undefined][] = [];
    const first = await ensureImagenetWeights({
      env,
      cacheDir,
      onProgress: (bytes, total) => progress.push([bytes, total]),
    });
    assert.equal(first.downloaded, true);
    assert.equal(first.file, join(cacheDir, fileName));
    assert.equal(first.sha256, sha256Hex(body));
    assert.ok((await readFile(first.file)).equals(body));
    assert.deepEqual(progress.at(-1), [body.length, body.length]);
    assert.ok(
      progress.every(([bytes], i) => i === 0 || bytes >= progress[i - 1][0]),
      'progress never goes back',
    );
    assert.deepEqual(await readdir(cacheDir), [fileName], 'no temporary file left behind');

    const second = await ensureImagenetWeights({
      env,
      cacheDir,
      onProgress: () => assert.fail('no download expected'),
    });
    assert.deepEqual(second, { ...first, downloaded: false });
    assert.equal(server.requests.get(`/files/${fileName}`), 1, 'the cached copy is used without a request');

    for (const [route, problem] of [
      ['corrupt', /downloaded file is corrupt: its SHA-256 is [0-9a-f]{64}, not [0-9a-f]{64}/],
      ['truncated', /download broke off/],
    ] as const) {
      const emptyCache = join(root, `cache-${route}`);
      await assert.rejects(
        ensureImagenetWeights({ url: `${server.origin}/${route}/${fileName}`, cacheDir: emptyCache, env }),
        (error: unknown) => {
          assert.ok(error instanceof WeightsDownloadError, String(error));
          assert.match(error.message, problem);
          assert.equal(error.expectedFile, join(emptyCache, fileName));
          return true;
        },
      );
      assert.deepEqual(await readdir(emptyCache), [], `${route}: nothing is left in the cache`);
    }

    const redirectCache = join(root, 'cache-redirect');
    const redirected = await ensureImagenetWeights({
      url: `${server.origin}/redirect/${fileName}`,
      cacheDir: redirectCache,
      env,
    });
    assert.equal(redirected.downloaded, true);
    assert.equal(redirected.file, join(redirectCache, fileName));
    assert.equal(server.requests.get(`/files/${fileName}`), 2);
    await assert.rejects(
      ensureImagenetWeights({
        url: `${server.origin}/insecure/${fileName}`,
        cacheDir: join(root, 'cache-insecure'),
        env,
      }),
      /only https URLs are allowed/,
    );

    // A verified copy in PyTorch's hub cache is used in place.
    const hubCopy = join(env.TORCH_HOME, 'hub', 'checkpoints', fileName);
    await mkdir(join(env.TORCH_HOME, 'hub', 'checkpoints'), { recursive: true });
    await copyFile(first.file, hubCopy);
    const fromHub = await ensureImagenetWeights({ env, cacheDir: join(root, 'cache-hub') });
    assert.deepEqual(fromHub, { file: hubCopy, sha256: first.sha256, downloaded: false });
    assert.equal(server.requests.get(`/files/${fileName}`), 2);
  } finally {
    await server.close();
  }
});

test('download: offline or unanswered fails fast, naming where to put which file and how to get it', async () => {
  const root = await mkdtemp(join(workDir, 'offline-'));
  const fileName = 'resnet18-f37072fd.pth';
  const closed = await startServer({});
  const closedOrigin = closed.origin;
  await closed.close();
  const hanging = await startServer({ [`/${fileName}`]: () => undefined });
  try {
    for (const [origin, connectTimeoutMs, reason] of [
      [closedOrigin, 15_000, /ECONNREFUSED/],
      [hanging.origin, 300, /no answer from 127\.0\.0\.1:\d+ within 0\.3 s/],
    ] as const) {
      const cacheDir = join(root, `cache-${connectTimeoutMs}`);
      const started = performance.now();
      await assert.rejects(
        ensureImagenetWeights({
          url: `${origin}/${fileName}`,
          cacheDir,
          connectTimeoutMs,
          env: { TORCH_HOME: join(root, 'torch') },
        }),
        (error: unknown) => {
          assert.ok(error instanceof WeightsDownloadError, String(error));
          const expected = join(cacheDir, fileName);
          assert.match(error.message, reason);
          assert.ok(error.message.includes(`curl -L -o "${expected}" ${origin}/${fileName}`), error.message);
          assert.ok(
            error.message.includes(
              `put it at ${expected} (file name ${fileName}; its SHA-256 must start with f37072fd)`,
            ),
            error.message,
          );
          return true;
        },
      );
      assert.ok(performance.now() - started < 5_000, 'fails fast');
      assert.deepEqual(await readdir(cacheDir), []);
    }
  } finally {
    await hanging.close();
  }
  await assert.rejects(
    ensureImagenetWeights({ url: 'http://127.0.0.1:1/weights.pth', cacheDir: root }),
    /carries no SHA-256 prefix of at least 8 hex digits/,
  );
  await assert.rejects(
    ensureImagenetWeights({ url: `http://example.com/${fileName}`, cacheDir: root }),
    /only https URLs are allowed/,
  );
  assert.equal(
    defaultWeightsCacheDir({ XDG_CACHE_HOME: '/x/cache' }, 'linux'),
    join('/x/cache', 'leukemia-audit', 'weights'),
  );
});

test('resolveWeights: none, run folders and files recognised by content, imagenet through the cache', async (t) => {
  const root = await mkdtemp(join(workDir, 'resolve-'));
  assert.equal(await resolveWeights('none', { numClasses: 2 }), undefined);
  await assert.rejects(resolveWeights(join(root, 'missing'), { numClasses: 2 }), /no such file or folder/);
  await assert.rejects(resolveWeights(root, { numClasses: 2 }), /is a folder without model\.safetensors/);
  await writeFile(join(root, 'notes.txt'), 'not weights');
  await assert.rejects(
    resolveWeights(join(root, 'notes.txt'), { numClasses: 2 }),
    /neither a PyTorch file \(torch\.save\) nor a safetensors file/,
  );

  // A run folder's model.safetensors (no run.json: copied weights), and the same file under a misleading name.
  const run = join(root, 'run');
  const three = createResNet18(3, 4);
  const threeDict = exportStateDict(three);
  disposeModel(three);
  await writeSafetensors(join(run, 'model.safetensors'), threeDict);
  const fromRun = await resolveWeights(run, { numClasses: 2 });
  assert.ok(fromRun);
  assert.deepEqual([...fromRun.dict.keys()], [...threeDict.keys()]);
  assert.deepEqual(fromRun.dict.get('fc.bias')!.data, threeDict.get('fc.bias')!.data);
  assert.equal(fromRun.checkpointClasses, 3);
  assert.equal(fromRun.headMismatch, true);
  assert.equal(fromRun.sha256, sha256Hex(await readFile(join(run, 'model.safetensors'))));
  await copyFile(join(run, 'model.safetensors'), join(root, 'actually-safetensors.pth'));
  assert.match(
    (await resolveWeights(join(root, 'actually-safetensors.pth'), { numClasses: 3 }))!.source,
    /actually-safetensors\.pth: ResNet-18 — safetensors state dict; torchvision keys; classifier "fc" with 3 outputs/,
  );
  assert.equal((await resolveWeights(join(root, 'actually-safetensors.pth'), { numClasses: 3 }))!.headMismatch, false);

  const files = await loadPyTorchFiles();
  if (typeof files === 'string') return referenceUnavailable(t, files);
  await copyFile(join(files.folder, 'resnet18-3.pth'), join(root, 'weights.bin'));
  const fromPth = await resolveWeights(join(root, 'weights.bin'), { numClasses: 3 });
  assert.match(
    fromPth!.source,
    /weights\.bin: ResNet-18 — PyTorch state dict; torchvision keys; classifier "fc" with 3 outputs/,
  );
  assertMatchesPyTorch(fromPth!.dict, files, 'resnet18-3', 'weights.bin');

  // `imagenet`, with the URL overridden to serve a 1000-class file named by torchvision's convention.
  const imagenetLike = await readFile(join(files.folder, 'resnet18-1000.pth'));
  const fileName = `resnet18-${sha256Hex(imagenetLike).slice(0, 8)}.pth`;
  const server = await startServer({ [`/models/${fileName}`]: serve(imagenetLike) });
  try {
    const options = {
      numClasses: 2,
      cacheDir: join(root, 'cache'),
      env: {
        [WEIGHTS_URL_ENV]: `${server.origin}/models/${fileName}`,
        [WEIGHTS_SHA256_ENV]: sha256Hex(imagenetLike),
        TORCH_HOME: join(root, 'torch'),
      },
    };
    let progressCalls = 0;
    const imagenet = await resolveWeights('imagenet', { ...options, onProgress: () => progressCalls++ });
    assert.ok(imagenet && progressCalls > 0);
    assert.equal(imagenet.sha256, sha256Hex(imagenetLike));
    assert.equal(imagenet.checkpointClasses, 1000);
    assert.equal(imagenet.headMismatch, true);
    assert.equal(imagenet.dict.size, 122);
    assert.match(imagenet.source, /^ImageNet \(torchvision resnet18-[0-9a-f]{8}\.pth, downloaded\) from /);
    const again = await resolveWeights('imagenet', options);
    assert.doesNotMatch(again!.source, /downloaded/);
    assert.equal(server.requests.get(`/models/${fileName}`), 1);
  } finally {
    await server.close();
  }
});
