// The `leukemia-audit` command as a user runs it: the built bundle in a child process, its exit codes,
// what goes to stdout and what to stderr. No training runs here (too slow): only train's refusal.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ensureBuilt } from './helpers/build.js';

const REPO = path.join(__dirname, '..');
const BIN = path.join(REPO, 'bin', 'leukemia-audit.js');

function run(args: string[], options: { cwd?: string } = {}): SpawnSyncReturns<string> {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO,
    encoding: 'utf8',
    timeout: 60_000,
    // No stack traces in stderr: the messages themselves are under test.
    env: { ...process.env, LEUKEMIA_AUDIT_DEBUG: '' },
  });
  assert.equal(result.error, undefined, `could not run the CLI: ${result.error}`);
  return result;
}

const show = (r: SpawnSyncReturns<string>) =>
  `exit ${r.status}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;

const tempDirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cli-test-'));
  tempDirs.push(dir);
  return dir;
}

let demoParent = '';
let demoRoot = '';
let written = 0;
/** An empty folder to run usage errors in, so a wrongly accepted `.` or `x` never touches the repository. */
let scratch = '';

before(async () => {
  ensureBuilt(['cli.js']);
  scratch = await freshDir();
  demoParent = await freshDir();
  const result = run(['demo-data', demoParent, '--image-size', '32', '--images-per-fold', '30', '--seed', '3']);
  assert.equal(result.status, 0, show(result));
  demoRoot = path.join(demoParent, 'C-NMC_Leukemia');
  const match = /Wrote (\d+) images to (.+)/.exec(result.stderr);
  assert.ok(match, show(result));
  written = Number(match[1]);
  assert.equal(match[2].trim(), demoRoot);
});

after(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function listBmps(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.bmp')) found.push(entry.name);
  }
  return found;
}

describe('demo-data', () => {
  test('writes the C-NMC layout: 3 folds × all/hem, numbered validation images and their labels CSV', async () => {
    for (let fold = 0; fold < 3; fold++) {
      for (const label of ['all', 'hem']) {
        const dir = path.join(demoRoot, 'training_data', `fold_${fold}`, label);
        assert.ok(statSync(dir).isDirectory(), dir);
        const names = await readdir(dir);
        assert.ok(names.length > 0, `${dir} is empty`);
        for (const name of names) assert.match(name, new RegExp(`^UID_[hH]?\\d+_\\d+_\\d+_${label}\\.bmp$`));
      }
    }
    const validation = await readdir(path.join(demoRoot, 'validation_data', 'C-NMC_test_prelim_phase_data'));
    assert.ok(validation.length > 0);
    for (const name of validation) assert.match(name, /^\d+\.bmp$/);
    assert.ok(statSync(path.join(demoRoot, 'validation_data', 'C-NMC_test_prelim_phase_data_labels.csv')).isFile());
    assert.equal((await listBmps(demoRoot)).length, written);
    assert.equal((await listBmps(path.join(demoRoot, 'training_data'))).length, 90);
  });

  test('--json prints only the manifest on stdout', async () => {
    const dir = await freshDir();
    const result = run([
      'demo-data',
      dir,
      '--image-size',
      '16',
      '--images-per-fold',
      '30',
      '--duplicates',
      '2',
      '--json',
    ]);
    assert.equal(result.status, 0, show(result));
    const manifest = JSON.parse(result.stdout) as {
      root: string;
      images: { path: string }[];
      defects: { duplicates: unknown[] };
    };
    assert.equal(manifest.root, path.join(dir, 'C-NMC_Leukemia'));
    assert.equal(manifest.defects.duplicates.length, 2);
    assert.equal((await listBmps(manifest.root)).length, manifest.images.length);
  });

  test('refuses to write into a non-empty dataset folder without --overwrite', () => {
    const result = run(['demo-data', demoParent, '--image-size', '32', '--images-per-fold', '30']);
    assert.equal(result.status, 1, show(result));
    assert.ok(result.stderr.includes(demoRoot), show(result));
    assert.match(result.stderr, /already exists/);
  });

  test('an out-of-range --image-size is refused with the allowed range', () => {
    const tooSmall = run(['demo-data', demoParent, '--image-size', '8']);
    assert.equal(tooSmall.status, 2, show(tooSmall));
    assert.match(tooSmall.stderr, /--image-size/);
    const tooLarge = run(['demo-data', demoParent, '--image-size', '500']);
    assert.notEqual(tooLarge.status, 0, show(tooLarge));
    assert.match(tooLarge.stderr, /450/);
  });
});

describe('audit', () => {
  interface JsonFinding {
    code: string;
    severity: string;
    message: string;
    evidence: Record<string, unknown>;
    paths: string[];
  }

  test('--json prints only the report on stdout, exit 0 even with findings', () => {
    const dataset = path.join(demoRoot, 'training_data');
    const result = run(['audit', dataset, '--json']);
    assert.equal(result.status, 0, show(result));
    const report = JSON.parse(result.stdout) as Record<string, unknown>; // the whole of stdout is JSON
    assert.deepEqual(Object.keys(report).sort(), ['findings', 'images', 'root', 'spec', 'unreadable']);
    assert.equal(report.root, dataset);
    assert.equal(report.images, 90);
    assert.deepEqual(report.unreadable, []);
    const spec = report.spec as { root: string; labelSources: unknown[]; version: number };
    assert.equal(spec.version, 1);
    assert.equal(spec.root, dataset);
    assert.deepEqual(spec.labelSources, [{ kind: 'folder', depth: 2 }]);

    const findings = report.findings as JsonFinding[];
    assert.ok(Array.isArray(findings) && findings.length > 0);
    for (const f of findings) {
      assert.deepEqual(Object.keys(f).sort(), ['code', 'evidence', 'message', 'paths', 'severity'], JSON.stringify(f));
      assert.equal(typeof f.code, 'string');
      assert.ok(['error', 'warning', 'info'].includes(f.severity), f.severity);
      assert.ok(typeof f.message === 'string' && f.message.length > 0);
      assert.ok(f.evidence !== null && typeof f.evidence === 'object' && !Array.isArray(f.evidence));
      assert.ok(
        Array.isArray(f.paths) &&
          f.paths.length <= 20 &&
          f.paths.every((p) => typeof p === 'string' && !path.isAbsolute(p)),
      );
    }
    const structural = findings.find((f) => f.code === 'structural-labels');
    assert.equal(structural?.severity, 'error');
    assert.equal(findings[0].severity, 'error', 'errors come first');
  });

  test('without --json it prints a readable report, still exit 0', () => {
    const result = run(['audit', path.join(demoRoot, 'training_data')]);
    assert.equal(result.status, 0, show(result));
    assert.throws(() => JSON.parse(result.stdout));
    assert.match(result.stdout, /structural-labels/);
    assert.match(result.stdout, /fold_0, fold_1 and fold_2/);
  });

  test('--subject-pattern and --no-pixels are honoured', () => {
    const result = run([
      'audit',
      path.join(demoRoot, 'training_data'),
      '--json',
      '--no-pixels',
      '--subject-pattern',
      '^UID_(H?\\d+)_\\d+_',
    ]);
    assert.equal(result.status, 0, show(result));
    const report = JSON.parse(result.stdout) as {
      spec: { subjectPattern: string; subjects: { imagesWithSubject: number } };
    };
    assert.equal(report.spec.subjectPattern, '^UID_(H?\\d+)_\\d+_');
    assert.equal(report.spec.subjects.imagesWithSubject, 90);
  });

  test('a missing folder: exit 1 and stderr names the path', async () => {
    const missing = path.join(await freshDir(), 'no-such-dataset');
    const result = run(['audit', missing, '--json']);
    assert.equal(result.status, 1, show(result));
    assert.ok(result.stderr.includes(missing), show(result));
    assert.equal(result.stdout, '');
  });

  test('a file instead of a folder: exit 1 and a clear message', async () => {
    const file = path.join(await freshDir(), 'labels.csv');
    await writeFile(file, 'a,b\n1,2\n');
    const result = run(['audit', file]);
    assert.equal(result.status, 1, show(result));
    assert.ok(result.stderr.includes(file), show(result));
    assert.match(result.stderr, /not a folder/);
    assert.equal(result.stdout, '');
  });
});

describe('usage', () => {
  const USAGE = /Usage: leukemia-audit <command>/;

  for (const [what, args] of [
    ['an unknown command', ['frobnicate']],
    ['audit without a folder', ['audit']],
    ['audit with two folders', ['audit', 'a', 'b']],
    ['an unknown option', ['audit', '.', '--bogus']],
    ['an invalid --subject-pattern', ['audit', '.', '--subject-pattern', '(unclosed']],
    ['train without a folder', ['train']],
    ['demo-data with a non-integer seed', ['demo-data', 'x', '--seed', 'abc']],
  ] as const) {
    test(`${what}: exit 2 with the usage on stderr`, () => {
      const result = run([...args], { cwd: scratch });
      assert.equal(result.status, 2, show(result));
      assert.match(result.stderr, USAGE, show(result));
      assert.match(result.stderr, /^leukemia-audit: /);
      assert.equal(result.stdout, '');
    });
  }

  test('the bad regular expression is named', () => {
    const result = run(['audit', '.', '--subject-pattern', '(unclosed'], { cwd: scratch });
    assert.match(result.stderr, /--subject-pattern is not a valid regular expression/);
  });

  test('no command at all: exit 2 with the usage on stderr, not stdout', () => {
    const result = run([], { cwd: scratch });
    assert.equal(result.status, 2, show(result));
    assert.match(result.stderr, USAGE, show(result));
    assert.equal(result.stdout, '', 'a usage error must not write to stdout');
  });

  test('--help: exit 0 with the usage on stdout', () => {
    const result = run(['--help']);
    assert.equal(result.status, 0, show(result));
    assert.match(result.stdout, USAGE);
    for (const command of ['audit', 'train', 'demo-data'])
      assert.match(result.stdout, new RegExp(`^  ${command} `, 'm'));
  });

  test("<command> --help: exit 0 with that command's options", () => {
    for (const [command, option] of [
      ['audit', '--subject-pattern'],
      ['train', '--labels'],
      ['demo-data', '--images-per-fold'],
    ]) {
      const result = run([command, '--help']);
      assert.equal(result.status, 0, show(result));
      assert.match(result.stdout, new RegExp(`^Usage: leukemia-audit ${command} `));
      assert.ok(result.stdout.includes(option), show(result));
    }
  });
});

describe('train', () => {
  test('refuses the fold folders of training_data without --labels (exit 3) and recommends --labels folder:2', async () => {
    const dataset = path.join(demoRoot, 'training_data');
    const out = path.join(await freshDir(), 'run');
    const result = run(['train', dataset, '--out', out, '--epochs', '1']);
    assert.equal(result.status, 3, show(result));
    assert.match(result.stderr, /refusing to train/);
    assert.match(result.stderr, /--labels folder:2/);
    assert.match(result.stderr, /fold_0, fold_1 and fold_2/);
    assert.equal(result.stdout, '');
    // A refused run leaves nothing behind.
    assert.equal(existsSync(out), false, `${out} was created by a refused run`);
  });

  test('a refused run without --out creates no run folder next to the dataset', () => {
    const result = run(['train', path.join(demoRoot, 'training_data')]);
    assert.equal(result.status, 3, show(result));
    assert.equal(existsSync(path.join(demoRoot, 'leukemia-audit-runs')), false);
  });

  test('an invalid --labels value is a usage error', () => {
    const result = run(['train', path.join(demoRoot, 'training_data'), '--labels', 'folder:zero']);
    assert.equal(result.status, 2, show(result));
    assert.match(result.stderr, /--labels must be/);
  });
});
