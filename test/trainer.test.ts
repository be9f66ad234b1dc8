// The trainer child process end to end: a real fork, real files, a real SIGKILL.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { CHECKPOINT_FILE, MODEL_FILE } from '../src/core/run/runFile.js';
import { readRunFile } from '../src/core/run/runFileIo.js';
import type { TrainSettings } from '../src/core/train/settings.js';
import { readSafetensors } from '../src/core/weights/safetensors.js';
import type { TrainerMessage } from '../src/protocol/trainer.js';
import { ensureBuilt } from './helpers/build.js';
import { tinySettings } from './helpers/tinyRun.js';

const trainerBundle = join(__dirname, '..', 'dist', 'trainer.js');
let work: string;
let dataset: string;
let manifest: Awaited<ReturnType<typeof generateDemoDataset>>;

before(async () => {
  ensureBuilt(['trainer.js']);
  work = await mkdtemp(join(tmpdir(), 'leukemia-trainer-'));
  manifest = await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 24, validationImages: 6, seed: 3 });
  dataset = join(work, 'C-NMC_Leukemia', 'training_data');
});
after(() => rm(work, { recursive: true, force: true }));

function settings(out: string, overrides: Partial<TrainSettings> = {}): TrainSettings {
  return tinySettings(dataset, out, overrides);
}

function startTrainer(): { child: ChildProcess; messages: AsyncGenerator<TrainerMessage> } {
  const child = fork(trainerBundle, [], {
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache') },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  const queue: TrainerMessage[] = [];
  let wake: (() => void) | undefined;
  let exited = false;
  child.on('message', (m) => {
    queue.push(m as TrainerMessage);
    wake?.();
  });
  child.on('exit', () => {
    exited = true;
    wake?.();
  });
  async function* messages(): AsyncGenerator<TrainerMessage> {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (exited) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  }
  return { child, messages: messages() };
}

test(
  'a killed trainer leaves the last checkpoint usable, and --resume finishes the run',
  { timeout: 180_000 },
  async () => {
    const out = join(work, 'run-killed');
    const first = startTrainer();
    first.child.send({ type: 'train', settings: settings(out) });
    for await (const message of first.messages) {
      if (message.type === 'error') assert.fail(message.message);
      if (message.type === 'event' && message.event.type === 'epoch' && message.event.record.epoch === 1) {
        first.child.kill('SIGKILL');
        break;
      }
    }
    await new Promise((resolve) =>
      first.child.exitCode !== null || first.child.signalCode !== null
        ? resolve(null)
        : first.child.once('exit', resolve),
    );
    assert.equal(first.child.signalCode, 'SIGKILL');

    const killed = await readRunFile(out);
    assert.equal(killed.status, 'running', 'a killed run cannot mark itself finished');
    assert.deepEqual(
      killed.history.map((h) => h.epoch),
      [1],
    );
    const checkpoint = await readSafetensors(join(out, CHECKPOINT_FILE));
    assert.equal(checkpoint.metadata.epoch, '1');
    assert.ok(checkpoint.tensors.has('layer4.1.conv2.weight'));
    assert.ok(checkpoint.tensors.has('optimizer/fc.weight/exp_avg'), 'optimizer state is saved with the weights');
    assert.ok(existsSync(join(out, MODEL_FILE)));

    const second = startTrainer();
    second.child.send({ type: 'train', settings: settings(out, { resume: true }) });
    const epochs: number[] = [];
    let result: TrainerMessage | undefined;
    for await (const message of second.messages) {
      if (message.type === 'event' && message.event.type === 'epoch') epochs.push(message.event.record.epoch);
      if (message.type === 'result' || message.type === 'error') result = message;
    }
    assert.equal(result?.type, 'result', result?.type === 'error' ? result.message : 'no result');
    assert.deepEqual(epochs, [2, 3], 'the resumed run continues after the checkpointed epoch');
    const finished = await readRunFile(out);
    assert.equal(finished.status, 'completed');
    // onnxruntime-node is a dependency npm ci installs: full training's steps run on it, and run.json says so.
    assert.match(finished.backend.steps ?? '', /^onnxruntime \(CPU\), \d+ threads$/);
    assert.deepEqual(
      finished.history.map((h) => h.epoch),
      [1, 2, 3],
    );
    assert.ok(finished.metrics.validation, 'validation metrics are written');
    assert.equal(
      finished.predictions.length,
      finished.metrics.validation!.sampleCount + (finished.metrics.test?.sampleCount ?? 0),
    );
  },
);

test('cancel stops the trainer cleanly and marks the run cancelled', { timeout: 120_000 }, async () => {
  const out = join(work, 'run-cancelled');
  const trainer = startTrainer();
  trainer.child.send({ type: 'train', settings: settings(out, { epochs: 5 }) });
  let last: TrainerMessage | undefined;
  for await (const message of trainer.messages) {
    if (message.type === 'event' && message.event.type === 'progress') trainer.child.send({ type: 'cancel' });
    last = message;
  }
  assert.equal(last?.type, 'cancelled');
  assert.equal(trainer.child.exitCode, 0);
  assert.equal((await readRunFile(out)).status, 'cancelled');
});

test('a malformed command is answered with an error, not a crash', { timeout: 30_000 }, async () => {
  const trainer = startTrainer();
  trainer.child.send({ type: 'train' });
  for await (const message of trainer.messages) {
    if (message.type === 'error') {
      assert.match(message.message, /does not understand/);
      break;
    }
  }
  trainer.child.kill();
});

test(
  'finetune trains layer4 and fc on cached features and leaves the frozen prefix, BatchNorm statistics included, untouched',
  { timeout: 180_000 },
  async () => {
    const { trainRun } = await import('../src/core/train/train.js');
    const base = join(work, 'run-base');
    process.env.XDG_CACHE_HOME = join(work, 'cache');
    await trainRun(settings(base, { epochs: 1 }), () => undefined);
    const tuned = join(work, 'run-finetune');
    const phases = new Set<string>();
    await trainRun(settings(tuned, { epochs: 1, strategy: 'finetune', weights: base }), (event) => {
      if (event.type === 'phase') phases.add(event.phase);
    });
    assert.ok(phases.has('features'), 'features of the frozen prefix are computed once');
    const before = (await readSafetensors(join(base, MODEL_FILE))).tensors;
    const after = (await readSafetensors(join(tuned, MODEL_FILE))).tensors;
    const same = (name: string) =>
      Buffer.compare(Buffer.from(before.get(name)!.data.buffer), Buffer.from(after.get(name)!.data.buffer)) === 0;
    for (const frozen of [
      'conv1.weight',
      'bn1.running_mean',
      'layer1.0.bn1.running_var',
      'layer3.1.conv2.weight',
      'layer3.1.bn2.running_mean',
    ]) {
      assert.ok(same(frozen), `${frozen} must not change under finetune`);
    }
    for (const trained of ['layer4.1.conv2.weight', 'layer4.0.bn1.running_mean', 'fc.weight']) {
      assert.ok(!same(trained), `${trained} must be trained under finetune`);
    }
    assert.equal(existsSync(join(tuned, `.features-${process.pid}.f32`)), false, 'the feature file is removed');
  },
);

test(
  '--split subject-disjoint overrides the fold plan and holds out whole subjects',
  { timeout: 180_000 },
  async () => {
    const { trainRun } = await import('../src/core/train/train.js');
    process.env.XDG_CACHE_HOME = join(work, 'cache');
    const run = await trainRun(
      settings(join(work, 'run-subjects'), { epochs: 1, split: 'subject-disjoint' }),
      () => undefined,
    );
    assert.equal(run.dataset.spec.split.kind, 'subject-disjoint');
    const validation = run.predictions.filter((p) => p.split === 'val');
    const folds = new Set(validation.map((p) => p.path.split('/')[0]));
    assert.ok(folds.size > 1, `held-out subjects come from several folds, not one held-out fold: ${[...folds]}`);
    const trainingImagesPerSubject = new Map<string, number>();
    for (const image of manifest.images) {
      if (image.fold === 'validation') continue;
      // The audit reads h3 and H3 as one subject, as C-NMC means them.
      const subject = image.subject.toUpperCase();
      trainingImagesPerSubject.set(subject, (trainingImagesPerSubject.get(subject) ?? 0) + 1);
    }
    const heldOutPerSubject = new Map<string, number>();
    for (const p of validation) heldOutPerSubject.set(p.subject!, (heldOutPerSubject.get(p.subject!) ?? 0) + 1);
    for (const [subject, count] of heldOutPerSubject) {
      assert.equal(
        count,
        trainingImagesPerSubject.get(subject),
        `every image of held-out subject ${subject} is held out`,
      );
    }
  },
);
