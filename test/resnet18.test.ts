import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import {
  countParameters,
  createResNet18,
  disposeModel,
  forward,
  forwardFrom,
  fromTorchLayout,
  toTorchLayout,
  trainableVariables,
  type ResNet18Params,
} from '../src/core/model/resnet18.js';
import { exportStateDict, loadStateDict, type StateDict } from '../src/core/model/stateDict.js';
import {
  SafetensorsError,
  decodeSafetensors,
  encodeSafetensors,
  int64ToNumbers,
  readSafetensors,
  writeSafetensors,
  type HostTensor,
  type SafetensorsContents,
} from '../src/core/weights/safetensors.js';
import {
  RANDOMISE_BATCHNORM_PY,
  SAFETENSORS_PY,
  referenceUnavailable,
  runPython,
  runPythonIfAvailable,
} from './helpers/python.js';

let workDir = '';

before(async () => {
  // Forward passes only need stock kernels, and wasm runs them several times faster than 'cpu'.
  await tf.setBackend('wasm');
  workDir = await mkdtemp(join(tmpdir(), 'resnet18-test-'));
});

after(async () => {
  await rm(workDir, { recursive: true, force: true });
});

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'compared arrays differ in length');
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

function maxAbs(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i]));
  return max;
}

function floatsOf(tensor: HostTensor | undefined, name: string): Float32Array {
  assert.ok(tensor && tensor.data instanceof Float32Array, `${name} should be a float tensor`);
  return tensor.data;
}

/** PyTorch's NCHW images as the NHWC tensor tfjs convolutions expect. */
function nhwcFromNchw(tensor: HostTensor): tf.Tensor4D {
  return tf.tidy(() =>
    tf.transpose(
      tf.tensor4d(tensor.data as Float32Array, tensor.shape as [number, number, number, number]),
      [0, 2, 3, 1],
    ),
  );
}

function withModel<T>(numClasses: number, seed: number, body: (params: ResNet18Params) => T): T {
  const params = createResNet18(numClasses, seed);
  try {
    return body(params);
  } finally {
    disposeModel(params);
  }
}

// ---------------------------------------------------------------------------------------------------
// Architecture

test('parameter counts equal torchvision resnet18', () => {
  withModel(1000, 1, (params) => assert.equal(countParameters(params), 11_689_512));
  withModel(2, 1, (params) => {
    assert.equal(countParameters(params), 11_177_538);
    assert.equal(params.size, 122, 'state_dict of resnet18 has 122 entries');
  });
});

test('layer output sizes at 224 and 64 px', () => {
  withModel(2, 1, (params) => {
    const layers = ['conv1', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'layer4.1', 'avgpool'];
    const shapesAt = (size: number) =>
      tf.tidy(() => {
        const { logits, activations } = forward(params, tf.zeros([1, size, size, 3]), {
          training: false,
          captureLayers: layers,
        });
        return { logits: logits.shape, ...Object.fromEntries(layers.map((name) => [name, activations[name]?.shape])) };
      });
    assert.deepEqual(shapesAt(224), {
      logits: [1, 2],
      conv1: [1, 112, 112, 64],
      maxpool: [1, 56, 56, 64],
      layer1: [1, 56, 56, 64],
      layer2: [1, 28, 28, 128],
      layer3: [1, 14, 14, 256],
      layer4: [1, 7, 7, 512],
      'layer4.1': [1, 7, 7, 512],
      avgpool: [1, 512],
    });
    assert.deepEqual(shapesAt(64), {
      logits: [1, 2],
      conv1: [1, 32, 32, 64],
      maxpool: [1, 16, 16, 64],
      layer1: [1, 16, 16, 64],
      layer2: [1, 8, 8, 128],
      layer3: [1, 4, 4, 256],
      layer4: [1, 2, 2, 512],
      'layer4.1': [1, 2, 2, 512],
      avgpool: [1, 512],
    });
  });
});

test('tf.tidy around forward keeps the logits and captured activations and nothing else', () => {
  withModel(2, 1, (params) => {
    const tensorsBefore = tf.memory().numTensors;
    const result = tf.tidy(() =>
      forward(params, tf.zeros([2, 32, 32, 3]), { training: true, captureLayers: ['layer4.1'] }),
    );
    assert.ok(!result.activations['layer4.1'].isDisposed);
    assert.deepEqual(Object.keys(result.activations), ['layer4.1']);
    assert.equal(
      tf.memory().numTensors,
      tensorsBefore + 2,
      'only logits and layer4.1 survive (running stats replaced in place)',
    );
    tf.dispose(result);
  });
});

test('forwardFrom a cached layer3 or avgpool activation gives the same logits as forward', () => {
  withModel(2, 3, (params) =>
    tf.tidy(() => {
      const x = tf.randomNormal<tf.Rank.R4>([2, 64, 64, 3], 0, 1, 'float32', 7);
      const full = forward(params, x, { training: false, captureLayers: ['layer3', 'avgpool'] });
      const expected = full.logits.dataSync();
      for (const start of ['layer3', 'avgpool'] as const) {
        const resumed = forwardFrom(params, full.activations[start], start, { training: false });
        assert.ok(maxAbsDifference(resumed.logits.dataSync(), expected) < 1e-6, `resuming after ${start}`);
      }
      const features = full.activations.layer3;
      assert.throws(
        () => forwardFrom(params, features, 'layer3', { training: false, captureLayers: ['layer2'] }),
        /not computed when resuming after "layer3"/,
      );
      assert.throws(() => forward(params, x, { training: false, captureLayers: ['layer5'] }), /Unknown layer "layer5"/);
    }),
  );
});

test('trainableVariables: full, finetune (layer4 + fc) and linear (fc) never include BatchNorm buffers', () => {
  withModel(2, 1, (params) => {
    const namesOf = (variables: tf.Variable[]) =>
      variables.map((variable) => [...params].find(([, v]) => v === variable)![0]);
    const sizeOf = (variables: tf.Variable[]) => variables.reduce((sum, variable) => sum + variable.size, 0);
    const full = trainableVariables(params, 'full');
    const finetune = trainableVariables(params, 'finetune');
    const linear = trainableVariables(params, 'linear');
    assert.equal(full.length, 62); // 20 convolutions + 20 BatchNorm weight/bias pairs + fc weight and bias
    assert.equal(sizeOf(full), 11_177_538);
    assert.equal(sizeOf(finetune), 8_393_728 + 1_026);
    assert.deepEqual(namesOf(linear), ['fc.weight', 'fc.bias']);
    assert.ok(namesOf(finetune).every((name) => name.startsWith('layer4.') || name.startsWith('fc.')));
    assert.ok(namesOf(full).every((name) => !/running_|num_batches/.test(name)));
    assert.ok(full.every((variable) => variable.trainable));
    assert.ok(!params.get('bn1.running_mean')!.trainable);
  });
});

test('training mode normalises with batch statistics and updates running stats with the unbiased variance', () => {
  withModel(2, 5, (params) =>
    tf.tidy(() => {
      const x = tf.randomNormal<tf.Rank.R4>([2, 32, 32, 3], 0, 1, 'float32', 11);
      const conv1 = forward(params, x, { training: true, captureLayers: ['conv1'] }).activations.conv1;
      const { mean, variance } = tf.moments(conv1, [0, 1, 2]);
      const n = conv1.size / 64;
      const expectedMean = tf.mul(mean, 0.1).dataSync();
      const expectedVar = tf.add(0.9, tf.mul(variance, (0.1 * n) / (n - 1))).dataSync();
      assert.ok(maxAbsDifference(params.get('bn1.running_mean')!.dataSync(), expectedMean) < 1e-6);
      assert.ok(maxAbsDifference(params.get('bn1.running_var')!.dataSync(), expectedVar) < 1e-5);
      assert.equal(params.get('bn1.num_batches_tracked')!.dataSync()[0], 1);
    }),
  );
});

test('toTorchLayout and fromTorchLayout convert HWIO ↔ OIHW and [in, out] ↔ [out, in]', () => {
  tf.tidy(() => {
    const hwio = tf.randomUniform([3, 5, 2, 4]);
    const oihw = toTorchLayout(hwio);
    assert.deepEqual(oihw.shape, [4, 2, 3, 5]);
    assert.equal((oihw.arraySync() as number[][][][])[3][1][2][4], (hwio.arraySync() as number[][][][])[2][4][1][3]);
    assert.deepEqual(fromTorchLayout(oihw).dataSync(), hwio.dataSync());
    const inOut = tf.randomUniform([6, 2]);
    assert.deepEqual(toTorchLayout(inOut).shape, [2, 6]);
    assert.deepEqual(fromTorchLayout(toTorchLayout(inOut)).dataSync(), inOut.dataSync());
  });
});

// ---------------------------------------------------------------------------------------------------
// safetensors

/** A file from a literal header and data section, for tests that need malformed or unusual files. */
function craftFile(header: unknown, data: Uint8Array, headerLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function assertSafetensorsError(bytes: Uint8Array, pattern: RegExp, tensor?: string): void {
  assert.throws(
    () => decodeSafetensors(bytes, 'bad.safetensors'),
    (error: unknown) => {
      assert.ok(error instanceof SafetensorsError, `expected a SafetensorsError, got ${String(error)}`);
      assert.match(error.message, /^bad\.safetensors: /);
      assert.equal(error.tensor, tensor);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

test('safetensors: F32 and I64 round trip with metadata, scalars and empty tensors', () => {
  const tensors = new Map<string, HostTensor>([
    ['weight', { shape: [2, 3], data: Float32Array.from([1.5, -2, 3.25, 0, -0, 1e-30]) }],
    ['count', { shape: [], data: BigInt64Array.from([7n]) }],
    ['big', { shape: [2], data: BigInt64Array.from([-(2n ** 62n), 2n ** 62n]) }],
    ['empty', { shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const bytes = encodeSafetensors(tensors, { format: 'pt', note: 'ALL vs HEM' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(headerLength % 8, 0, 'data section is 8-byte aligned');
  const decoded = decodeSafetensors(bytes, 'memory');
  assert.deepEqual(decoded.metadata, { format: 'pt', note: 'ALL vs HEM' });
  assert.deepEqual([...decoded.tensors.keys()], [...tensors.keys()]);
  for (const [name, tensor] of tensors) {
    assert.deepEqual(decoded.tensors.get(name)?.shape, tensor.shape, name);
    assert.deepEqual(decoded.tensors.get(name)?.data, tensor.data, name);
  }
  assert.equal(decoded.tensors.get('count')?.storedDtype, 'I64');
  assert.deepEqual(int64ToNumbers(BigInt64Array.from([7n, -3n]), 'count'), [7, -3]);
  assert.throws(() => int64ToNumbers(BigInt64Array.from([2n ** 60n]), 'count'), /count: int64 value/);
});

test('safetensors: F16, BF16 and F64 are read as Float32', () => {
  const data = new Uint8Array(8 * 2 + 2 * 2 + 2 * 8);
  const view = new DataView(data.buffer);
  [0x3c00, 0xc000, 0x3800, 0x0001, 0x7c00, 0xfc00, 0x0000, 0x3555].forEach((bits, i) =>
    view.setUint16(2 * i, bits, true),
  );
  [0x3f80, 0xc040].forEach((bits, i) => view.setUint16(16 + 2 * i, bits, true));
  [0.1, -1e300].forEach((value, i) => view.setFloat64(20 + 8 * i, value, true));
  const decoded = decodeSafetensors(
    craftFile(
      {
        half: { dtype: 'F16', shape: [8], data_offsets: [0, 16] },
        brain: { dtype: 'BF16', shape: [2], data_offsets: [16, 20] },
        double: { dtype: 'F64', shape: [1, 2], data_offsets: [20, 36] },
      },
      data,
    ),
    'mixed.safetensors',
  );
  assert.deepEqual(Array.from(decoded.tensors.get('half')!.data as Float32Array), [
    1,
    -2,
    0.5,
    2 ** -24,
    Infinity,
    -Infinity,
    0,
    Math.fround(0.333251953125),
  ]);
  assert.deepEqual(Array.from(decoded.tensors.get('brain')!.data as Float32Array), [1, -3]);
  assert.deepEqual(Array.from(decoded.tensors.get('double')!.data as Float32Array), [Math.fround(0.1), -Infinity]);
  assert.equal(decoded.tensors.get('half')!.storedDtype, 'F16');
});

test('safetensors: malformed files are rejected with the file and tensor named', () => {
  const eightFloats = new Uint8Array(32);
  const tensor = (begin: number, end: number, shape = [(end - begin) / 4]) => ({
    dtype: 'F32',
    shape,
    data_offsets: [begin, end],
  });
  assertSafetensorsError(new Uint8Array(5), /too short/);
  assertSafetensorsError(craftFile({}, new Uint8Array(0), 10n ** 12n), /exceeds the 100000000-byte limit/);
  assertSafetensorsError(craftFile({}, new Uint8Array(0), 999n), /runs past the end/);
  const corrupt = craftFile({ w: tensor(0, 32) }, eightFloats);
  corrupt[8] = 0x5b; // '[' turns the header into invalid JSON
  assertSafetensorsError(corrupt, /header is not valid UTF-8 JSON/);
  assertSafetensorsError(craftFile([1, 2], new Uint8Array(0)), /header is not a JSON object/);
  assertSafetensorsError(
    craftFile({ w: tensor(0, 32), v: tensor(32, 64) }, eightFloats),
    /run past the 32-byte data section/,
    'v',
  );
  assertSafetensorsError(craftFile({ w: tensor(0, 32), v: tensor(16, 32) }, eightFloats), /overlap tensor "w"/, 'v');
  assertSafetensorsError(
    craftFile({ w: tensor(0, 16), v: tensor(20, 32) }, eightFloats),
    /bytes 16..20 .* belong to no tensor/,
    'v',
  );
  assertSafetensorsError(craftFile({ w: tensor(0, 16) }, eightFloats), /16 trailing bytes/);
  assertSafetensorsError(
    craftFile({ w: tensor(0, 32, [3, 3]) }, eightFloats),
    /shape \[3,3\] of F32 needs 36 bytes/,
    'w',
  );
  assertSafetensorsError(craftFile({ w: tensor(32, 0, [8]) }, eightFloats), /is not \[begin, end\]/, 'w');
  assertSafetensorsError(
    craftFile({ w: { ...tensor(0, 32), dtype: 'U8' } }, eightFloats),
    /unsupported dtype "U8"/,
    'w',
  );
  assertSafetensorsError(
    craftFile({ w: { ...tensor(0, 32), shape: [-8] } }, eightFloats),
    /is not a list of sizes/,
    'w',
  );
  assertSafetensorsError(
    craftFile({ __metadata__: { epoch: 3 }, w: tensor(0, 32) }, eightFloats),
    /__metadata__ value for "epoch"/,
  );
  assert.throws(
    () => encodeSafetensors(new Map([['w', { shape: [3], data: new Float32Array(2) }]])),
    /tensor "w": shape \[3\] does not hold the 2 values/,
  );
});

test('safetensors: writes atomically (no temporary file left) and reads back', async () => {
  const file = join(workDir, 'atomic.safetensors');
  const first = new Map([['a', { shape: [2], data: Float32Array.from([1, 2]) }]]);
  const second = new Map([['b', { shape: [1], data: Float32Array.from([3]) }]]);
  await writeSafetensors(file, first);
  await writeSafetensors(file, second, { step: '2' });
  assert.deepEqual(await readdir(workDir), ['atomic.safetensors']);
  const contents = await readSafetensors(file);
  assert.deepEqual([...contents.tensors.keys()], ['b']);
  assert.deepEqual(contents.metadata, { step: '2' });
  await rm(file);
});

// ---------------------------------------------------------------------------------------------------
// State dict

test('state dict: export → safetensors file → load reproduces every parameter and buffer', async () => {
  const file = join(workDir, 'roundtrip.safetensors');
  const source = createResNet18(2, 1);
  const target = createResNet18(2, 2);
  try {
    // One training-mode pass so running statistics and batch counts are not their initial values.
    tf.tidy(() => forward(source, tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 3), { training: true }));
    const exported = exportStateDict(source);
    assert.deepEqual([...exported.keys()], [...source.keys()]);
    assert.deepEqual(exported.get('conv1.weight')?.shape, [64, 3, 7, 7]);
    assert.deepEqual(exported.get('layer2.0.downsample.0.weight')?.shape, [128, 64, 1, 1]);
    assert.deepEqual(exported.get('fc.weight')?.shape, [2, 512]);
    assert.deepEqual(exported.get('bn1.num_batches_tracked'), { shape: [], data: BigInt64Array.from([1n]) });
    await writeSafetensors(file, exported, { format: 'pt' });
    const report = loadStateDict(target, (await readSafetensors(file)).tensors);
    assert.equal(report.headReinitialised, false);
    for (const [name, variable] of source) {
      assert.deepEqual(target.get(name)!.dataSync(), variable.dataSync(), name);
    }
  } finally {
    disposeModel(source);
    disposeModel(target);
  }
});

test('state dict: missing, unexpected and mismatched keys are all reported and nothing is loaded', () => {
  withModel(2, 1, (params) => {
    const dict: StateDict = exportStateDict(params);
    const before = params.get('layer1.0.bn1.weight')!.dataSync().slice();
    dict.delete('layer3.1.conv2.weight');
    dict.delete('bn1.num_batches_tracked'); // optional, as in PyTorch
    dict.set('module.extra', { shape: [1], data: new Float32Array(1) });
    dict.set('layer1.0.conv1.weight', { shape: [64, 64, 1, 3], data: new Float32Array(64 * 64 * 3) });
    dict.set('layer1.0.bn1.weight', { shape: [64], data: new Float32Array(64).fill(5) });
    assert.throws(
      () => loadStateDict(params, dict),
      (error: Error) => {
        assert.match(error.message, /missing keys: layer3\.1\.conv2\.weight;/);
        assert.match(error.message, /unexpected keys: module\.extra;/);
        assert.match(
          error.message,
          /layer1\.0\.conv1\.weight: checkpoint shape \[64,64,1,3\], model shape \[64,64,3,3\]/,
        );
        assert.doesNotMatch(error.message, /num_batches_tracked/);
        return true;
      },
    );
    assert.deepEqual(params.get('layer1.0.bn1.weight')!.dataSync(), before, 'a failed load changes nothing');
  });
});

test('state dict: another class count needs allowHeadMismatch, then keeps the backbone and re-initialises fc', () => {
  withModel(2, 1, (params) => {
    const dict = exportStateDict(params);
    dict.set('layer4.1.bn2.running_var', { shape: [512], data: new Float32Array(512).fill(4) });
    dict.set('fc.weight', { shape: [10, 512], data: new Float32Array(5120).fill(9) });
    dict.set('fc.bias', { shape: [10], data: new Float32Array(10).fill(9) });
    assert.throws(() => loadStateDict(params, dict), /checkpoint classifies 10 classes; allow a head mismatch/);
    const report = loadStateDict(params, dict, { allowHeadMismatch: true, headSeed: 4 });
    assert.equal(report.headReinitialised, true);
    assert.ok(
      params
        .get('layer4.1.bn2.running_var')!
        .dataSync()
        .every((value) => value === 4),
      'backbone loaded',
    );
    assert.deepEqual(params.get('fc.weight')!.shape, [512, 2]);
    const bound = 1 / Math.sqrt(512);
    for (const name of ['fc.weight', 'fc.bias']) {
      assert.ok(
        params
          .get(name)!
          .dataSync()
          .every((value) => Math.abs(value) <= bound),
        `${name} re-initialised like nn.Linear`,
      );
    }
    assert.ok(maxAbs(params.get('fc.weight')!.dataSync()) > bound * 0.99, 'fc.weight spans U(±1/sqrt(512))');
    dict.set('fc.bias', { shape: [3], data: new Float32Array(3) });
    assert.throws(
      () => loadStateDict(params, dict, { allowHeadMismatch: true }),
      /fc\.weight: checkpoint shape \[10,512\]/,
      'weight and bias must agree',
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Parity with PyTorch

/**
 * `generate`: a seeded torchvision resnet18(num_classes=2) with randomised BatchNorm affine parameters and
 * running statistics, inputs, eval logits + layer4 at 224 px, and training-mode logits + updated buffers at 64 px.
 * `check-export`: loads our exported file with load_state_dict(strict=True) and reports any tensor that differs
 * from the original weights plus the eval logits it gives.
 */
const PYTORCH_SCRIPT = String.raw`
import json, sys
import torch, torchvision
${SAFETENSORS_PY}
${RANDOMISE_BATCHNORM_PY}
torch.set_num_threads(1)
mode, folder = sys.argv[1], sys.argv[2]
if mode == 'generate':
    torch.manual_seed(20240601)
    model = randomise_batchnorm(torchvision.models.resnet18(num_classes=2), batches_tracked=3)
    save(folder + '/weights.safetensors', model.state_dict())
    input224 = torch.randn(2, 3, 224, 224)
    input64 = torch.randn(4, 3, 64, 64)
    captured = {}
    model.layer4.register_forward_hook(lambda module, inputs, output: captured.update(layer4=output))
    with torch.no_grad():
        logits224 = model.eval()(input224)
        layer4 = captured['layer4']
        train_logits64 = model.train()(input64)
    state = model.state_dict()
    buffers = {'after_train.' + name: state[name] for name in state if name.startswith(('bn1.', 'layer4.1.bn2.'))}
    save(folder + '/reference.safetensors', dict(input224=input224, logits224=logits224, layer4_224=layer4,
                                                 input64=input64, train_logits64=train_logits64, **buffers))
elif mode == 'check-export':
    exported = load(folder + '/exported.safetensors')
    original = load(folder + '/weights.safetensors')
    model = torchvision.models.resnet18(num_classes=2)
    model.load_state_dict(exported, strict=True)
    differing = [name for name in original if not torch.equal(original[name], exported[name])]
    with torch.no_grad():
        logits = model.eval()(load(folder + '/reference.safetensors')['input224'])
    print(json.dumps({'differing': differing, 'logits': logits.flatten().tolist()}))
`;

interface PyTorchReference {
  folder: string;
  weights: SafetensorsContents;
  reference: SafetensorsContents;
}

let pytorchReference: Promise<PyTorchReference | string> | undefined;

/** The PyTorch reference files, generated once per run, or the reason PyTorch is unavailable. */
function loadPyTorchReference(): Promise<PyTorchReference | string> {
  pytorchReference ??= (async () => {
    const folder = await mkdtemp(join(workDir, 'pytorch-'));
    const run = await runPythonIfAvailable(PYTORCH_SCRIPT, ['generate', folder], {
      timeoutMs: 60_000,
      purpose: 'PyTorch parity',
    });
    if ('unavailable' in run) return run.unavailable;
    return {
      folder,
      weights: await readSafetensors(join(folder, 'weights.safetensors')),
      reference: await readSafetensors(join(folder, 'reference.safetensors')),
    };
  })();
  return pytorchReference;
}

function loadPyTorchWeights(torch: PyTorchReference): ResNet18Params {
  const params = createResNet18(2, 99);
  loadStateDict(params, torch.weights.tensors);
  return params;
}

test('PyTorch parity: eval-mode logits and layer4 at 224 px; our export loads strictly in PyTorch', async (t) => {
  const torch = await loadPyTorchReference();
  if (typeof torch === 'string') return referenceUnavailable(t, torch);
  const reference = torch.reference.tensors;
  const params = loadPyTorchWeights(torch);
  try {
    assert.deepEqual([...params.keys()], [...torch.weights.tensors.keys()], 'same keys in state_dict order');
    const outputs = tf.tidy(() => {
      const result = forward(params, nhwcFromNchw(reference.get('input224')!), {
        training: false,
        captureLayers: ['layer4'],
      });
      // Back to NCHW to compare with PyTorch element by element.
      return { logits: result.logits, layer4: tf.transpose(result.activations.layer4, [0, 3, 1, 2]) };
    });
    const logits = outputs.logits.dataSync();
    const layer4 = outputs.layer4.dataSync();
    tf.dispose(outputs);
    const expectedLogits = floatsOf(reference.get('logits224'), 'logits224');
    const expectedLayer4 = floatsOf(reference.get('layer4_224'), 'layer4_224');
    const logitsDifference = maxAbsDifference(logits, expectedLogits);
    const layer4Difference = maxAbsDifference(layer4, expectedLayer4);
    t.diagnostic(
      `eval 224 px: max |Δ logits| = ${logitsDifference.toExponential(2)} (|logits| ≤ ${maxAbs(expectedLogits).toFixed(2)})`,
    );
    t.diagnostic(
      `eval 224 px: max |Δ layer4| = ${layer4Difference.toExponential(2)} (|layer4| ≤ ${maxAbs(expectedLayer4).toFixed(2)})`,
    );
    assert.ok(logitsDifference <= 1e-4, `logits differ by ${logitsDifference}`);
    assert.ok(layer4Difference <= 1e-4 * Math.max(1, maxAbs(expectedLayer4)), `layer4 differs by ${layer4Difference}`);

    await writeSafetensors(join(torch.folder, 'exported.safetensors'), exportStateDict(params), { format: 'pt' });
    const check = JSON.parse(
      await runPython(PYTORCH_SCRIPT, ['check-export', torch.folder], { timeoutMs: 60_000 }),
    ) as { differing: string[]; logits: number[] };
    assert.deepEqual(check.differing, [], 'exported tensors equal the PyTorch originals bit for bit');
    assert.deepEqual(check.logits, Array.from(expectedLogits), 'PyTorch gives the same logits from our export');
  } finally {
    disposeModel(params);
  }
});

test('PyTorch parity: training-mode logits and running-stat updates at 64 px', async (t) => {
  const torch = await loadPyTorchReference();
  if (typeof torch === 'string') return referenceUnavailable(t, torch);
  const reference = torch.reference.tensors;
  const params = loadPyTorchWeights(torch);
  try {
    const logitsTensor = tf.tidy(
      () => forward(params, nhwcFromNchw(reference.get('input64')!), { training: true }).logits,
    );
    const logits = logitsTensor.dataSync();
    logitsTensor.dispose();
    const logitsDifference = maxAbsDifference(logits, floatsOf(reference.get('train_logits64'), 'train_logits64'));
    t.diagnostic(`train 64 px: max |Δ logits| = ${logitsDifference.toExponential(2)}`);
    assert.ok(logitsDifference <= 1e-4, `training-mode logits differ by ${logitsDifference}`);
    for (const layer of ['bn1', 'layer4.1.bn2']) {
      for (const buffer of ['running_mean', 'running_var']) {
        const name = `${layer}.${buffer}`;
        const expected = floatsOf(reference.get(`after_train.${name}`), name);
        const difference = maxAbsDifference(params.get(name)!.dataSync(), expected);
        t.diagnostic(
          `train 64 px: max |Δ ${name}| = ${difference.toExponential(2)} (|${buffer}| ≤ ${maxAbs(expected).toFixed(2)})`,
        );
        assert.ok(difference <= 1e-4 * Math.max(1, maxAbs(expected)), `${name} differs by ${difference}`);
      }
    }
    const expectedCount = reference.get('after_train.bn1.num_batches_tracked')!.data as BigInt64Array;
    assert.deepEqual(
      Array.from(params.get('bn1.num_batches_tracked')!.dataSync()),
      int64ToNumbers(expectedCount, 'num_batches_tracked'),
    );
  } finally {
    disposeModel(params);
  }
});
