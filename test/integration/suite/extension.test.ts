/// <reference types="mocha" />
// The extension in a real VS Code, on the fixture written by test/integration/run.mjs: a C-NMC-like dataset,
// a script that calls ImageFolder on a Kaggle path, and a leukemia-audit.json asking for the fold labels.
import * as assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

const EXTENSION_ID = 'leukemia-audit.leukemia-audit';
const COMMANDS = [
  'leukemiaAudit.train',
  'leukemiaAudit.audit',
  'leukemiaAudit.openResults',
  'leukemiaAudit.createDemoDataset',
  'leukemiaAudit.exportReport',
  'leukemiaAudit.cancelTraining',
  'leukemiaAudit.showDashboard',
  'leukemiaAudit.showLog',
];

function workspaceRoot(): string {
  return vscode.workspace.workspaceFolders![0].uri.fsPath;
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function leukemiaDiagnostics(uri: vscode.Uri, code: string): vscode.Diagnostic[] | undefined {
  const found = vscode.languages.getDiagnostics(uri).filter((d) => d.source === 'leukemia-audit' && d.code === code);
  return found.length > 0 ? found : undefined;
}

suite('Leukemia Audit extension', () => {
  let api: { activationMs: number; ready: Promise<void> };

  suiteSetup(async () => {
    const extension = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(extension, `${EXTENSION_ID} is installed`);
    api = await extension.activate();
    await api.ready;
  });

  test('activates quickly and registers its commands', async () => {
    assert.ok(api.activationMs < 500, `activation took ${api.activationMs} ms`);
    const commands = await vscode.commands.getCommands(true);
    for (const command of COMMANDS) assert.ok(commands.includes(command), command);
  });

  test('ImageFolder on a Kaggle path gets a warning on the string, with the fold names', async () => {
    const uri = vscode.Uri.file(path.join(workspaceRoot(), 'train_notebook.py'));
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document);
    const [warning] = await until('the ImageFolder warning', () => leukemiaDiagnostics(uri, 'structural-labels'));
    assert.equal(warning.severity, vscode.DiagnosticSeverity.Warning);
    assert.equal(
      document.getText(warning.range),
      "'/kaggle/input/leukemia-classification/C-NMC_Leukemia/training_data'",
    );
    assert.match(warning.message, /fold_0, fold_1 and fold_2/);
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>(
      'vscode.executeCodeActionProvider',
      uri,
      warning.range,
    );
    assert.ok(
      actions.some((a) => a.title.startsWith('Use NestedLabelFolder')),
      actions.map((a) => a.title).join(' | '),
    );
  });

  test('leukemia-audit.json asking for the folds: an error and a fix that clears it', async () => {
    const uri = vscode.Uri.file(path.join(workspaceRoot(), 'C-NMC_Leukemia', 'training_data', 'leukemia-audit.json'));
    const [error] = await until('the dataset-file error', () => leukemiaDiagnostics(uri, 'structural-labels'));
    assert.equal(error.severity, vscode.DiagnosticSeverity.Error);
    await vscode.window.showTextDocument(uri);
    const actions = await vscode.commands.executeCommand<vscode.CodeAction[]>(
      'vscode.executeCodeActionProvider',
      uri,
      error.range,
    );
    const fix = actions.find((a) => a.title === 'Set "labels" to "folder:2" (the audit\'s recommendation)');
    assert.ok(fix?.edit, actions.map((a) => a.title).join(' | '));
    assert.ok(await vscode.workspace.applyEdit(fix.edit));
    await vscode.workspace.save(uri);
    await until('the error to clear', () => (leukemiaDiagnostics(uri, 'structural-labels') ? undefined : true));
  });

  test('training from the dataset file (labels folder:2, no prompt) writes a run, and the report exports', async () => {
    const datasetFile = vscode.Uri.file(
      path.join(workspaceRoot(), 'C-NMC_Leukemia', 'training_data', 'leukemia-audit.json'),
    );
    await vscode.commands.executeCommand('leukemiaAudit.train', datasetFile);
    const runs = path.join(workspaceRoot(), '.leukemia-audit', 'runs');
    const runDir = await until('a run folder', async () => {
      const entries = await vscode.workspace.fs.readDirectory(vscode.Uri.file(runs)).then(
        (e) => e,
        () => [],
      );
      const run = entries.find(([name]) => name.startsWith('run-'));
      return run ? path.join(runs, run[0]) : undefined;
    });
    const run = JSON.parse(
      Buffer.from(await vscode.workspace.fs.readFile(vscode.Uri.file(path.join(runDir, 'run.json')))).toString('utf8'),
    );
    assert.equal(run.status, 'completed');
    assert.equal(run.settings.labels, 'folder:2');
    assert.equal(run.dataset.labelsAreStructural, false);
    const report = path.join(runDir, 'exported.html');
    await vscode.commands.executeCommand('leukemiaAudit.exportReport', runDir, report);
    assert.ok(existsSync(report));
  });

  test('Create Demo Dataset writes the C-NMC layout into a given folder', async () => {
    const target = path.join(workspaceRoot(), 'second-demo');
    const created = await vscode.commands.executeCommand<string>('leukemiaAudit.createDemoDataset', target);
    assert.equal(created, path.join(target, 'C-NMC_Leukemia'));
    assert.ok(existsSync(path.join(created, 'training_data', 'fold_0', 'all')));
  });
});
