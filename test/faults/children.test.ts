// Child processes that outlive their purpose: a malformed command, a parent that dies, a child stuck in
// synchronous work, a child that stops answering. Real forks of the bundled children, real signals.
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { readRunFile } from '../../src/core/run/runFileIo.js';
import { isAlive } from '../../src/core/run/claim.js';
import type { TrainSettings } from '../../src/core/train/settings.js';
import { TrainerProcess } from '../../src/extension/training/trainerProcess.js';
import { ensureBuilt } from '../helpers/build.js';
import { reportFault } from '../helpers/fault.js';
import { tinyDataset, tinySettings } from '../helpers/tinyRun.js';

const dist = join(__dirname, '..', '..', 'dist');
const trainerBundle = join(dist, 'trainer.js');
const auditBundle = join(dist, 'auditChild.js');
let work: string;
let dataset: string;

before(async () => {
  ensureBuilt(['trainer.js', 'auditChild.js']);
  work = await mkdtemp(join(tmpdir(), 'leukemia-children-'));
  process.env.XDG_CACHE_HOME = join(work, 'cache');
  dataset = await tinyDataset(work);
});
after(() => rm(work, { recursive: true, force: true }));

function settings(out: string, overrides: Partial<TrainSettings> = {}): TrainSettings {
  return tinySettings(dataset, out, overrides);
}

function ended(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

async function waitUntilDead(pid: number, limitMs: number): Promise<number | undefined> {
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    if (!isAlive(pid)) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return undefined;
}

for (const [name, bundle, command] of [
  ['trainer', trainerBundle, { type: 'train' }],
  ['audit child', auditBundle, { type: 'audit', request: { root: 42 } }],
] as const) {
  test(`a malformed command ends the ${name} with one error`, { timeout: 60_000 }, async () => {
    const child = fork(bundle, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const messages: { type: string; message?: string }[] = [];
    child.on('message', (m: { type: string }) => {
      if (m.type === 'ready') child.send(command);
      else if (m.type !== 'heartbeat') messages.push(m);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const { code, signal } = await ended(child);
    clearTimeout(timer);
    assert.equal(signal, null, `the ${name} had to be killed: it stayed alive after a malformed command`);
    assert.equal(code, 0);
    assert.equal(messages.length, 1, JSON.stringify(messages));
    assert.equal(messages[0].type, 'error');
    assert.match(messages[0].message!, /does not understand/);
    reportFault(`malformed command to the ${name}`, `one error "${messages[0].message}", then exit code 0`);
  });
}

test(
  'a trainer whose parent is killed stops at the next batch and marks its run cancelled',
  { timeout: 120_000 },
  async () => {
    const out = join(work, 'orphaned');
    // The parent: forks the trainer, prints its pid, starts training and kills itself at the first batch.
    const parentScript = `
    const { fork } = require('node:child_process');
    const trainer = fork(${JSON.stringify(trainerBundle)}, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    trainer.on('message', (m) => {
      if (m.type === 'ready') { process.stdout.write(trainer.pid + '\\n'); trainer.send({ type: 'train', settings: ${JSON.stringify(settings(out, { epochs: 50 }))} }); }
      if (m.type === 'event' && m.event.type === 'progress') process.kill(process.pid, 'SIGKILL');
    });`;
    const parent = spawn(process.execPath, ['-e', parentScript], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    parent.stdout.on('data', (chunk) => (stdout += chunk));
    assert.equal((await ended(parent)).signal, 'SIGKILL');
    const trainerPid = Number(stdout.trim());
    assert.ok(trainerPid > 0, `the parent printed the trainer's pid: "${stdout}"`);
    const tookMs = await waitUntilDead(trainerPid, 60_000);
    if (tookMs === undefined) process.kill(trainerPid, 'SIGKILL');
    assert.ok(tookMs !== undefined, 'the orphaned trainer was still running 60 s after its parent died');
    const run = await readRunFile(out);
    assert.equal(run.status, 'cancelled');
    reportFault(
      'parent of a training killed',
      `the trainer noticed the disconnect and ended ${(tookMs / 1000).toFixed(1)} s later; run.json says "${run.status}" ("${run.error}"), ${run.history.length} epochs kept`,
    );
  },
);

test('a child stuck in synchronous work ends when its parent dies', { timeout: 60_000 }, async () => {
  const stuck = join(__dirname, 'fixtures', 'stuckChild.ts');
  const parentScript = `
    const { fork } = require('node:child_process');
    const child = fork(${JSON.stringify(stuck)}, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.on('message', (m) => { if (m.type === 'ready') { process.stdout.write(child.pid + '\\n'); process.kill(process.pid, 'SIGKILL'); } });`;
  const parent = spawn(process.execPath, ['-e', parentScript], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: join(__dirname, '..', '..'),
  });
  let stdout = '';
  parent.stdout.on('data', (chunk) => (stdout += chunk));
  await ended(parent);
  const childPid = Number(stdout.trim());
  assert.ok(childPid > 0, `the parent printed the child's pid: "${stdout}"`);
  const tookMs = await waitUntilDead(childPid, 40_000);
  if (tookMs === undefined) process.kill(childPid, 'SIGKILL');
  assert.ok(tookMs !== undefined, 'the child stuck in a synchronous loop outlived its parent by 40 s');
  reportFault(
    'child stuck in synchronous work, parent killed',
    `the parent-pid watcher thread killed it ${(tookMs / 1000).toFixed(1)} s after the parent died (15 s grace to stop cleanly)`,
  );
});

test(
  'a trainer that stops answering is killed and its run marked failed, naming the stall',
  { timeout: 120_000 },
  async () => {
    const out = join(work, 'stalled');
    const trainer = new TrainerProcess(trainerBundle, 10);
    let stopped = false;
    const outcome = await trainer.run(settings(out), {
      onEvent: (event) => {
        if (event.type === 'progress' && !stopped) {
          stopped = true;
          // A stopped process is silent exactly like one stuck in a synchronous loop.
          process.kill(trainer.pid!, 'SIGSTOP');
        }
      },
      onOutput: () => undefined,
    });
    assert.ok(stopped, 'training reached its first batch');
    assert.equal(outcome.kind, 'error');
    const message = outcome.kind === 'error' ? outcome.message : '';
    assert.match(
      message,
      /stopped responding \(no heartbeat for 10 s, while training epoch 1, batch \d+\/\d+\) and was killed/,
    );
    const run = await readRunFile(out);
    assert.equal(run.status, 'failed');
    assert.equal(run.error, message);
    reportFault(
      'trainer stuck (SIGSTOP)',
      `killed by the hang watchdog; outcome error and run.json "failed": "${message}"`,
    );
  },
);
