// --resume on checkpoints that cannot be resumed, and arguments a shell or the extension could mangle: each
// ends in a message naming the file or the fix, and the run's record is kept.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CHECKPOINT_FILE } from '../../src/core/run/runFile.js';
import { readRunFile } from '../../src/core/run/runFileIo.js';
import type { TrainSettings } from '../../src/core/train/settings.js';
import { trainRun } from '../../src/core/train/train.js';
import { readSafetensors, writeSafetensors } from '../../src/core/weights/safetensors.js';
import { ensureBuilt } from '../helpers/build.js';
import { reportFault } from '../helpers/fault.js';
import { tinyDataset, tinySettings } from '../helpers/tinyRun.js';

const cli = join(__dirname, '..', '..', 'bin', 'leukemia-audit.js');
let work: string;
let dataset: string;
let finished: string;

function settings(out: string, overrides: Partial<TrainSettings> = {}): TrainSettings {
  return tinySettings(dataset, out, { epochs: 1, strategy: 'linear', ...overrides });
}

before(async () => {
  ensureBuilt(['cli.js']);
  work = await mkdtemp(join(tmpdir(), 'leukemia-resume-faults-'));
  process.env.XDG_CACHE_HOME = join(work, 'cache');
  dataset = await tinyDataset(work);
  finished = join(work, 'finished');
  await trainRun(settings(finished), () => undefined);
});
after(() => rm(work, { recursive: true, force: true }));

/** A copy of the finished one-epoch run, to be damaged. */
async function copyOfRun(name: string): Promise<string> {
  const out = join(work, name);
  spawnSync('cp', ['-r', finished, out]);
  return out;
}

for (const [fault, damage, expected] of [
  [
    'checkpoint without epoch metadata',
    async (file: string) => {
      const { tensors, metadata } = await readSafetensors(file);
      const { epoch: _epoch, progress: _progress, ...rest } = metadata;
      await writeSafetensors(file, tensors, rest);
    },
    /cannot be resumed: its metadata has no valid epoch \(null\)/,
  ],
  [
    'truncated checkpoint',
    async (file: string) => writeFile(file, (await readFile(file)).subarray(0, 5000)),
    /checkpoint\.safetensors/,
  ],
] as const) {
  test(`--resume from a ${fault}: the run is marked failed naming the file, its history kept`, async () => {
    const out = await copyOfRun(fault.replace(/\W+/g, '-'));
    await damage(join(out, CHECKPOINT_FILE));
    const message = await trainRun(settings(out, { epochs: 3, resume: true }), () => undefined).then(
      () => assert.fail('resumed from a damaged checkpoint'),
      (error: Error) => error.message,
    );
    assert.match(message, expected);
    assert.ok(message.includes(join(out, CHECKPOINT_FILE)), `the message names the file: ${message}`);
    const run = await readRunFile(out);
    assert.equal(run.status, 'failed');
    assert.equal(run.error, message);
    assert.deepEqual(
      run.history.map((h) => h.epoch),
      [1],
      'the epoch done before is still recorded',
    );
    reportFault(`--resume from a ${fault}`, `run.json "failed" with "${message}"; epoch 1's record and files kept`);
  });
}

test('a subject pattern starting with - passes as --subject-pattern=VALUE; the spaced form says how', () => {
  const pattern = '-?UID_(H?\\d+)_';
  const spaced = spawnSync(process.execPath, [cli, 'audit', dataset, '--json', '--subject-pattern', pattern], {
    encoding: 'utf8',
  });
  assert.equal(spaced.status, 2);
  assert.match(spaced.stderr, /--subject-pattern=-XYZ/);
  const joined = spawnSync(process.execPath, [cli, 'audit', dataset, '--json', `--subject-pattern=${pattern}`], {
    encoding: 'utf8',
  });
  assert.equal(joined.status, 0, joined.stderr);
  const report = JSON.parse(joined.stdout);
  assert.equal(report.spec.subjectPattern, pattern);
  assert.ok(report.spec.subjects.count > 0, 'the pattern found subjects');
  reportFault(
    'subject pattern starting with -',
    `"--subject-pattern=${pattern}" audits (${report.spec.subjects.count} subjects); the spaced form exits 2 with "${spaced.stderr.split('\n')[0].slice(0, 140)}"`,
  );
});

test('training into a finished run without --resume or --force is refused before any work; a locked one names its trainer', async () => {
  const before = await readFile(join(finished, 'run.json'), 'utf8');
  const refused = await trainRun(settings(finished), () => undefined).then(
    () => assert.fail('a finished run was overwritten'),
    (error: Error) => error.message,
  );
  assert.match(refused, /already holds a run \(run\.json\); pass --resume to continue it or --force to replace it/);
  assert.equal(await readFile(join(finished, 'run.json'), 'utf8'), before, 'run.json is untouched');

  const out = await copyOfRun('locked');
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    await writeFile(join(out, '.lock'), `${other.pid}\n`);
    const locked = await trainRun(settings(out, { resume: true }), () => undefined).then(
      () => assert.fail('trained in a folder another trainer holds'),
      (error: Error) => error.message,
    );
    assert.match(locked, new RegExp(`in use by another training \\(pid ${other.pid}\\)`));
    assert.equal((await readRunFile(out)).status, 'completed', 'the other trainer’s run is untouched');
    reportFault('train --out a finished run', `refused: "${refused.replace(finished, '<run>')}"`);
    reportFault('train --resume a run another trainer holds', `refused: "${locked.replace(out, '<run>')}"`);
  } finally {
    other.kill('SIGKILL');
  }
});
