// Fault battery — the real extension bundle (dist/extension.js) activated against the stand-in `vscode` in an
// UNTRUSTED hostile workspace: a leukemia-audit.json whose root is /usr, another with `root` climbing out by
// `../../..`, a dataset whose file names and own leukemia-audit.json make the subject pattern `^(a+)+_`
// backtrack for minutes. Nothing may freeze the host, nothing outside the workspace may be audited, and each
// refusal says why.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoDataset } from '../../src/core/demo/generate.js';
import { RUN_SCHEMA, RUN_SCHEMA_VERSION } from '../../src/core/run/runFile.js';
import { describeLag, measureLag } from '../../src/extension/workspace/eventLoopLag.js';
import { createFakeVscode, installFakeVscode, until as waitUntil, type Diagnostic } from '../integration/fakeVscode.js';
import { reportFault } from '../helpers/fault.js';

const repo = join(__dirname, '..', '..');
let work: string;
let fake: ReturnType<typeof createFakeVscode>;

before(async () => {
  if (!existsSync(join(repo, 'dist', 'extension.js')))
    spawnSync(process.execPath, [join(repo, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: repo });
  work = await realpath(await mkdtemp(join(tmpdir(), 'faults-untrusted-')));
  process.env.XDG_CACHE_HOME = join(work, '.cache');
  await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 24, validationImages: 6, seed: 3 });
  const source = join(work, 'C-NMC_Leukemia', 'training_data', 'fold_0');
  for (const label of ['all', 'hem']) {
    await mkdir(join(work, 'hostile', label), { recursive: true });
    for (const [i, name] of (await readdir(join(source, label))).entries())
      await copyFile(join(source, label, name), join(work, 'hostile', label, `${'a'.repeat(34)}!${label}${i}.bmp`));
  }
  await writeFile(
    join(work, 'hostile', 'leukemia-audit.json'),
    '{ "labels": "folder:1", "subjectPattern": "^(a+)+_" }\n',
  );
  await mkdir(join(work, 'usr-root'));
  await writeFile(join(work, 'usr-root', 'leukemia-audit.json'), '{ "root": "/usr" }\n');
  await mkdir(join(work, 'climb'));
  await writeFile(join(work, 'climb', 'leukemia-audit.json'), '{ "root": "../../.." }\n');
  fake = createFakeVscode({ workspaceFolder: work, trusted: false });
  installFakeVscode(fake.vscode);
});
after(async () => {
  for (const d of fake?.context.subscriptions ?? []) d.dispose();
  await rm(work, { recursive: true, force: true });
});

function datasetDiagnostics(file: string): Diagnostic[] {
  const c = fake.collections.find((x) => x.name === 'leukemia-audit-datasets');
  return [...(c?.entries.values() ?? [])].filter((e) => e.uri.fsPath === file).flatMap((e) => e.diagnostics);
}

function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  return waitUntil(what, probe, fake.logLines, 60_000);
}

test(
  'untrusted and hostile: roots outside refused with the reason, the hostile pattern ignored, the host responsive',
  { timeout: 120_000 },
  async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const extension = require(join(repo, 'dist', 'extension.js')) as {
      activate(context: unknown): { activationMs: number; ready: Promise<void> };
    };
    const { lag, result } = await measureLag(async () => {
      const api = extension.activate(fake.context);
      await api.ready;
      const usr = await until('the /usr refusal', () =>
        datasetDiagnostics(join(work, 'usr-root', 'leukemia-audit.json')).find((d) =>
          /outside the workspace/.test(d.message),
        ),
      );
      const climb = await until('the ../../.. refusal', () =>
        datasetDiagnostics(join(work, 'climb', 'leukemia-audit.json')).find((d) =>
          /outside the workspace|too broad/.test(d.message),
        ),
      );
      const hostile = await until('the hostile dataset audited', () =>
        fake.logLines.find((l) => /Audited \S*hostile/.test(l)),
      );
      return { api, usr, climb, hostile };
    });
    assert.match(result.usr.message, /\/usr is outside the workspace folders/);
    assert.ok(!result.hostile.includes('^(a+)+_'), `the dataset file's pattern is ignored: ${result.hostile}`);
    assert.ok(!fake.logLines.some((l) => /Audited \/usr/.test(l)), 'nothing outside the workspace was audited');
    reportFault(
      'untrusted-hostile-workspace',
      `activation ${result.api.activationMs.toFixed(1)} ms; /usr and ../../.. refused ("${result.usr.message.slice(0, 90)}…"); hostile dataset audited with the default pattern; host event-loop lag ${describeLag(lag)}`,
    );
  },
);

test(
  "a workspace run.json's dataset.root does not become a resource root of the results view",
  { timeout: 30_000 },
  async () => {
    const runDir = join(work, 'runs', 'run-hostile');
    await mkdir(join(runDir, 'explanations'), { recursive: true });
    await writeFile(
      join(runDir, 'run.json'),
      JSON.stringify({ schema: RUN_SCHEMA, version: RUN_SCHEMA_VERSION, dataset: { root: '/' }, explanations: null }),
    );
    await fake.vscode.commands.executeCommand('leukemiaAudit.openResults', fake.vscode.Uri.file(runDir));
    const panel = fake.panels.find((p) => p.viewType === 'leukemiaAudit.results');
    assert.ok(panel, `the results panel opened: ${JSON.stringify(fake.messages)}`);
    const roots = (panel.options as { localResourceRoots: { fsPath: string }[] }).localResourceRoots.map(
      (u) => u.fsPath,
    );
    assert.ok(!roots.includes('/'), `"/" is not a resource root: ${JSON.stringify(roots)}`);
    assert.ok(roots.includes(runDir) && roots.length === 3, JSON.stringify(roots));
    reportFault(
      'results-resource-roots',
      `run.json dataset.root "/": resource roots are only dist, media and the run folder (${roots.length})`,
    );
  },
);
