// The disk fills up while a run writes its checkpoint and run.json: on a real, small tmpfs mounted for the
// test. The previous epoch's files stay whole, the run says ENOSPC, and --resume on a disk with room
// finishes it. Needs root (mount); where it cannot mount, the output says so and CI fails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, statfsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CHECKPOINT_FILE, MODEL_FILE } from '../../src/core/run/runFile.js';
import { readCheckpointMetadata, readRunFile } from '../../src/core/run/runFileIo.js';
import type { TrainSettings } from '../../src/core/train/settings.js';
import { trainRun } from '../../src/core/train/train.js';
import { readSafetensors } from '../../src/core/weights/safetensors.js';
import { reportFault } from '../helpers/fault.js';
import { tinyDataset, tinySettings } from '../helpers/tinyRun.js';

let work: string;
let dataset: string;
let disk: string;
let cannotMount: string | undefined;

function mount(options: string): string | undefined {
  const result = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', disk], { encoding: 'utf8' });
  return result.status === 0 ? undefined : (result.stderr || result.error?.message || `exit ${result.status}`).trim();
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'leukemia-disk-full-'));
  process.env.XDG_CACHE_HOME = join(work, 'cache');
  dataset = await tinyDataset(work);
  disk = join(work, 'disk');
  await mkdir(disk);
  // 120 MiB: one epoch's checkpoint and model (about 45 MB each at ResNet-18's size) fit, the next
  // checkpoint's temporary copy does not.
  cannotMount = mount('size=120m');
});
after(async () => {
  if (!cannotMount) spawnSync('umount', [disk]);
  await rm(work, { recursive: true, force: true });
});

function settings(out: string, overrides: Partial<TrainSettings> = {}): TrainSettings {
  return tinySettings(dataset, out, { strategy: 'linear', ...overrides });
}

function runnable(t: { skip(message: string): void }): boolean {
  if (!cannotMount) return true;
  const why = `NOT RUN: cannot mount a small tmpfs here (${cannotMount}); needs root or CAP_SYS_ADMIN`;
  reportFault('disk full', why);
  assert.notEqual(process.env.CI, 'true', why);
  t.skip(why);
  return false;
}

/** With room again, --resume finishes the run from the epochs that were kept. */
async function resumeToTheEnd(out: string): Promise<void> {
  const resumed = await trainRun(settings(out, { resume: true }), () => undefined);
  assert.equal(resumed.status, 'completed');
  assert.deepEqual(
    resumed.history.map((h) => h.epoch),
    [1, 2, 3],
  );
}

async function checkpointEpoch(runDir: string): Promise<number> {
  const file = join(runDir, CHECKPOINT_FILE);
  return readCheckpointMetadata((await readSafetensors(file)).metadata, file).epoch;
}

test(
  'disk full during the checkpoint: the previous files stay, the run is marked failed naming ENOSPC, resume finishes',
  { timeout: 600_000 },
  async (t) => {
    if (!runnable(t)) return;
    const out = join(disk, 'run-checkpoint');
    const error = await trainRun(settings(out), () => undefined).then(
      () => assert.fail('three epochs cannot fit on 120 MiB'),
      (e: Error) => e,
    );
    assert.match(error.message, /ENOSPC/);
    assert.match(error.message, new RegExp(`${CHECKPOINT_FILE}|${MODEL_FILE}`));
    const failed = await readRunFile(out);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error!, /ENOSPC/);
    const kept = failed.history.map((h) => h.epoch);
    assert.ok(kept.length >= 1, 'the first epoch fitted');
    assert.equal(await checkpointEpoch(out), kept.length, 'the checkpoint of the last recorded epoch is whole');
    const model = await readSafetensors(join(out, MODEL_FILE));
    assert.equal(Number(model.metadata.epoch), failed.bestEpoch, 'run.json names the epoch model.safetensors holds');
    assert.deepEqual(
      (await readdir(out)).filter((n) => n.endsWith('.tmp')),
      [],
      'no partial file is left',
    );

    assert.equal(spawnSync('mount', ['-o', 'remount,size=400m', disk]).status, 0, 'remount with room');
    await resumeToTheEnd(out);
    reportFault(
      'disk full during a checkpoint write (tmpfs 120 MiB)',
      `run.json "failed": "${failed.error}"; kept epochs [${kept}] with their checkpoint and model; --resume with room completed epochs 1-3`,
    );
    spawnSync('mount', ['-o', 'remount,size=120m', disk]);
    await rm(out, { recursive: true, force: true });
  },
);

test(
  'disk completely full: run.json cannot even be marked, the error still names ENOSPC and the last good files stay',
  { timeout: 600_000 },
  async (t) => {
    if (!runnable(t)) return;
    assert.equal(spawnSync('mount', ['-o', 'remount,size=400m', disk]).status, 0);
    const out = join(disk, 'run-full');
    const filler = join(disk, 'filler');
    const logs: string[] = [];
    const error = await trainRun(settings(out), (event) => {
      if (event.type === 'log') logs.push(event.message);
      // After the first epoch's files, take every byte that is left.
      if (event.type === 'epoch' && event.record.epoch === 1) {
        const { bavail, bsize } = statfsSync(disk);
        writeFileSync(filler, Buffer.alloc(Math.max(0, bavail * bsize - 4096)));
        for (let i = 0; statfsSync(disk).bavail > 0 && i < 64; i++)
          writeFileSync(join(disk, `filler-${i}`), Buffer.alloc(4096));
      }
    }).then(
      () => assert.fail('the disk was full'),
      (e: Error) => e,
    );
    assert.match(error.message, /ENOSPC/);
    const unmarked = logs.find((l) => l.startsWith('run.json could not be marked'));
    const run = await readRunFile(out);
    assert.deepEqual(
      run.history.map((h) => h.epoch),
      [1],
      'run.json of epoch 1 is whole',
    );
    assert.equal(await checkpointEpoch(out), 1);
    await readSafetensors(join(out, MODEL_FILE));
    assert.deepEqual(
      (await readdir(out)).filter((n) => n.endsWith('.tmp')),
      [],
    );
    if (!unmarked) assert.equal(run.status, 'failed', 'either run.json says failed, or the log says why it cannot');

    for (const name of await readdir(disk)) if (name.startsWith('filler')) await rm(join(disk, name));
    await resumeToTheEnd(out);
    reportFault(
      'disk completely full during a checkpoint and run.json write',
      `error "${error.message}"; ${unmarked ? `logged "${unmarked.slice(0, 160)}…"` : `run.json "${run.status}"`}; run.json, checkpoint and model of epoch 1 whole; after freeing space --resume completed epochs 1-3`,
    );
    assert.ok(existsSync(out));
  },
);
