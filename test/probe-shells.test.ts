// The probe's two shells around probeDataset, as users meet them: the `leukemia-audit probe` command (the
// built bundle in a child process: JSON only on stdout, progress on stderr, exit codes) and the trainer child
// the extension forks (the probe request, progress with phases, the run, cancel).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import type { RunFile } from '../src/core/run/runFile.js';
import { runProbeProcess } from '../src/extension/evaluation/evaluateProcess.js';
import { isTrainerCommand, parseTrainerMessage } from '../src/protocol/trainer.js';
import { ensureBuilt } from './helpers/build.js';

const REPO = path.join(__dirname, '..');
const BIN = path.join(REPO, 'bin', 'leukemia-audit.js');
const TRAINER = path.join(REPO, 'dist', 'trainer.js');
let work = '';
let dataset = '';
let env: NodeJS.ProcessEnv = {};

before(async () => {
  ensureBuilt(['cli.js', 'trainer.js', 'webview.js']);
  work = await mkdtemp(path.join(os.tmpdir(), 'probe-shells-'));
  await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 30, seed: 4 });
  dataset = path.join(work, 'C-NMC_Leukemia', 'training_data');
  // The feature and image caches of this test stay in its folder.
  env = { ...process.env, XDG_CACHE_HOME: path.join(work, 'cache'), LEUKEMIA_AUDIT_DEBUG: '' };
});
after(() => rm(work, { recursive: true, force: true }));

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: work, encoding: 'utf8', timeout: 120_000, env });
  assert.equal(result.error, undefined, String(result.error));
  return result;
}

test('leukemia-audit probe --json: only the run.json on stdout, the run folder with report, exit 0', () => {
  const out = path.join(work, 'cli-run');
  const result = cli(['probe', dataset, '--weights', 'none', '--image-size', '32', '--out', out, '--json']);
  assert.equal(result.status, 0, result.stderr);
  const run = JSON.parse(result.stdout) as RunFile;
  assert.equal(run.kind, 'probe');
  assert.deepEqual(run.probe!.group!.classes, ['fold_0', 'fold_1', 'fold_2']);
  assert.equal(run.probe!.diagnosis!.classes.join(','), 'all,hem');
  assert.match(result.stderr, /random ResNet-18/);
  assert.match(result.stderr, new RegExp(`Probe run ${out.replace(/[/\\]/g, '.')}, report`));
  assert.ok(existsSync(path.join(out, 'run.json')) && existsSync(path.join(out, 'report.html')));

  // Without --json: the verdicts as text; --out on a folder with a run is refused unless --force.
  const again = cli(['probe', dataset, '--weights', 'none', '--image-size', '32', '--out', out]);
  assert.equal(again.status, 1, again.stderr);
  assert.match(again.stderr, /already holds a run/);
  const forced = cli(['probe', dataset, '--weights', 'none', '--image-size', '32', '--out', out, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, /not predictable: the fold cannot be predicted from the pixels/);
  assert.match(forced.stdout, /true \\ predicted/);
  assert.match(forced.stdout, /600 cached|\d+ cached, 0 computed/);
});

test('leukemia-audit probe: usage errors exit 2 and name the option', () => {
  const badGroup = cli(['probe', dataset, '--group', 'fold']);
  assert.equal(badGroup.status, 2);
  assert.match(badGroup.stderr, /--group must be auto, folder:N or csv:COLUMN, got "fold"/);
  const noFolder = cli(['probe']);
  assert.equal(noFolder.status, 2);
  assert.match(noFolder.stderr, /probe takes exactly one dataset folder/);
  const missingColumn = cli(['probe', dataset, '--group', 'csv:site', '--weights', 'none']);
  assert.equal(missingColumn.status, 3, missingColumn.stderr);
  assert.match(missingColumn.stderr, /No label table of this dataset has a group column site/);
});

test('leukemia-audit probe: Ctrl-C while images are prepared or features computed cancels, exit 130, no run folder', async () => {
  const out = path.join(work, 'cli-interrupted');
  // Its own larger dataset, at a size nothing was cached at: on onnxruntime (both cores) the shared one's 90
  // images at 160 px took about a second, and the probe could end before the interrupt reached it.
  const large = path.join(work, 'large');
  await generateDemoDataset(large, { imageSize: 32, imagesPerFold: 120, seed: 5 });
  const child = spawn(
    process.execPath,
    [
      BIN,
      'probe',
      path.join(large, 'C-NMC_Leukemia', 'training_data'),
      '--weights',
      'none',
      '--image-size',
      '224',
      '--out',
      out,
    ],
    {
      cwd: work,
      env,
    },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    if (/(preparing images|features) \d+\/\d+/.test(stderr) && !child.killed) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /probe cancelled/);
  assert.ok(!existsSync(out), 'a cancelled probe leaves no empty run folder');
});

test('the trainer protocol carries probe requests and their progress, and nothing malformed', () => {
  const request = { dataset: '/d', out: '/r', weights: 'none', group: 'folder:1', imageSize: 64 };
  assert.ok(isTrainerCommand({ type: 'probe', request }));
  assert.ok(!isTrainerCommand({ type: 'probe', request: { ...request, out: 3 } }));
  assert.ok(!isTrainerCommand({ type: 'probe', request: { ...request, imageSize: 8 } }));
  assert.deepEqual(
    parseTrainerMessage({ type: 'probe-progress', phase: 'features', done: 3, total: 9, etaSeconds: 4 }),
    {
      type: 'probe-progress',
      phase: 'features',
      done: 3,
      total: 9,
      etaSeconds: 4,
    },
  );
  assert.equal(parseTrainerMessage({ type: 'probe-progress', phase: 'training', done: 3, total: 9 }), undefined);
  assert.equal(parseTrainerMessage({ type: 'probed', runDir: '/r' }), undefined);
});

test(
  'the probe in the trainer child: phases with progress, the run; cancelled when aborted',
  { timeout: 180_000 },
  async () => {
    const phases = new Set<string>();
    let sawEta = false;
    const childEnv = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = path.join(work, 'child-cache');
    try {
      const outcome = await runProbeProcess(
        TRAINER,
        { dataset, out: path.join(work, 'child-run'), weights: 'none', imageSize: 32 },
        {
          onProgress: (phase, _done, _total, eta) => {
            phases.add(phase);
            if (eta !== undefined) sawEta = true;
          },
        },
      );
      assert.equal(outcome.kind, 'done', JSON.stringify(outcome).slice(0, 500));
      if (outcome.kind !== 'done') return;
      assert.equal(outcome.run.kind, 'probe');
      assert.equal(outcome.runDir, path.join(work, 'child-run'));
      for (const phase of ['audit', 'prepare', 'features', 'probe'])
        assert.ok(phases.has(phase), [...phases].join(','));
      assert.ok(sawEta, 'an ETA while features are computed');

      const controller = new AbortController();
      const cancelled = runProbeProcess(
        TRAINER,
        // Another size: nothing cached, so there is time to cancel while features are computed.
        { dataset, out: path.join(work, 'child-cancelled'), weights: 'none', imageSize: 64 },
        { signal: controller.signal, onProgress: (phase) => phase === 'features' && controller.abort() },
      );
      assert.equal((await cancelled).kind, 'cancelled');
      assert.ok(!existsSync(path.join(work, 'child-cancelled')), 'a cancelled probe leaves no run folder');
    } finally {
      if (childEnv === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = childEnv;
    }
  },
);
