// The real extension bundle (dist/extension.js) activated against test/integration/fakeVscode.ts on a fixture
// workspace: warnings appear without any user action, the Train command asks before training on folds and
// then trains in the forked trainer, the audit runs in the forked audit child. VS Code itself: npm run test:integration.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoDataset } from '../src/core/demo/generate.js';
import { createFakeVscode, installFakeVscode, until as waitUntil, type Diagnostic } from './integration/fakeVscode.js';

const root = join(__dirname, '..');
const KAGGLE = '/kaggle/input/leukemia-classification/C-NMC_Leukemia/training_data';
let work: string;
let fake: ReturnType<typeof createFakeVscode>;
let training: string;
let answers: ((kind: string, message: string, options: unknown[]) => unknown)[] = [];

before(async () => {
  if (!existsSync(join(root, 'dist', 'extension.js')))
    spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit', cwd: root });
  work = await mkdtemp(join(tmpdir(), 'leukemia-extension-'));
  process.env.XDG_CACHE_HOME = join(work, '.cache');
  await generateDemoDataset(work, { imageSize: 32, imagesPerFold: 24, validationImages: 6, seed: 2 });
  training = join(work, 'C-NMC_Leukemia', 'training_data');
  await writeFile(
    join(work, 'train.py'),
    `import torchvision\nds = torchvision.datasets.ImageFolder('${KAGGLE}', transform=None)\n`,
  );
  await writeFile(
    join(work, 'copied.ipynb'),
    JSON.stringify({
      metadata: { kernelspec: { language: 'python' } },
      cells: [
        { cell_type: 'markdown', source: ['# ALL vs HEM'] },
        { cell_type: 'code', source: [`data_dir = "${KAGGLE}"\n`] },
        { cell_type: 'code', source: ['train = datasets.ImageFolder(data_dir)\n'] },
      ],
    }),
  );
  await writeFile(join(training, 'leukemia-audit.json'), '{\n  "labels": "folder:1"\n}\n');
  await mkdir(join(work, 'docs'));
  fake = createFakeVscode({
    workspaceFolder: work,
    configuration: { epochs: 1, imageSize: 32, batchSize: 8 },
    answer: (kind, message, options) => answers.shift()?.(kind, message, options),
  });
  installFakeVscode(fake.vscode);
});
after(async () => {
  for (const d of fake?.context.subscriptions ?? []) d.dispose();
  await rm(work, { recursive: true, force: true });
});

function diagnostics(collection: string, file: string): Diagnostic[] {
  const c = fake.collections.find((x) => x.name === collection)!;
  return [...c.entries.values()].filter((e) => e.uri.fsPath === file).flatMap((e) => e.diagnostics);
}

function until<T>(what: string, probe: () => T | undefined, timeoutMs?: number): Promise<T> {
  return waitUntil(what, probe, fake.logLines, timeoutMs);
}

test('activation, then warnings in the Problems panel without any user action', { timeout: 60_000 }, async () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const extension = require(join(root, 'dist', 'extension.js')) as {
    activate(context: unknown): { activationMs: number; ready: Promise<void> };
  };
  const api = extension.activate(fake.context);
  assert.ok(api.activationMs < 200);
  await api.ready;

  const py = await until('the train.py warning', () => diagnostics('leukemia-audit-python', join(work, 'train.py'))[0]);
  assert.equal(py.code, 'structural-labels');
  assert.equal(py.severity, 1);
  assert.deepEqual(
    [py.range.start.line, py.range.start.character, py.range.end.character],
    [1, 38, 38 + KAGGLE.length + 2],
  );
  assert.match(
    py.message,
    /^ImageFolder will use fold_0, fold_1 and fold_2 — the sub-folders of training_data — as its classes/,
  );

  const notebook = await until(
    'the notebook warning',
    () => diagnostics('leukemia-audit-python', join(work, 'copied.ipynb'))[0],
  );
  assert.match(
    notebook.message,
    /^cell 2: ImageFolder will use fold_0/,
    'the literal is in cell 2; the call in cell 3',
  );

  const file = join(training, 'leukemia-audit.json');
  const json = await until('the dataset-file error', () =>
    diagnostics('leukemia-audit-datasets', file).find((d) => d.code === 'structural-labels'),
  );
  assert.equal(json.severity, 0);
  assert.deepEqual([json.range.start.line, json.range.start.character], [1, 12]);

  // The C-NMC folder above has no dataset file: its findings sit on their evidence images.
  const anchored = await until('folder findings', () => {
    const c = fake.collections.find((x) => x.name === 'leukemia-audit-datasets')!;
    const found = [...c.entries.values()].filter((e) => e.uri.fsPath.endsWith('.bmp'));
    return found.length > 0 ? found : undefined;
  });
  assert.ok(anchored.every((e) => e.uri.fsPath.startsWith(join(work, 'C-NMC_Leukemia'))));
  assert.ok(
    anchored
      .flatMap((e) => e.diagnostics)
      .some((d) => d.code === 'structural-labels' && d.message.startsWith('C-NMC_Leukemia: ')),
  );
});

test(
  'Train asks before training on the folds, then trains on all/hem in the trainer process and opens the results',
  { timeout: 180_000 },
  async () => {
    answers = [
      (kind, message, options) => {
        assert.equal(kind, 'warning');
        assert.equal(
          message,
          'fold_0/fold_1/fold_2 look like cross-validation folds; the diagnoses all/hem are one level deeper.',
        );
        assert.deepEqual(options, ['Train on all/hem (recommended)', 'Train on the folder labels anyway']);
        return 'Train on all/hem (recommended)';
      },
    ];
    await fake.vscode.commands.executeCommand(
      'leukemiaAudit.train',
      fake.vscode.Uri.file(join(training, 'leukemia-audit.json')),
    );
    const modal = fake.messages.find((m) => m.kind === 'warning')!;
    assert.match(modal.detail!, /predict the fold, not the diagnosis/);
    const results = fake.panels.find((p) => p.viewType === 'leukemiaAudit.results');
    assert.ok(
      results,
      `the results panel opened; messages: ${JSON.stringify(fake.messages)}\n${fake.logLines.join('\n')}`,
    );
    assert.match(
      results.html,
      /Content-Security-Policy" content="default-src 'none'; img-src vscode-webview:\/\/fake data:; style-src vscode-webview:\/\/fake; font-src vscode-webview:\/\/fake; script-src 'nonce-/,
    );
    assert.match(
      results.html,
      /<script type="module" nonce="[A-Za-z0-9]+" src="vscode-webview:\/\/fake[^"]*dist\/webview\.js">/,
    );
    results.receive({ type: 'ready' });
    const shown = results.posted.find((m) => (m as { type: string }).type === 'showRun') as {
      run: { status: string; settings: { labels: string }; dataset: { labelsAreStructural: boolean } };
    };
    assert.equal(shown.run.status, 'completed');
    assert.equal(shown.run.settings.labels, 'folder:2');
    assert.equal(shown.run.dataset.labelsAreStructural, false);

    // openImage: inside the dataset it opens; outside it is refused and logged.
    results.receive({ type: 'openImage', path: '../../../etc/passwd' });
    assert.ok(fake.logLines.some((l) => l.startsWith('[warn] Refused to open "../../../etc/passwd"')));
    // A link inside the dataset to a file elsewhere is refused too: the check is by real path.
    await symlink('/etc/hostname', join(training, 'escape.bmp'));
    results.receive({ type: 'openImage', path: 'escape.bmp' });
    assert.ok(fake.logLines.some((l) => l.startsWith('[warn] Refused to open "escape.bmp"')));
    await rm(join(training, 'escape.bmp'));
    const opened: string[] = [];
    const listener = fake.vscode.commands.registerCommand('vscode.open', (uri: unknown) => {
      opened.push((uri as { fsPath: string }).fsPath);
    });
    const image = (await readdir(join(training, 'fold_0', 'all')))[0];
    results.receive({ type: 'openImage', path: `fold_0/all/${image}` });
    listener.dispose();
    assert.deepEqual(opened, [join(training, 'fold_0', 'all', image)]);
    const dashboard = fake.panels.find((p) => p.viewType === 'leukemiaAudit.dashboard')!;
    // The dashboard is an entry of the webview bundle, loaded like the results view: a module carrying the nonce.
    const script = /<script type="module" nonce="[A-Za-z0-9]+" src="[^"]*(\/dist\/dashboard\.js)">/.exec(
      dashboard.html,
    );
    assert.ok(script, dashboard.html);
    assert.ok(existsSync(join(root, script[1])), 'dist/dashboard.js is built');
    const runs = join(work, '.leukemia-audit', 'runs');
    assert.ok(existsSync(runs), 'the run went to ${workspaceFolder}/.leukemia-audit/runs');
  },
);

test('Audit Dataset Labels runs the full audit in the CLI process and reports it', { timeout: 120_000 }, async () => {
  answers = [
    (kind, message) => {
      assert.equal(kind, 'warning');
      assert.match(message, /^Audit of training_data: [\d,]+ images — 1 error, 1 warning, \d+ notes\.$/);
      return undefined;
    },
  ];
  const report = (await fake.vscode.commands.executeCommand('leukemiaAudit.audit', fake.vscode.Uri.file(training))) as {
    images: number;
    findings: { code: string }[];
  };
  assert.ok(report.images > 0);
  assert.ok(report.findings.some((f) => f.code === 'structural-labels'));
});

test('Export Audit Report writes the HTML report of a run', { timeout: 60_000 }, async () => {
  const runs = join(work, '.leukemia-audit', 'runs');
  const runDir = join(runs, (await import('node:fs')).readdirSync(runs)[0]);
  const out = join(work, 'report.html');
  const written = await fake.vscode.commands.executeCommand('leukemiaAudit.exportReport', runDir, out);
  assert.equal(written, out);
  assert.match(readFileSync(out, 'utf8'), /<script type="application\/json" id="run-data">/);
});

test(
  'a results panel restored after a reload finds its run: from the page state, else from its title',
  { timeout: 30_000 },
  async () => {
    const runs = join(work, '.leukemia-audit', 'runs');
    const runDir = join(runs, (await import('node:fs')).readdirSync(runs)[0]);
    const serializer = fake.serializers.get('leukemiaAudit.results')!;
    for (const [state, title] of [
      [{ runDir, opacity: 0.5 }, 'Results: something else'],
      [{ opacity: 0.5 }, `Results: ${(await import('node:path')).basename(runDir)}`],
    ] as const) {
      const panel = fake.vscode.window.createWebviewPanel('leukemiaAudit.results', title);
      await serializer.deserializeWebviewPanel(panel, state);
      assert.match(panel.html, /dist\/webview\.js/, `restored from ${JSON.stringify(state)}`);
      panel.receive({ type: 'ready' });
      assert.equal((panel.posted.at(-1) as { runDir: string }).runDir, runDir);
      panel.dispose();
    }
    const lost = fake.vscode.window.createWebviewPanel('leukemiaAudit.results', 'Results: unknown');
    await serializer.deserializeWebviewPanel(lost, undefined);
    assert.match(lost.html, /no longer available/);
  },
);
