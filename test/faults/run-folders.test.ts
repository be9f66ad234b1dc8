// Run folders under contention and after a kill: exclusive creation, the training lock, --out over an
// existing run, and what a killed trainer leaves behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  acquireRunLock,
  clearRun,
  createRunFolder,
  LOCK_FILE,
  openOutFolder,
  removeLeftovers,
} from '../../src/core/run/claim.js';
import { reportFault } from '../helpers/fault.js';

let work: string;
before(async () => (work = await mkdtemp(join(tmpdir(), 'leukemia-run-folder-'))));
after(() => rm(work, { recursive: true, force: true }));

/** A pid that is certainly dead: a child that has already exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

test('two trainings started in the same second get two folders', async () => {
  const parent = join(work, 'runs');
  const folders = await Promise.all(Array.from({ length: 8 }, () => createRunFolder(parent, 'run-20260101-000000')));
  assert.equal(new Set(folders).size, 8, 'every caller owns its own folder');
  assert.ok(folders.includes(join(parent, 'run-20260101-000000')));
  assert.ok(folders.includes(join(parent, 'run-20260101-000000-8')));
  reportFault(
    'same-second runs',
    `8 concurrent creations of run-20260101-000000 gave 8 folders (${(await readdir(parent)).sort().slice(-2).join(', ')}, …); none shared`,
  );
});

test('a live lock is refused naming its pid; a dead one is taken over', async () => {
  const folder = join(work, 'locked');
  await mkdir(folder);
  const first = await acquireRunLock(folder);
  const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    await first.release();
    await writeFile(join(folder, LOCK_FILE), `${other.pid}\n`);
    await assert.rejects(acquireRunLock(folder), new RegExp(`in use by another training \\(pid ${other.pid}\\)`));
    const refused = await acquireRunLock(folder).catch((error: Error) => error.message);
    const dead = await deadPid();
    await writeFile(join(folder, LOCK_FILE), `${dead}\n`);
    const taken = await acquireRunLock(folder);
    assert.equal((await readFile(join(folder, LOCK_FILE), 'utf8')).trim(), String(process.pid));
    await taken.release();
    assert.equal(existsSync(join(folder, LOCK_FILE)), false, 'release removes the lock');
    reportFault('run folder locked by a live trainer', `refused: "${refused}"`);
    reportFault('stale lock of a dead trainer', `pid ${dead} is dead; the lock was taken over and released after`);
  } finally {
    other.kill('SIGKILL');
  }
});

test('--out over an existing run needs --resume or --force', async () => {
  const folder = join(work, 'existing');
  await mkdir(join(folder, 'explanations'), { recursive: true });
  await writeFile(join(folder, 'run.json'), '{}');
  await writeFile(join(folder, 'model.safetensors'), 'weights');
  await writeFile(join(folder, 'notes.txt'), 'the user’s own file');
  const message = await openOutFolder(folder, { resume: false, force: false }).then(
    () => assert.fail('an existing run was overwritten'),
    (error: Error) => error.message,
  );
  assert.match(message, /already holds a run.*--resume.*--force/);
  assert.equal(await readFile(join(folder, 'model.safetensors'), 'utf8'), 'weights', 'nothing was touched');
  await openOutFolder(folder, { resume: true, force: false });
  await openOutFolder(folder, { resume: false, force: true });
  await clearRun(folder);
  assert.deepEqual(await readdir(folder), ['notes.txt'], 'force removes the run files only');
  reportFault(
    '--out an existing run',
    `refused: "${message}"; --force removed only run.json, weights and explanations`,
  );
});

test('leftovers of dead trainers are removed; a live trainer’s files and other files stay', async () => {
  const folder = join(work, 'leftovers');
  await mkdir(join(folder, 'explanations'), { recursive: true });
  const dead = await deadPid();
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  try {
    const deadFiles = [
      `.features-${dead}.f32`,
      `.checkpoint.safetensors.${dead}.0a1b2c3d.tmp`,
      `.run.json.${dead}.deadbeef.tmp`,
      join('explanations', `.overlay-1.png.${dead}.00ff00ff.tmp`),
    ];
    const kept = [
      `.features-${live.pid}.f32`,
      `.run.json.${live.pid}.12345678.tmp`,
      `.features-${process.pid}.f32`,
      'features-1.f32',
      'my.tmp',
      'run.json',
    ];
    for (const name of [...deadFiles, ...kept]) await writeFile(join(folder, name), 'x');
    const removed = await removeLeftovers(folder);
    assert.deepEqual(removed.sort(), [...deadFiles].sort());
    for (const name of deadFiles) assert.equal(existsSync(join(folder, name)), false, `${name} is removed`);
    for (const name of kept) assert.ok(existsSync(join(folder, name)), `${name} is kept`);
    reportFault(
      'leftovers of a killed trainer',
      `removed ${removed.length} files of dead pid ${dead}; kept ${kept.length} (a live trainer's, ours, and files not ours)`,
    );
  } finally {
    live.kill('SIGKILL');
  }
});
