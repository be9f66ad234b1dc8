/** Open Training Results and Export Audit Report (HTML): both start from a run folder picked from history. */
import { readdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { describeRun } from '../../core/editor/runDescription.js';
import { buildHtmlReport, loadReportAssets } from '../../core/report/htmlReport.js';
import { RUN_FILE, type RunFile } from '../../core/run/runFile.js';
import { readRunFile } from '../../core/run/runFileIo.js';
import { allRunsFolders } from '../config.js';
import { isDirectory } from '../files.js';
import { log, showErrorWithLog } from '../log.js';
import { showComparison } from '../results/comparisonPanel.js';
import { ResultsPanel, recentRuns } from '../results/resultsPanel.js';

export async function openResultsCommand(context: vscode.ExtensionContext, target?: unknown): Promise<void> {
  const runDir = await pickRun(context, 'Open Training Results', target);
  if (!runDir) return;
  try {
    await ResultsPanel.show(context, runDir);
  } catch (error) {
    await showErrorWithLog(`Cannot open the results of ${runDir}: ${(error as Error).message}`);
  }
}

export async function exportReportCommand(
  context: vscode.ExtensionContext,
  target?: unknown,
  destination?: unknown,
): Promise<string | undefined> {
  const runDir = await pickRun(context, 'Export Audit Report (HTML)', target);
  if (!runDir) return undefined;
  const out =
    destination instanceof vscode.Uri
      ? destination
      : typeof destination === 'string'
        ? vscode.Uri.file(destination)
        : await vscode.window.showSaveDialog({
            defaultUri: vscode.Uri.file(path.join(runDir, 'report.html')),
            filters: { 'HTML report': ['html'] },
            title: 'Save the audit and results report',
            saveLabel: 'Export Report',
          });
  if (!out) return undefined;
  try {
    const { html, missingImages } = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Writing the report of ${path.basename(runDir)}` },
      async () => buildHtmlReport(runDir, await loadReportAssets(context.extensionPath)),
    );
    await writeFile(out.fsPath, html, 'utf8');
    if (missingImages.length > 0)
      log().warn(
        `${missingImages.length} images named in run.json could not be read; the report shows them as not available (e.g. ${missingImages[0]}).`,
      );
    log().info(`Report written: ${out.fsPath}`);
    if (typeof destination !== 'undefined') return out.fsPath;
    const choice = await vscode.window.showInformationMessage(
      `Report saved: ${out.fsPath}`,
      'Open in Browser',
      'Reveal File',
    );
    if (choice === 'Open in Browser') await vscode.env.openExternal(out);
    if (choice === 'Reveal File') await vscode.commands.executeCommand('revealFileInOS', out);
    return out.fsPath;
  } catch (error) {
    await showErrorWithLog(`The report could not be written: ${(error as Error).message}`);
    return undefined;
  }
}

/** Compare Runs…: two runs from history (or the two given), side by side. */
export async function compareRunsCommand(context: vscode.ExtensionContext, ...targets: unknown[]): Promise<void> {
  // From the Explorer with two run.json selected: (clicked, [all selected]).
  const given = (Array.isArray(targets[1]) ? targets[1] : targets).filter(
    (t): t is vscode.Uri | string => t instanceof vscode.Uri || (typeof t === 'string' && t !== ''),
  );
  const runDirs: string[] = [];
  for (const target of given.slice(0, 2)) runDirs.push((await pickRun(context, 'Compare Runs', target))!);
  while (runDirs.length < 2) {
    const picked = await pickRun(context, `Compare Runs (${runDirs.length + 1} of 2)`);
    if (!picked) return;
    runDirs.push(picked);
  }
  try {
    const runs = await Promise.all(runDirs.map(async (runDir) => ({ runDir, run: await readRunFile(runDir) })));
    showComparison(context, runs);
  } catch (error) {
    await showErrorWithLog(`Cannot compare ${runDirs.join(' and ')}: ${(error as Error).message}`);
  }
}

interface KnownRun {
  runDir: string;
  run: RunFile;
}

/** A run folder: the one given, else a pick from the runs folders and recently opened runs, newest first. */
async function pickRun(
  context: vscode.ExtensionContext,
  purpose: string,
  target?: unknown,
): Promise<string | undefined> {
  if (target instanceof vscode.Uri)
    return target.fsPath.endsWith(RUN_FILE) ? path.dirname(target.fsPath) : target.fsPath;
  if (typeof target === 'string' && target !== '') return path.resolve(target);
  const runs = await listRuns(context);
  type Item = vscode.QuickPickItem & { runDir?: string };
  const items: Item[] = runs.map(({ runDir, run }) => ({ ...describeRun(run, runDir), runDir }));
  if (items.length > 0) items.push({ label: '', kind: vscode.QuickPickItemKind.Separator });
  items.push({ label: '$(folder-opened) Choose a run folder…' });
  const choice = await vscode.window.showQuickPick(items, {
    title: purpose,
    placeHolder:
      runs.length > 0
        ? 'Training, evaluation and probe runs, newest first'
        : `No runs found in ${allRunsFolders().join(', ') || 'the workspace'}`,
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (!choice) return undefined;
  if (choice.runDir) return choice.runDir;
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    openLabel: 'Open Run',
    title: `${purpose}: choose a run folder (it holds ${RUN_FILE})`,
  });
  return picked?.[0]?.fsPath;
}

export async function listRuns(context: vscode.ExtensionContext): Promise<KnownRun[]> {
  const candidates = new Set<string>(recentRuns(context));
  for (const folder of allRunsFolders()) {
    if (!(await isDirectory(folder))) continue;
    for (const entry of await readdir(folder, { withFileTypes: true }))
      if (entry.isDirectory()) candidates.add(path.join(folder, entry.name));
  }
  const runs: KnownRun[] = [];
  for (const runDir of candidates) {
    try {
      runs.push({ runDir, run: await readRunFile(runDir) });
    } catch {
      // Not a run folder (or no longer one): not listed.
    }
  }
  return runs.sort((a, b) => (b.run.updatedAt || b.run.createdAt).localeCompare(a.run.updatedAt || a.run.createdAt));
}
