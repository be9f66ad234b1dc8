// The interpreter probe's cache against an environment that changes under it: an interpreter that had torch
// when it was probed (and remembered on disk) and then loses it (`pip uninstall torch`) is probed again, so
// `--backend auto` falls back to the embedded engine instead of starting a PyTorch run that cannot import
// torch. The environment is real: /usr/bin/python3 -S with PYTHONPATH on a folder of links to Debian's
// dist-packages (torch 1.13 included); uninstalling is removing the torch and torchvision links. Each step
// runs in a fresh process (as each training run's trainer is), with its own user cache folder.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { PYTHON, runPython } from './helpers/python.js';
import { torchForTests } from './helpers/torch.js';

const execFileAsync = promisify(execFile);
const INTERPRETER_MODULE = join(__dirname, '..', 'src', 'core', 'torch', 'interpreter.ts');
const CHOOSE_MODULE = join(__dirname, '..', 'src', 'core', 'engine', 'choose.ts');

let work = '';
let site = '';
let python = '';
let distPackages = '';
let skip: string | undefined;

before(async () => {
  const torch = await torchForTests();
  if ('skip' in torch) {
    skip = torch.skip;
    return;
  }
  work = await mkdtemp(join(tmpdir(), 'leukemia-interpreter-'));
  // Where Debian's torch lives: every entry there is linked into `site`, the environment's only packages.
  const torchFile = (await runPython('import torch; print(torch.__file__)', [], { timeoutMs: 120_000 })).trim();
  distPackages = dirname(dirname(torchFile));
  site = join(work, 'site');
  await mkdir(site);
  for (const entry of await readdir(distPackages)) await symlink(join(distPackages, entry), join(site, entry));
  python = join(work, 'python-env');
  await writeFile(python, `#!/bin/sh\nPYTHONPATH='${site}' exec ${PYTHON} -S "$@"\n`);
  await chmod(python, 0o755);
});
after(() => (work ? rm(work, { recursive: true, force: true }) : undefined));

/** Runs `body` (TypeScript, with `probeInterpreter`, `chooseEngine` and `python` in scope) in a new process. */
async function inFreshProcess(body: string): Promise<Record<string, unknown>> {
  const script = `
    // tsx loads the repository's modules as CommonJS: their exports are the default export of an import().
    const { probeInterpreter } = (await import(${JSON.stringify(INTERPRETER_MODULE)})).default;
    const { chooseEngine } = (await import(${JSON.stringify(CHOOSE_MODULE)})).default;
    const { unlink } = await import('node:fs/promises');
    const python = ${JSON.stringify(python)};
    const site = ${JSON.stringify(site)};
    const logs = [];
    const out = {};
    ${body}
    process.stdout.write(JSON.stringify(out));`;
  const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, XDG_CACHE_HOME: join(work, 'cache'), LEUKEMIA_AUDIT_PROBE_TIMEOUT_MS: '120000' },
    timeout: 240_000,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout);
}

async function uninstallTorch(): Promise<void> {
  for (const name of ['torch', 'torchvision']) await unlink(join(site, name));
}

async function reinstallTorch(): Promise<void> {
  for (const name of ['torch', 'torchvision']) await symlink(join(distPackages, name), join(site, name));
}

const CHOOSE = `
  const choice = await chooseEngine({ backend: 'auto', python }, (e) => e.type === 'log' && logs.push(e.message));
  out.kind = choice.kind;
  out.skipped = choice.kind === 'tfjs' ? choice.backend.skipped : [];
  out.logs = logs;`;

test(
  'a remembered interpreter that has lost torch is probed again, and auto falls back to the embedded engine',
  { timeout: 600_000 },
  async (t) => {
    if (skip) return t.skip(skip);
    const first = await inFreshProcess(CHOOSE);
    assert.equal(first.kind, 'torch', `the environment has torch: ${JSON.stringify(first)}`);
    const cacheFile = join(work, 'cache', 'leukemia-audit', 'interpreters.json');
    assert.ok(existsSync(cacheFile), 'the working interpreter is remembered on disk');
    const remembered = Object.values(JSON.parse(await readFile(cacheFile, 'utf8'))) as {
      modules: { path: string }[];
    }[];
    assert.deepEqual(
      remembered[0].modules.map((m) => m.path),
      [join(site, 'torch', '__init__.py'), join(site, 'torchvision', '__init__.py')],
      'with the torch and torchvision files its answer depends on',
    );

    await uninstallTorch();
    const second = await inFreshProcess(CHOOSE);
    assert.equal(second.kind, 'tfjs', `no PyTorch run is started: ${JSON.stringify(second)}`);
    const skipped = second.skipped as string[];
    assert.match(skipped[0], /^torch: .*No module named 'torch'/, 'the new probe says why');
    assert.ok((second.logs as string[]).some((line) => /No usable PyTorch/.test(line)));
  },
);

test(
  'within one process too: a probe answered before torch went away is not reused',
  { timeout: 600_000 },
  async (t) => {
    if (skip) return t.skip(skip);
    if (!existsSync(join(site, 'torch'))) await reinstallTorch();
    const seen = await inFreshProcess(`
      out.before = (await probeInterpreter(python)).ok;
      for (const name of ['torch', 'torchvision']) await unlink(site + '/' + name);
      const after = await probeInterpreter(python);
      out.after = after.ok;
      out.reason = after.ok ? '' : after.reason;`);
    assert.equal(seen.before, true);
    assert.equal(seen.after, false, 'probed again once torch was gone');
    assert.match(String(seen.reason), /No module named 'torch'/);
  },
);
