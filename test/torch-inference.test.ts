// `evaluate` and `probe` on the PyTorch engine with the real Debian torch, against the embedded engine on the
// same model and images: the same predictions, logits and pooled features to float32 rounding (both read the
// bytes leukemia-audit prepared), run.json naming the engine, a cancel that ends the Python process and leaves
// no run folder, and the interpreter named when it is missing or breaks. Small images, ~100 images: the file
// is meant to cost well under a minute of CPU beyond Python's start-up.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { prepareImages } from '../src/core/data/cache.js';
import { selectBackend } from '../src/core/engine/backend.js';
import { evaluateModel } from '../src/core/evaluate/evaluate.js';
import { loadModel, predictFiles } from '../src/core/explain/predict.js';
import { embeddedInferenceRuntime, INFERENCE_ENGINE_ENV } from '../src/core/infer/engine.js';
import { disposeModel, FEATURE_WIDTH } from '../src/core/model/resnet18.js';
import { featureTable, loadFeatureBackbone } from '../src/core/probe/features.js';
import { probeDataset } from '../src/core/probe/probe.js';
import type { RunFile } from '../src/core/run/runFile.js';
import { TORCH_INFERENCE_PLAN_FILE } from '../src/core/torch/inference.js';
import { predictWithTorch, torchFeatureComputer } from '../src/core/torch/inferenceJobs.js';
import type { TorchInterpreter } from '../src/core/torch/interpreter.js';
import { trainRun } from '../src/core/train/train.js';
import { ensureBuilt } from './helpers/build.js';
import { PYTHON, referenceUnavailable } from './helpers/python.js';
import { tinyDataset, tinySettings } from './helpers/tinyRun.js';
import { fakeTorchPython, torchForTests } from './helpers/torch.js';

const execFileAsync = promisify(execFile);
/** Float32 convolutions in another order (XNNPACK vs PyTorch's CPU kernels): this close, not bit-equal. */
const TOLERANCE = 1e-4;

let work: string;
let dataset: string;
let modelRun: string;
let interpreter: TorchInterpreter | undefined;
let skip: string | undefined;

before(async () => {
  const torch = await torchForTests();
  if ('skip' in torch) skip = torch.skip;
  else interpreter = torch.interpreter;
  work = await mkdtemp(join(tmpdir(), 'leukemia-torch-infer-'));
  process.env.XDG_CACHE_HOME = join(work, 'cache');
  process.env.LEUKEMIA_AUDIT_PROBE_TIMEOUT_MS = '120000';
  dataset = await tinyDataset(work, 36, 6);
  modelRun = join(work, 'model');
  // A model that has learnt something (not a fresh initialisation, whose BatchNorm statistics are trivial).
  await trainRun(tinySettings(dataset, modelRun, { epochs: 2 }), () => undefined);
});
after(() => rm(work, { recursive: true, force: true }));

function largestDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/** Whether a Python process still runs an inference plan (the temporary folder's). */
function inferenceRunning(): boolean {
  return execFileSync('ps', ['-eo', 'args'])
    .toString()
    .split('\n')
    .some((line) => line.includes(TORCH_INFERENCE_PLAN_FILE));
}

/** A fake interpreter in the test folder (see fakeTorchPython). */
function fakePython(name: string, onPlan: string): Promise<string> {
  return fakeTorchPython(work, name, onPlan);
}

const onTorch = { backend: 'torch' as const, python: PYTHON, device: 'cpu', report: false, explain: false };

describe('evaluate on the PyTorch engine', () => {
  test('gives the embedded engine’s predictions, and run.json says PyTorch computed them', async (t) => {
    if (skip) return t.skip(skip);
    const embedded = await evaluateModel({
      dataset,
      weights: modelRun,
      out: join(work, 'eval-wasm'),
      backend: 'wasm',
      report: false,
      explain: false,
    });
    const phases = new Set<string>();
    let eta = false;
    const torch = await evaluateModel({
      dataset,
      weights: modelRun,
      out: join(work, 'eval-torch'),
      ...onTorch,
      batchSize: 16,
      onProgress: (phase, done, total, etaSeconds) => {
        phases.add(phase);
        if (phase === 'predict' && done > 0 && done < total && Number.isFinite(etaSeconds)) eta = true;
      },
    });
    const run: RunFile = torch.run;
    assert.equal(run.backend.name, 'torch');
    assert.equal(run.backend.torch?.device, 'cpu');
    assert.equal(run.backend.torch?.python, PYTHON);
    assert.match(run.backend.torch?.torch ?? '', /^1\.13|^2\./);
    assert.equal(run.settings.backend, 'torch');
    assert.equal(embedded.run.backend.name, 'wasm');
    assert.ok(phases.has('prepare') && phases.has('predict'), `phases ${[...phases]}`);
    assert.ok(eta, 'the PyTorch engine’s progress carries an ETA');

    const a = embedded.run.predictions;
    const b = run.predictions;
    assert.equal(b.length, a.length);
    assert.ok(a.length >= 100, `${a.length} images`);
    assert.deepEqual(
      b.map((p) => [p.path, p.predicted]),
      a.map((p) => [p.path, p.predicted]),
      'the same prediction for every image',
    );
    const worst = largestDifference(
      b.flatMap((p) => p.probabilities),
      a.flatMap((p) => p.probabilities),
    );
    t.diagnostic(`largest probability difference, PyTorch vs embedded: ${worst.toExponential(2)}`);
    assert.ok(worst < TOLERANCE, `probabilities differ by ${worst}`);
    assert.deepEqual(run.metrics.test?.confusionMatrix, embedded.run.metrics.test?.confusionMatrix);
  });

  test('logits within 1e-4 of the embedded engine’s, at 96 px with the cell crop', async (t) => {
    if (skip) return t.skip(skip);
    await selectBackend('wasm');
    const model = await loadModel(modelRun, { imageSize: 96, crop: 'cell' });
    try {
      const paths = (await readdir(join(dataset, 'fold_1', 'all'))).slice(0, 12).map((name) => `fold_1/all/${name}`);
      const ours = await predictFiles(
        model,
        paths.map((path) => join(dataset, path)),
      );
      const theirs = await predictWithTorch(model, dataset, paths, { interpreter: interpreter!, device: 'cpu' });
      assert.deepEqual(
        theirs.predictions.map((p) => p.path),
        paths,
      );
      const worst = largestDifference(
        theirs.predictions.flatMap((p) => p.logits),
        ours.flatMap((p) => p.logits),
      );
      t.diagnostic(`largest logit difference at 96 px, cell crop: ${worst.toExponential(2)}`);
      assert.ok(worst < TOLERANCE, `logits differ by ${worst}`);
    } finally {
      disposeModel(model.params);
    }
  });

  test('cancel ends the Python process and leaves no run folder', async (t) => {
    if (skip) return t.skip(skip);
    const out = join(work, 'eval-cancelled');
    const controller = new AbortController();
    let predictedWhenCancelled = -1;
    await assert.rejects(
      evaluateModel({
        dataset,
        weights: modelRun,
        out,
        ...onTorch,
        batchSize: 4,
        signal: controller.signal,
        onProgress: (phase, done, total) => {
          if (phase !== 'predict' || done === 0 || done === total || controller.signal.aborted) return;
          predictedWhenCancelled = done;
          controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.ok(predictedWhenCancelled > 0, 'cancelled while PyTorch was predicting');
    assert.ok(!existsSync(out), 'no run folder, finished or not');
    assert.ok(!inferenceRunning(), 'the Python process has ended');
  });

  test('the CLI: --backend torch --python --device, and run.json names the engine', async (t) => {
    if (skip) return t.skip(skip);
    ensureBuilt(['cli.js']);
    const out = join(work, 'eval-cli');
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        resolve(__dirname, '..', 'dist', 'cli.js'),
        'evaluate',
        dataset,
        '--weights',
        modelRun,
        '--out',
        out,
        '--no-explain',
        '--backend',
        'torch',
        '--python',
        PYTHON,
        '--device',
        'cpu',
        '--json',
      ],
      { maxBuffer: 1 << 24, env: { ...process.env } },
    );
    const run = JSON.parse(stdout) as RunFile;
    assert.equal(run.status, 'completed');
    assert.equal(run.backend.name, 'torch');
    assert.equal(run.backend.torch?.device, 'cpu');
  });
});

describe('probe on the PyTorch engine', () => {
  test('pooled features within 1e-4 of the embedded engine’s', async (t) => {
    if (skip) return t.skip(skip);
    await selectBackend('wasm');
    const folder = join(dataset, 'fold_0', 'hem');
    const paths = (await readdir(folder)).slice(0, 10).map((name) => `fold_0/hem/${name}`);
    const prepared = await prepareImages(dataset, paths, { size: 64, crop: 'none', cacheDir: join(work, 'px') });
    const backbone = await loadFeatureBackbone(modelRun, { seed: 1 });
    try {
      const embedded = await featureTable(prepared, paths, backbone, { cacheDir: join(work, 'features-wasm') });
      const torch = await featureTable(prepared, paths, backbone, {
        cacheDir: join(work, 'features-torch'),
        compute: torchFeatureComputer(backbone.params, prepared, { interpreter: interpreter!, device: 'cpu' }),
      });
      assert.equal(torch.computed, paths.length);
      assert.equal(torch.features.length, paths.length * FEATURE_WIDTH);
      assert.ok(
        torch.features.some((v) => v > 0.01),
        'not all zero',
      );
      const worst = largestDifference(torch.features, embedded.features);
      t.diagnostic(`largest feature difference, PyTorch vs embedded: ${worst.toExponential(2)}`);
      assert.ok(worst < TOLERANCE, `features differ by ${worst}`);
      // Cached like the embedded engine's: a second table reads them back.
      const again = await featureTable(prepared, paths, backbone, { cacheDir: join(work, 'features-torch') });
      assert.equal(again.fromCache, paths.length);
      assert.deepEqual(again.features, torch.features);
    } finally {
      disposeModel(backbone.params);
    }
  });

  test('a probe run records PyTorch; cancelled mid-features it leaves no run folder', async (t) => {
    if (skip) return t.skip(skip);
    const options = { dataset, weights: 'none', imageSize: 32, ...onTorch };
    const { run } = await probeDataset({
      ...options,
      cacheDir: join(work, 'probe-cache'),
      out: join(work, 'probe-torch'),
    });
    assert.equal(run.status, 'completed');
    assert.equal(run.backend.name, 'torch');
    assert.equal(run.backend.torch?.device, 'cpu');
    assert.equal(run.probe?.cache.computed, run.probe?.diagnosis?.images);

    const out = join(work, 'probe-cancelled');
    const controller = new AbortController();
    await assert.rejects(
      probeDataset({
        ...options,
        cacheDir: join(work, 'probe-cache-2'),
        out,
        signal: controller.signal,
        onProgress: (phase, done, total) => {
          if (phase === 'features' && done > 0 && done < total) controller.abort();
        },
      }),
      { name: 'AbortError' },
    );
    assert.ok(controller.signal.aborted, 'cancelled while PyTorch was computing features');
    assert.ok(!existsSync(out), 'no run folder');
    assert.ok(!inferenceRunning(), 'the Python process has ended');
  });
});

describe('PyTorch inference without a usable interpreter', () => {
  test('--backend torch with a missing interpreter names it and says how to select one', async () => {
    const missing = join(work, 'no-such-python');
    await assert.rejects(
      evaluateModel({ dataset, weights: modelRun, out: join(work, 'eval-missing'), ...onTorch, python: missing }),
      (error: Error) => {
        assert.match(error.message, /--backend torch: no usable PyTorch/);
        assert.ok(error.message.includes(`${missing} was not found`), error.message);
        assert.match(error.message, /--python PATH/);
        return true;
      },
    );
    assert.ok(!existsSync(join(work, 'eval-missing')));
  });

  test('an interpreter that dies on the plan fails naming it and its stderr; no run folder', async () => {
    const python = await fakePython(
      'python-dies',
      `echo "RuntimeError: CUDA driver initialization failed" >&2; exit 1`,
    );
    const out = join(work, 'probe-dies');
    await assert.rejects(
      probeDataset({ dataset, weights: 'none', imageSize: 32, ...onTorch, python, out }),
      (error: Error) => {
        assert.ok(error.message.includes(`The PyTorch engine (${python}) exited with code 1`), error.message);
        assert.match(error.message, /CUDA driver initialization failed/);
        return true;
      },
    );
    assert.ok(!existsSync(out));
  });

  test('under auto a broken interpreter falls back to the embedded engine with the reason', async () => {
    const python = await fakePython('python-broken', 'exit 1');
    await writeFile(python, `#!/bin/sh\necho "ImportError: numpy.core.multiarray failed to import" >&2\nexit 1\n`);
    const logs: string[] = [];
    const { run } = await evaluateModel({
      dataset,
      weights: modelRun,
      out: join(work, 'eval-fallback'),
      ...onTorch,
      backend: 'auto',
      python,
      onLog: (_, message) => logs.push(message),
    });
    assert.equal(run.status, 'completed');
    assert.notEqual(run.backend.name, 'torch');
    assert.match(run.backend.skipped[0], /^torch: .*numpy\.core\.multiarray failed/);
    assert.ok(logs.some((line) => line.includes(python) && /No usable PyTorch/.test(line)));
  });

  test('under auto a CPU-only PyTorch gives way to onnxruntime, and is used when only wasm is embedded', async (t) => {
    if (skip) return t.skip(skip);
    const onAuto = { ...onTorch, backend: 'auto' as const, device: 'auto' };
    if ((await embeddedInferenceRuntime()) !== 'onnxruntime')
      return referenceUnavailable(t, 'onnxruntime-node does not load here, so auto cannot prefer it');
    const logs: string[] = [];
    const onCpu = await evaluateModel({
      dataset,
      weights: modelRun,
      out: join(work, 'eval-auto-onnx'),
      ...onAuto,
      onLog: (_, message) => logs.push(message),
    });
    assert.notEqual(onCpu.run.backend.name, 'torch', 'Debian torch has no GPU here: the embedded engine computes');
    assert.match(onCpu.run.backend.skipped[0], /^torch: .* would compute on the CPU, where .* onnxruntime .* faster/);
    assert.ok(
      logs.some((line) => /^inference: onnxruntime/.test(line)),
      logs.join('\n'),
    );

    process.env[INFERENCE_ENGINE_ENV] = 'wasm';
    try {
      const onWasm = await evaluateModel({ dataset, weights: modelRun, out: join(work, 'eval-auto-wasm'), ...onAuto });
      assert.equal(onWasm.run.backend.name, 'torch', 'PyTorch on CPU beats the wasm fallback');
    } finally {
      delete process.env[INFERENCE_ENGINE_ENV];
    }
  });
});
