// The extension's side of the trainer process (src/extension/training/trainerProcess.ts, no `vscode` import):
// every way a run can end becomes one outcome — a cancel, and a crash that keeps the last checkpoint.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { CHECKPOINT_FILE } from '../src/core/run/runFile.js';
import type { TrainEvent } from '../src/core/train/events.js';
import { DEFAULT_SETTINGS, type TrainSettings } from '../src/core/train/settings.js';
import { TrainerProcess } from '../src/extension/training/trainerProcess.js';

const root = join(__dirname, '..');
const trainer = join(root, 'dist', 'trainer.js');
let work: string;
let dataset: string;

before(async () => {
  if (!existsSync(trainer))
    spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: root });
  work = await mkdtemp(join(tmpdir(), 'leukemia-extension-trainer-'));
  process.env.XDG_CACHE_HOME = join(work, 'cache');
  await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 24, validationImages: 6, seed: 5 });
  dataset = join(work, 'C-NMC_Leukemia', 'training_data');
});
after(() => rm(work, { recursive: true, force: true }));

function settings(out: string): TrainSettings {
  return { ...DEFAULT_SETTINGS, dataset, out, labels: 'folder:2', imageSize: 32, batchSize: 8, epochs: 3, patience: 0 };
}

test(
  'a killed trainer is a crash with its run folder, and the last checkpoint stays',
  { timeout: 180_000 },
  async () => {
    const process = new TrainerProcess(trainer);
    const events: TrainEvent[] = [];
    const outcome = await process.run(settings(join(work, 'crashed')), {
      onEvent: (event) => {
        events.push(event);
        if (event.type === 'epoch' && event.record.epoch === 1) process.kill();
      },
      onOutput: () => undefined,
    });
    assert.equal(outcome.kind, 'crashed');
    assert.equal(outcome.kind === 'crashed' && outcome.signal, 'SIGKILL');
    assert.equal(outcome.runDir, join(work, 'crashed'));
    assert.ok(existsSync(join(work, 'crashed', CHECKPOINT_FILE)), 'the checkpoint of epoch 1 is kept');
    assert.ok(events.some((e) => e.type === 'started'));
  },
);

test('cancel stops after the current batch and says so', { timeout: 180_000 }, async () => {
  const process = new TrainerProcess(trainer);
  let cancelled = false;
  const outcome = await process.run(settings(join(work, 'cancelled')), {
    onEvent: (event) => {
      if (event.type === 'progress' && !cancelled) {
        cancelled = true;
        process.cancel();
      }
    },
    onOutput: () => undefined,
  });
  assert.equal(outcome.kind, 'cancelled');
  assert.equal(outcome.runDir, join(work, 'cancelled'));
});
