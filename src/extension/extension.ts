/**
 * Entry point of the VS Code extension. Activation only wires things up — commands, diagnostics, the
 * results serializer — and returns; the workspace search and audits start right after, asynchronously.
 * Nothing here loads tfjs or sharp: training runs in the forked trainer (`dist/trainer.js`), full audits in
 * the forked audit child (`dist/auditChild.js`).
 */
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as vscode from 'vscode';
import { COMMANDS, TRAINING_CONTEXT_KEY } from './commandIds.js';
import { auditCommand } from './commands/audit.js';
import { createDemoDatasetCommand } from './commands/demo.js';
import { evaluateCommand } from './commands/evaluate.js';
import { probeCommand } from './commands/probe.js';
import { compareRunsCommand, exportReportCommand, openResultsCommand } from './commands/results.js';
import { trainCommand } from './commands/train.js';
import { DatasetDiagnostics } from './diagnostics/datasetDiagnostics.js';
import { FixRegistry } from './diagnostics/fixRegistry.js';
import { PythonDiagnostics } from './diagnostics/pythonDiagnostics.js';
import { log, showErrorWithLog } from './log.js';
import { registerResultsSerializer } from './results/resultsPanel.js';
import { TrainingController } from './training/trainingController.js';
import { AuditCache } from './workspace/auditCache.js';
import { AuditStatus } from './workspace/auditStatus.js';
import { WorkspaceDatasets } from './workspace/workspaceDatasets.js';

/** What activation returns: for integration tests, and a measured activation time. */
export interface LeukemiaAuditApi {
  activationMs: number;
  /** Resolves when the first workspace search and diagnostics pass has finished. */
  ready: Promise<void>;
}

export function activate(context: vscode.ExtensionContext): LeukemiaAuditApi {
  const started = performance.now();
  const output = log();
  const datasets = new WorkspaceDatasets();
  const auditStatus = new AuditStatus(COMMANDS.showLog);
  const audits = new AuditCache(context.asAbsolutePath(path.join('dist', 'auditChild.js')), auditStatus);
  const fixes = new FixRegistry();
  const datasetDiagnostics = new DatasetDiagnostics(datasets, audits, fixes);
  const pythonDiagnostics = new PythonDiagnostics(datasets, audits, fixes);
  const training = new TrainingController(context);
  void vscode.commands.executeCommand('setContext', TRAINING_CONTEXT_KEY, false);

  // Errors in a command are reported, never thrown into VS Code's generic "command failed" box.
  const command = (id: string, run: (...args: unknown[]) => unknown) =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await run(...args);
      } catch (error) {
        await showErrorWithLog(`${(error as Error).message}`);
        return undefined;
      }
    });

  context.subscriptions.push(
    output,
    datasets,
    auditStatus,
    audits,
    datasetDiagnostics,
    pythonDiagnostics,
    training,
    vscode.languages.registerCodeActionsProvider(
      [{ language: 'python' }, { pattern: '**/leukemia-audit.json' }],
      fixes,
      { providedCodeActionKinds: FixRegistry.kinds },
    ),
    registerResultsSerializer(context),
    command(COMMANDS.train, (target) => trainCommand({ datasets, audits, training }, target)),
    command(COMMANDS.audit, (target) => auditCommand(context, { datasets, diagnostics: datasetDiagnostics }, target)),
    command(COMMANDS.openResults, (target) => openResultsCommand(context, target)),
    command(COMMANDS.createDemoDataset, (target) => createDemoDatasetCommand(target)),
    command(COMMANDS.exportReport, (target, destination) => exportReportCommand(context, target, destination)),
    command(COMMANDS.cancelTraining, () => {
      if (!training.cancel()) void vscode.window.showInformationMessage('No training run is in progress.');
    }),
    command(COMMANDS.showDashboard, () => training.showDashboard()),
    command(COMMANDS.showLog, () => output.show(true)),
    command(COMMANDS.compareRuns, (...targets) => compareRunsCommand(context, ...targets)),
    command(COMMANDS.evaluate, (target, dataset) => evaluateCommand(context, { datasets }, target, dataset)),
    command(COMMANDS.probe, (target) => probeCommand(context, { datasets, diagnostics: datasetDiagnostics }, target)),
  );

  const activationMs = performance.now() - started;
  output.info(
    `Leukemia Audit ${context.extension.packageJSON.version} activated in ${activationMs.toFixed(1)} ms (${vscode.workspace.isTrusted ? 'trusted' : 'untrusted: training disabled, audits allowed'}).`,
  );

  // The first pass runs after activation returns: diagnostics show up without any user action.
  const ready = (async () => {
    const t0 = performance.now();
    await datasets.get();
    datasetDiagnostics.schedule(0);
    pythonDiagnostics.refreshAll();
    output.info(`First workspace search done ${(performance.now() - t0).toFixed(0)} ms after activation.`);
  })().catch((error) => output.warn(`Initial workspace search failed: ${(error as Error).message}`));
  return { activationMs, ready };
}

export function deactivate(): void {
  // Everything is in context.subscriptions; a running trainer stops by itself when its IPC channel closes.
}
