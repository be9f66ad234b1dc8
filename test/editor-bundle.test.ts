// The extension bundle (dist/extension.js, development or --production build) loaded and activated outside VS
// Code against test/integration/fakeVscode.ts: activation must not load tfjs or sharp (they belong to the
// trainer and CLI processes), must register every command package.json declares, and must be fast.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { before, test } from 'node:test';
import { createFakeVscode } from './integration/fakeVscode.js';

const root = join(__dirname, '..');
const bundle = join(root, 'dist', 'extension.js');

before(() => {
  if (!existsSync(bundle))
    spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: root });
});

test('activation loads neither tfjs nor sharp, registers every declared command, and takes milliseconds', (t) => {
  // An empty workspace: activation itself is measured, not the dataset search that follows it.
  const fake = createFakeVscode({ workspaceFolder: tmpdir() });
  fake.vscode.workspace.workspaceFolders = [];
  const load = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
  (Module as unknown as { _load: typeof load })._load = (request: string, ...rest: unknown[]) =>
    request === 'vscode' ? fake.vscode : load(request, ...rest);
  try {
    const before = new Set(Object.keys(require.cache));
    const started = performance.now();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const extension = require(bundle) as { activate(context: unknown): { activationMs: number } };
    const loaded = performance.now();
    const api = extension.activate(fake.context);
    const activated = performance.now();
    const newlyLoaded = Object.keys(require.cache).filter((k) => !before.has(k));
    assert.deepEqual(
      newlyLoaded.filter((k) => /tensorflow|sharp|@img/.test(k)),
      [],
      'no tfjs or sharp module was loaded',
    );
    const declared = (
      JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).contributes.commands as { command: string }[]
    )
      .map((c) => c.command)
      .sort();
    assert.deepEqual([...fake.commands.keys()].sort(), declared);
    assert.ok(api.activationMs < 200, `activate() took ${api.activationMs} ms`);
    assert.ok(
      fake.logLines.some((l) => /^\[info\] Leukemia Audit test activated in \d+\.\d ms/.test(l)),
      'the activation time is logged',
    );
    // Reported by the test run: module evaluation and activate() outside VS Code.
    t.diagnostic(
      `dist/extension.js: require ${(loaded - started).toFixed(1)} ms, activate() ${(activated - loaded).toFixed(1)} ms`,
    );
    for (const d of fake.context.subscriptions) d.dispose();
  } finally {
    (Module as unknown as { _load: typeof load })._load = load;
  }
});

test('the bundle never requires tfjs, and sharp at most once (lazily, in the image decoder)', () => {
  const source = readFileSync(bundle, 'utf8');
  assert.equal(/require\(["']@tensorflow\//.test(source), false);
  assert.ok([...source.matchAll(/require\(["']sharp["']\)/g)].length <= 1);
});
