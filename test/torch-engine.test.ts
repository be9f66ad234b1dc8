// The PyTorch engine end to end with the real Debian torch: a run on small demo data whose model our own
// engine reads back and predicts identically, resume after a SIGKILL, cancel, the crash paths (fake
// interpreters that fail in each way) and a 2-process DistributedDataParallel run. Small images, few images,
// 1–2 epochs: the whole file is meant to cost well under two minutes of CPU.
import assert from 'node:assert/strict';
import { execFileSync, fork } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { selectBackend } from '../src/core/engine/backend.js';
import { loadModel, predictFiles } from '../src/core/explain/predict.js';
import { disposeModel } from '../src/core/model/resnet18.js';
import { CHECKPOINT_FILE, MODEL_FILE, RUN_FILE, type RunFile } from '../src/core/run/runFile.js';
import { readRunFile } from '../src/core/run/runFileIo.js';
import { TORCH_PLAN_FILE, TORCH_PREDICTIONS_FILE } from '../src/core/torch/plan.js';
import { readSafetensors } from '../src/core/weights/safetensors.js';
import { TrainingCancelled } from '../src/core/train/engine.js';
import type { TrainEvent } from '../src/core/train/events.js';
import type { TrainSettings } from '../src/core/train/settings.js';
import { trainRun } from '../src/core/train/train.js';
import type { TrainerMessage } from '../src/protocol/trainer.js';
import { tinySettings } from './helpers/tinyRun.js';
import { ensureBuilt } from './helpers/build.js';
import { PYTHON, SAFETENSORS_PY, runPython } from './helpers/python.js';
import { fakeTorchPython, torchForTests } from './helpers/torch.js';

let work: string;
let dataset: string;
let skip: string | undefined;

before(async () => {
  const torch = await torchForTests();
  if ('skip' in torch) skip = torch.skip;
  work = await mkdtemp(join(tmpdir(), 'leukemia-torch-'));
  await generateDemoDataset(work, { imageSize: 64, imagesPerFold: 40, validationImages: 6, seed: 5 });
  dataset = join(work, 'C-NMC_Leukemia', 'training_data');
  process.env.XDG_CACHE_HOME = join(work, 'cache');
  // The trainer process probes again; on a loaded machine `import torch` can outlast the default bound.
  process.env.LEUKEMIA_AUDIT_PROBE_TIMEOUT_MS = '120000';
});
after(() => rm(work, { recursive: true, force: true }));

function settings(out: string, overrides: Partial<TrainSettings> = {}): TrainSettings {
  return tinySettings(dataset, out, {
    batchSize: 16,
    epochs: 2,
    backend: 'torch',
    python: PYTHON,
    device: 'cpu',
    ...overrides,
  });
}

/** A fake interpreter in the test folder (see fakeTorchPython). */
function fakePython(name: string, onTrain: string): Promise<string> {
  return fakeTorchPython(work, name, onTrain);
}

let oneProcess: RunFile | undefined;

describe('PyTorch engine', () => {
  test(
    'trains on demo data: run.json, torchvision-layout weights our engine predicts identically, Grad-CAM',
    { timeout: 240_000 },
    async (t) => {
      if (skip) return t.skip(skip);
      const out = join(work, 'run-torch');
      const events: TrainEvent[] = [];
      const run = await trainRun(settings(out), (event) => events.push(event));
      oneProcess = run;
      assert.equal(run.status, 'completed');
      assert.equal(run.backend.name, 'torch');
      assert.equal(run.backend.torch?.device, 'cpu');
      assert.match(run.backend.torch?.torch ?? '', /^1\.13|^2\./);
      assert.deepEqual(
        run.history.map((h) => h.epoch),
        [1, 2],
      );
      assert.ok(
        events.some((e) => e.type === 'progress'),
        'batch progress is streamed',
      );
      assert.ok(events.some((e) => e.type === 'started' && /^PyTorch .* · cpu$/.test(e.backend)));
      for (const file of [RUN_FILE, MODEL_FILE, CHECKPOINT_FILE, TORCH_PLAN_FILE, TORCH_PREDICTIONS_FILE])
        assert.ok(existsSync(join(out, file)), `${file} is written`);
      assert.ok(run.metrics.validation, 'validation metrics computed by leukemia-audit');
      const validation = run.predictions.filter((p) => p.split === 'val');
      assert.equal(validation.length, run.metrics.validation!.sampleCount);
      assert.ok(run.explanations && run.explanations.samples.length > 0, 'the Grad-CAM gallery is computed');

      // PyTorch itself loads the weights strictly into torchvision's resnet18.
      const loaded = await runPython(
        `${SAFETENSORS_PY}
import sys, torchvision
model = torchvision.models.resnet18(num_classes=2)
print(model.load_state_dict(load(sys.argv[1]), strict=True))`,
        [join(out, MODEL_FILE)],
        { timeoutMs: 60_000 },
      );
      assert.match(loaded, /All keys matched/);

      // Our engine, reading the same files with its own preprocessing, gives PyTorch's probabilities.
      await selectBackend('wasm');
      const model = await loadModel(out);
      try {
        const ours = await predictFiles(
          model,
          validation.map((p) => join(dataset, p.path)),
        );
        let worst = 0;
        ours.forEach((prediction, i) => {
          for (let c = 0; c < 2; c++)
            worst = Math.max(worst, Math.abs(prediction.probabilities[c] - validation[i].probabilities[c]));
        });
        process.stdout.write(`# largest probability difference, our engine vs PyTorch: ${worst.toExponential(2)}\n`);
        assert.ok(worst < 1e-3, `probabilities differ by ${worst}`);
      } finally {
        disposeModel(model.params);
      }
    },
  );

  test(
    '--processes 2 (gloo, DistributedSampler) completes with metrics within noise of one process',
    { timeout: 240_000 },
    async (t) => {
      if (skip) return t.skip(skip);
      const run = await trainRun(settings(join(work, 'run-ddp'), { processes: 2 }), () => undefined);
      assert.equal(run.status, 'completed');
      assert.equal(run.backend.torch?.processes, 2);
      const single = oneProcess ?? (await trainRun(settings(join(work, 'run-single')), () => undefined));
      const [a, b] = [single.metrics.validation!, run.metrics.validation!];
      process.stdout.write(
        `# 1 process: val accuracy ${a.accuracy.toFixed(3)} balanced ${a.balancedAccuracy.toFixed(3)}, train loss ${single.history.at(-1)!.trainLoss.toFixed(3)}; ` +
          `2 processes: ${b.accuracy.toFixed(3)} / ${b.balancedAccuracy.toFixed(3)}, ${run.history.at(-1)!.trainLoss.toFixed(3)}\n`,
      );
      assert.equal(b.sampleCount, a.sampleCount, 'rank 0 alone predicts every validation image, once');
      // Same global batch and schedule, different sample order and per-process BatchNorm: within noise, not equal.
      assert.ok(Math.abs(a.balancedAccuracy - b.balancedAccuracy) <= 0.25, 'balanced accuracy within noise');
      assert.ok(
        Math.abs(single.history.at(-1)!.trainLoss - run.history.at(-1)!.trainLoss) <= 0.5,
        'train loss within noise',
      );
    },
  );

  test('cancel stops after the current batch and marks the run cancelled', { timeout: 120_000 }, async (t) => {
    if (skip) return t.skip(skip);
    const out = join(work, 'run-cancel');
    const controller = new AbortController();
    let batchesAfterCancel = 0;
    await assert.rejects(
      trainRun(
        settings(out, { epochs: 3 }),
        (event) => {
          if (event.type !== 'progress') return;
          if (controller.signal.aborted) batchesAfterCancel++;
          controller.abort();
        },
        controller.signal,
      ),
      TrainingCancelled,
    );
    assert.ok(batchesAfterCancel <= 2, `stopped within a batch or two, not ${batchesAfterCancel}`);
    assert.equal((await readRunFile(out)).status, 'cancelled');
  });

  test(
    'a SIGKILLed trainer leaves the last checkpoint usable, and --resume finishes the run',
    { timeout: 240_000 },
    async (t) => {
      if (skip) return t.skip(skip);
      ensureBuilt(['trainer.js']);
      const out = join(work, 'run-killed');
      const child = fork(join(__dirname, '..', 'dist', 'trainer.js'), [], {
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      await new Promise<void>((resolve, reject) => {
        child.on('message', (message: TrainerMessage) => {
          if (message.type === 'ready') child.send({ type: 'train', settings: settings(out, { epochs: 3 }) });
          if (message.type === 'error') reject(new Error(message.message));
          if (message.type === 'event' && message.event.type === 'epoch' && message.event.record.epoch === 1) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      await waitForExit(out);
      assert.equal((await readRunFile(out)).status, 'running', 'a killed run cannot mark itself finished');
      const checkpointed = await checkpointEpoch(out);
      assert.ok(checkpointed >= 1, 'the checkpoint holds at least epoch 1');

      const resumed: number[] = [];
      const run = await trainRun(
        settings(out, { epochs: 3, resume: true, python: undefined, backend: 'auto', pythonFromEditor: PYTHON }),
        (event) => {
          if (event.type === 'epoch') resumed.push(event.record.epoch);
        },
      );
      assert.equal(run.status, 'completed');
      assert.equal(run.backend.name, 'torch', 'a PyTorch run resumes on PyTorch');
      assert.deepEqual(
        resumed,
        [1, 2, 3].filter((e) => e > checkpointed),
      );
      assert.deepEqual(
        run.history.map((h) => h.epoch),
        [1, 2, 3],
      );
    },
  );
});

/**
 * A 32×32 8-bit RLE BMP whose data stops at row 17 without an end-of-bitmap code: its header is sound (an RLE
 * BMP's size is not known from the header, so the scan lets it through), the pixels are not — PIL says "not
 * enough image data", leukemia-audit's decoder that the data ends early.
 */
function truncatedRle8Bmp(): Buffer {
  const side = 32;
  const palette = Buffer.alloc(256 * 4);
  for (let i = 0; i < 256; i++) palette.fill(i, i * 4, i * 4 + 3);
  const rows = Buffer.concat(Array.from({ length: side }, (_, y) => Buffer.from([side, (y * 7) % 256, 0, 0])));
  const data = rows.subarray(0, rows.length / 2);
  const offset = 14 + 40 + palette.length;
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(offset + data.length, 2);
  header.writeUInt32LE(offset, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(side, 18);
  header.writeInt32LE(side, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(8, 28);
  header.writeUInt32LE(1, 30); // BI_RLE8; image size 0: "the rest of the file"
  header.writeUInt32LE(256, 46);
  return Buffer.concat([header, palette, data]);
}

describe('PyTorch engine and damaged images', () => {
  test(
    'an image PyTorch cannot decode is skipped and named, as in the embedded engine, and the run completes',
    { timeout: 240_000 },
    async (t) => {
      if (skip) return t.skip(skip);
      const root = join(work, 'damaged');
      await generateDemoDataset(root, { imageSize: 32, imagesPerFold: 24, validationImages: 4, seed: 9 });
      const damagedSet = join(root, 'C-NMC_Leukemia', 'training_data');
      // One damaged image in a training fold, one in the fold the plan validates on (fold_2): a skipped
      // validation image must not shift the predictions of the ones after it.
      const damaged = ['fold_0', 'fold_2'].map((fold) => {
        const folder = join(damagedSet, fold, 'hem');
        return `${fold}/hem/${readdirSync(folder).filter((n) => n.endsWith('.bmp'))[1]}`;
      });
      for (const path of damaged) await writeFile(join(damagedSet, path), truncatedRle8Bmp());
      const logs: string[] = [];
      const out = join(work, 'run-damaged');
      const run = await trainRun(
        tinySettings(damagedSet, out, { backend: 'torch', python: PYTHON, device: 'cpu', epochs: 1 }),
        (event) => event.type === 'log' && logs.push(event.message),
      );
      assert.equal(run.status, 'completed');
      assert.equal(run.backend.name, 'torch');
      const plan = JSON.parse(await readFile(join(out, TORCH_PLAN_FILE), 'utf8'));
      const planned = (split: string) => (plan.examples[split] as [string, number][]).map(([path]) => path);
      assert.ok(planned('train').includes(damaged[0]), `${damaged[0]} was planned for training`);
      assert.ok(planned('val').includes(damaged[1]), `${damaged[1]} was planned for validation`);
      for (const path of damaged) {
        const entry = run.dataset.skipped.find((s) => s.path === path);
        assert.ok(entry, `run.json lists ${path} as skipped: ${JSON.stringify(run.dataset.skipped)}`);
        assert.match(entry.detail, /pixels could not be decoded: not enough image data/);
        assert.ok(
          logs.some((line) => line.startsWith(`Skipped ${path}: `)),
          `the log names ${path}: ${logs}`,
        );
        assert.ok(!run.predictions.some((p) => p.path === path), `no prediction for ${path}`);
      }
      // Every other validation image is predicted, under its own path, with PyTorch's probabilities in order.
      const validation = run.predictions.filter((p) => p.split === 'val').map((p) => p.path);
      assert.deepEqual(
        validation,
        planned('val').filter((path) => path !== damaged[1]),
      );
      assert.equal(run.metrics.validation!.sampleCount, validation.length);
      const written = JSON.parse(await readFile(join(out, TORCH_PREDICTIONS_FILE), 'utf8'));
      const byPath = new Map(run.predictions.map((p) => [p.path, p.probabilities]));
      validation.forEach((path, i) =>
        written.val[i].forEach((p: number, c: number) => assert.ok(Math.abs(p - byPath.get(path)![c]) < 1e-6)),
      );
    },
  );
});

describe('PyTorch engine crash paths', () => {
  test(
    'an interpreter that dies fails the run naming the interpreter and its last stderr lines',
    { timeout: 60_000 },
    async () => {
      const python = await fakePython(
        'python-dies',
        `echo 'Traceback (most recent call last):' >&2; echo "ImportError: libtorch_cpu.so: cannot open shared object file" >&2; exit 1`,
      );
      const out = join(work, 'run-crash');
      await assert.rejects(
        trainRun(settings(out, { python, epochs: 1 }), () => undefined),
        (error: Error) => {
          assert.match(error.message, new RegExp(`PyTorch trainer \\(${python}\\) exited with code 1`));
          assert.match(error.message, /ImportError: libtorch_cpu\.so/);
          return true;
        },
      );
      const run = await readRunFile(out);
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /libtorch_cpu/);
    },
  );

  test(
    'an interpreter killed mid-run (e.g. by the OOM killer) fails the run, it does not hang',
    { timeout: 60_000 },
    async () => {
      const python = await fakePython(
        'python-killed',
        `echo '{"type": "log", "level": "info", "message": "starting"}'; kill -9 $$`,
      );
      await assert.rejects(
        trainRun(settings(join(work, 'run-oom'), { python, epochs: 1 }), () => undefined),
        /was killed \(SIGKILL\)/,
      );
    },
  );

  test(
    '--backend torch without a usable torch is an error that says how to select an interpreter',
    { timeout: 60_000 },
    async () => {
      const python = await fakePython('python-no-torch', 'exit 1');
      await writeFile(python, `#!/bin/sh\necho "ModuleNotFoundError: No module named 'torch'" >&2\nexit 1\n`);
      await assert.rejects(
        trainRun(settings(join(work, 'run-no-torch'), { python, epochs: 1 }), () => undefined),
        (error: Error) => {
          assert.match(error.message, /No module named 'torch'/);
          assert.match(error.message, /--python PATH/);
          assert.match(error.message, /leukemiaAudit\.python/);
          return true;
        },
      );
    },
  );

  test('under auto a broken torch falls back to wasm with the reason logged', { timeout: 300_000 }, async () => {
    const python = await fakePython('python-broken', 'exit 1');
    await writeFile(python, `#!/bin/sh\necho "ImportError: numpy.core.multiarray failed to import" >&2\nexit 1\n`);
    const logs: string[] = [];
    const run = await trainRun(
      settings(join(work, 'run-fallback'), { python, backend: 'auto', epochs: 1, imageSize: 32 }),
      (event) => event.type === 'log' && logs.push(event.message),
    );
    assert.equal(run.status, 'completed');
    assert.notEqual(run.backend.name, 'torch');
    assert.match(run.backend.skipped[0], /^torch: .*numpy\.core\.multiarray failed/);
    assert.ok(
      logs.some((line) => /No usable PyTorch.*GPU/.test(line)),
      'one info line says how to get GPU training',
    );
  });
});

/** Waits until no process runs this run's plan any more (the orphaned trainer stops at its next batch). */
async function waitForExit(runDir: string): Promise<void> {
  const plan = join(runDir, TORCH_PLAN_FILE);
  for (let i = 0; i < 120; i++) {
    const running = execFileSync('ps', ['-eo', 'args'])
      .toString()
      .split('\n')
      .some((line) => line.includes(plan));
    if (!running) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  assert.fail(`the trainer for ${plan} is still running a minute after its parent was killed`);
}

async function checkpointEpoch(runDir: string): Promise<number> {
  const checkpoint = await readSafetensors(join(runDir, CHECKPOINT_FILE));
  assert.equal(checkpoint.metadata.engine, 'torch');
  assert.ok(checkpoint.tensors.has('optimizer/fc.weight/exp_avg'), 'the optimizer state is saved with the weights');
  return Number(checkpoint.metadata.epoch);
}
