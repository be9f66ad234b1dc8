// The inference engines (src/core/infer): onnxruntime running our hand-written ONNX export, and the wasm worker
// pool it falls back to, against the tfjs cpu backend's forward pass and against torchvision's resnet18 with
// the same weights; both deterministic; the fallback taken when forced by option or environment variable.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test, type TestContext } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/core/engine/backend.js';
import {
  createInferenceEngine,
  createPrefixEngine,
  INFERENCE_ENGINE_ENV,
  type FrozenPrefix,
  type InferenceEngine,
  type InferenceEngineKind,
} from '../src/core/infer/engine.js';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { encodeBmp24 } from '../src/core/image/bmpEncode.js';
import type { RunFile } from '../src/core/run/runFile.js';
import { TRAINING_STEPS_ENV } from '../src/core/train/tfjsEngine.js';
import { createResNet18, disposeModel, forward, type ResNet18Params } from '../src/core/model/resnet18.js';
import { exportStateDict, loadStateDict } from '../src/core/model/stateDict.js';
import { readSafetensors, writeSafetensors } from '../src/core/weights/safetensors.js';
import { ensureBuilt } from './helpers/build.js';
import {
  RANDOMISE_BATCHNORM_PY,
  referenceUnavailable,
  runPythonIfAvailable,
  SAFETENSORS_PY,
} from './helpers/python.js';

const SIZE = 96;
/** Odd, so the wasm pool's two threads get parts of different sizes. */
const IMAGES = 5;
const CLASSES = 3;
const TOLERANCE = 1e-4;

/**
 * A seeded torchvision resnet18 with randomised BatchNorm (so a BatchNorm exported wrongly shows), its
 * state dict, NHWC inputs (our layout, permuted here so the test needs no transposition of its own) and
 * the eval-mode logits of the NCHW originals.
 */
const PYTORCH_SCRIPT = String.raw`
import sys
import torch, torchvision
${SAFETENSORS_PY}
${RANDOMISE_BATCHNORM_PY}
torch.set_num_threads(1)
folder, size, images, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(20261202)
model = randomise_batchnorm(torchvision.models.resnet18(num_classes=classes), batches_tracked=5).eval()
x = torch.randn(images, 3, size, size)
with torch.no_grad():
    logits = model(x)
save(folder + '/weights.safetensors', model.state_dict())
save(folder + '/reference.safetensors', dict(nhwc=x.permute(0, 2, 3, 1).contiguous(), logits=logits))
`;

let work: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), 'inference-engine-'));
  await selectBackend('wasm');
});
after(async () => {
  await rm(work, { recursive: true, force: true });
});

function maxAbsDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length, 'compared arrays differ in length');
  return a.reduce((max, value, i) => Math.max(max, Math.abs(value - b[i])), 0);
}

/** Our own seeded ResNet-18 with BatchNorm statistics far from their initial 0 and 1. */
function randomisedModel(seed: number): ResNet18Params {
  const params = createResNet18(CLASSES, seed);
  tf.tidy(() => {
    for (const [name, variable] of params) {
      if (name.endsWith('running_mean')) variable.assign(tf.randomNormal(variable.shape, 0, 0.1, 'float32', seed));
      if (name.endsWith('running_var')) variable.assign(tf.randomUniform(variable.shape, 0.5, 2, 'float32', seed));
      if (name.endsWith('bn1.bias')) variable.assign(tf.randomNormal(variable.shape, 0, 0.1, 'float32', seed + 1));
    }
  });
  return params;
}

function randomImages(seed: number): Float32Array {
  return tf.tidy(() => tf.randomNormal([IMAGES, SIZE, SIZE, 3], 0, 1, 'float32', seed).dataSync() as Float32Array);
}

/** The tfjs cpu backend's eval-mode logits: the plain-JavaScript reference. */
async function cpuLogits(params: ResNet18Params, x: Float32Array): Promise<Float32Array> {
  await selectBackend('cpu');
  try {
    return tf.tidy(() =>
      forward(params, tf.tensor4d(x, [IMAGES, SIZE, SIZE, 3]), { training: false }).logits.dataSync(),
    ) as Float32Array;
  } finally {
    await selectBackend('wasm');
  }
}

/** The engine `kind`, or undefined after reporting why it cannot run here (onnxruntime-node is optional). */
async function engineOrSkip(
  t: TestContext,
  params: ResNet18Params,
  kind: InferenceEngineKind,
): Promise<InferenceEngine | undefined> {
  try {
    return await createInferenceEngine({ params, imageSize: SIZE, threads: 2, engine: kind });
  } catch (error) {
    if (kind !== 'onnxruntime') throw error;
    referenceUnavailable(t, `onnxruntime not checked: ${(error as Error).message}`);
    return undefined;
  }
}

for (const kind of ['onnxruntime', 'wasm'] as const) {
  test(`${kind} engine: logits equal the tfjs cpu backend's, and two runs give the same bits`, async (t) => {
    const params = randomisedModel(11);
    try {
      const x = randomImages(12);
      const expected = await cpuLogits(params, x);
      const engine = await engineOrSkip(t, params, kind);
      if (!engine) return;
      try {
        assert.equal(engine.kind, kind);
        assert.equal(engine.threads, 2);
        const first = await engine.logits(x, IMAGES);
        const second = await engine.logits(x, IMAGES);
        const difference = maxAbsDifference(first, expected);
        t.diagnostic(`${kind} vs tfjs cpu at ${SIZE} px: max |Δ logits| = ${difference.toExponential(2)}`);
        assert.ok(difference <= TOLERANCE, `logits differ by ${difference}`);
        assert.deepEqual(second, first, 'the same input gives the same logits');
        // A part of the batch gives that part's rows: images do not influence each other in eval mode.
        const single = await engine.logits(x.slice(0, SIZE * SIZE * 3), 1);
        assert.ok(maxAbsDifference(single, first.subarray(0, CLASSES)) <= TOLERANCE, 'one image alone');
        assert.deepEqual(await engine.logits(new Float32Array(0), 0), new Float32Array(0));
        await assert.rejects(engine.logits(x, IMAGES - 1), /expected 4 images of 96×96×3/);
      } finally {
        await engine.dispose();
      }
    } finally {
      disposeModel(params);
    }
  });
}

/** The tfjs cpu backend's eval-mode activation of `upTo`, with its shape. */
async function cpuActivation(params: ResNet18Params, x: Float32Array, upTo: FrozenPrefix) {
  await selectBackend('cpu');
  try {
    const activation = tf.tidy(
      () =>
        forward(params, tf.tensor4d(x, [IMAGES, SIZE, SIZE, 3]), { training: false, captureLayers: [upTo] })
          .activations[upTo],
    );
    const result = { data: activation.dataSync() as Float32Array, shape: activation.shape };
    activation.dispose();
    return result;
  } finally {
    await selectBackend('wasm');
  }
}

for (const kind of ['onnxruntime', 'wasm'] as const)
  test(`${kind} prefix engine: the frozen layer3 and avgpool activations of finetune/linear equal the tfjs cpu backend's`, async (t) => {
    const params = randomisedModel(21);
    try {
      const x = randomImages(22);
      for (const upTo of ['layer3', 'avgpool'] as const) {
        const expected = await cpuActivation(params, x, upTo);
        let engine;
        try {
          engine = await createPrefixEngine({ params, imageSize: SIZE, threads: 2, engine: kind, upTo });
        } catch (error) {
          if (kind !== 'onnxruntime') throw error;
          return referenceUnavailable(t, `onnxruntime not checked: ${(error as Error).message}`);
        }
        try {
          assert.equal(engine.kind, kind);
          const { data, shape } = await engine.activations(x, IMAGES);
          assert.deepEqual(shape, expected.shape, `${upTo} comes out in our layout`);
          const difference = maxAbsDifference(data, expected.data);
          t.diagnostic(`${kind} ${upTo} vs tfjs cpu at ${SIZE} px: max |Δ| = ${difference.toExponential(2)}`);
          assert.ok(difference <= TOLERANCE, `${upTo} differs by ${difference}`);
        } finally {
          await engine.dispose();
        }
      }
    } finally {
      disposeModel(params);
    }
  });

test('both engines give torchvision resnet18 logits with the same weights (PyTorch reference)', async (t) => {
  const run = await runPythonIfAvailable(PYTORCH_SCRIPT, [work, String(SIZE), String(IMAGES), String(CLASSES)], {
    timeoutMs: 120_000,
    purpose: 'PyTorch inference parity',
  });
  if ('unavailable' in run) return referenceUnavailable(t, run.unavailable);
  const reference = (await readSafetensors(join(work, 'reference.safetensors'))).tensors;
  const x = reference.get('nhwc')!.data as Float32Array;
  const expected = reference.get('logits')!.data as Float32Array;
  const params = createResNet18(CLASSES, 99);
  try {
    loadStateDict(params, (await readSafetensors(join(work, 'weights.safetensors'))).tensors);
    for (const kind of ['onnxruntime', 'wasm'] as const) {
      const engine = await engineOrSkip(t, params, kind);
      if (!engine) continue;
      try {
        const difference = maxAbsDifference(await engine.logits(x, IMAGES), expected);
        t.diagnostic(`${kind} vs PyTorch at ${SIZE} px: max |Δ logits| = ${difference.toExponential(2)}`);
        assert.ok(difference <= TOLERANCE, `${kind} logits differ from PyTorch's by ${difference}`);
      } finally {
        await engine.dispose();
      }
    }
  } finally {
    disposeModel(params);
  }
});

test(`fallback: ${INFERENCE_ENGINE_ENV}=wasm or engine: 'wasm' gives the wasm worker pool; a bad value is refused`, async () => {
  const params = createResNet18(CLASSES, 5);
  const saved = process.env[INFERENCE_ENGINE_ENV];
  try {
    process.env[INFERENCE_ENGINE_ENV] = 'wasm';
    const fromEnvironment = await createInferenceEngine({ params, imageSize: SIZE, threads: 2 });
    assert.deepEqual([fromEnvironment.kind, fromEnvironment.threads], ['wasm', 2]);
    await fromEnvironment.dispose();

    // The option wins over the environment.
    process.env[INFERENCE_ENGINE_ENV] = 'onnxruntime';
    const fromOption = await createInferenceEngine({ params, imageSize: SIZE, threads: 1, engine: 'wasm' });
    assert.deepEqual([fromOption.kind, fromOption.threads, fromOption.fallbackReason], ['wasm', 1, undefined]);
    const logits = await fromOption.logits(randomImages(3), IMAGES);
    assert.equal(logits.length, IMAGES * CLASSES);
    assert.ok(logits.every(Number.isFinite));
    await fromOption.dispose();

    process.env[INFERENCE_ENGINE_ENV] = 'gpu';
    await assert.rejects(
      createInferenceEngine({ params, imageSize: SIZE }),
      /LEUKEMIA_AUDIT_INFERENCE must be one of auto, onnxruntime, wasm, got "gpu"/,
    );
    await assert.rejects(createInferenceEngine({ params, imageSize: SIZE, threads: 0 }), /threads must be/);
  } finally {
    if (saved === undefined) delete process.env[INFERENCE_ENGINE_ENV];
    else process.env[INFERENCE_ENGINE_ENV] = saved;
    disposeModel(params);
  }
});

const REPO = join(__dirname, '..');

interface PredictJson {
  inference: string;
  images: { path: string; logits: number[] }[];
}

/** `dist/cli.js predict --json` of the install in `root`: its JSON and its stderr. */
async function predictWith(root: string, weights: string, images: string[]) {
  const { stdout, stderr } = await promisify(execFile)(
    process.execPath,
    [join(root, 'dist', 'cli.js'), 'predict', '--weights', weights, '--json', ...images],
    // The engine is the one the install has, whatever the caller's environment asks for.
    { env: { ...process.env, [INFERENCE_ENGINE_ENV]: '' }, maxBuffer: 1 << 20, timeout: 120_000 },
  );
  return { output: JSON.parse(stdout) as PredictJson, stderr };
}

/** The built bundles and every installed package but onnxruntime-node: a real install that lacks it. */
let installed: Promise<string> | undefined;
function installWithoutOnnxRuntime(): Promise<string> {
  installed ??= (async () => {
    ensureBuilt(['cli.js', 'gradientWorker.js']);
    const install = join(work, 'install');
    await mkdir(join(install, 'node_modules'), { recursive: true });
    await cp(join(REPO, 'dist'), join(install, 'dist'), { recursive: true });
    for (const entry of await readdir(join(REPO, 'node_modules')))
      if (entry !== 'onnxruntime-node')
        await symlink(join(REPO, 'node_modules', entry), join(install, 'node_modules', entry));
    return install;
  })();
  return installed;
}

test('an install without onnxruntime-node (dropped by npm, or a VSIX for a platform without its binaries) predicts on wasm workers, with the logits of one that has it', async (t) => {
  const install = await installWithoutOnnxRuntime();

  const weights = join(work, 'cli-model.safetensors');
  const params = createResNet18(2, 8);
  try {
    await writeSafetensors(weights, exportStateDict(params), {
      format: 'pt',
      classes: JSON.stringify(['all', 'hem']),
      imageSize: '64',
    });
  } finally {
    disposeModel(params);
  }
  const images = await Promise.all(
    [0, 1, 2].map(async (k) => {
      const file = join(work, `cell-${k}.bmp`);
      const data = Uint8Array.from({ length: 80 * 80 * 3 }, (_, i) => (i * (7 + k) + k * 50) % 256);
      await writeFile(file, encodeBmp24({ width: 80, height: 80, channels: 3, data }));
      return file;
    }),
  );

  const without = await predictWith(install, weights, images);
  assert.equal(without.output.inference, 'wasm');
  assert.match(without.stderr, /inference: wasm workers on \d+ threads?; onnxruntime-node is not available/);
  const withIt = await predictWith(REPO, weights, images);
  if (withIt.output.inference !== 'onnxruntime')
    return referenceUnavailable(t, `onnxruntime not checked: this checkout infers with ${withIt.stderr.trim()}`);
  without.output.images.forEach((image, i) => {
    assert.equal(image.path, withIt.output.images[i].path);
    const worst = Math.max(...image.logits.map((value, c) => Math.abs(value - withIt.output.images[i].logits[c])));
    assert.ok(worst <= TOLERANCE, `${image.path}: logits differ by ${worst}`);
  });
});

test('an install without onnxruntime-node trains full steps on tfjs, and says why', async () => {
  const install = await installWithoutOnnxRuntime();
  const data = join(work, 'train-data');
  await generateDemoDataset(data, { imageSize: 32, imagesPerFold: 30, validationImages: 6, seed: 2 });
  const train = (root: string, out: string) =>
    promisify(execFile)(
      process.execPath,
      [
        join(root, 'dist', 'cli.js'),
        'train',
        join(data, 'C-NMC_Leukemia', 'training_data'),
        '--labels',
        'folder:2',
        '--image-size',
        '32',
        '--epochs',
        '1',
        '--batch-size',
        '8',
        '--out',
        out,
        '--json',
      ],
      { env: { ...process.env, [TRAINING_STEPS_ENV]: '' }, maxBuffer: 1 << 24, timeout: 180_000 },
    );
  const without = await train(install, join(work, 'run-without'));
  assert.match(without.stderr, /Training steps on tfjs: onnxruntime-node is not available/);
  const run = JSON.parse(without.stdout) as RunFile;
  assert.equal(run.status, 'completed');
  assert.equal(run.backend.steps, undefined, 'no onnxruntime steps are recorded');
  const withIt = await train(REPO, join(work, 'run-with'));
  assert.match(withIt.stderr, /Training steps: onnxruntime \(CPU\), \d+ threads\./);
  assert.match((JSON.parse(withIt.stdout) as RunFile).backend.steps ?? '', /^onnxruntime/);
});
