/**
 * Audit Dataset Labels: the full audit (every image decoded: duplicates, truncated files) in a child process
 * running the bundled CLI — decoding thousands of images would otherwise stall the extension host. Allowed in
 * untrusted workspaces: it only reads the dataset. Findings go to the Problems panel and the log.
 */
import { fork } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import type { DatasetDiagnostics } from '../diagnostics/datasetDiagnostics.js';
import { log, showErrorWithLog } from '../log.js';
import { auditableRoot, datasetSubjectPattern } from '../workspace/confinement.js';
import type { WorkspaceDatasets } from '../workspace/workspaceDatasets.js';
import { pickDataset } from './datasetPicker.js';

export async function auditCommand(
  context: vscode.ExtensionContext,
  deps: { datasets: WorkspaceDatasets; diagnostics: DatasetDiagnostics },
  target?: unknown,
): Promise<AuditReport | undefined> {
  const dataset = await pickDataset(deps.datasets, 'Audit Dataset Labels', target);
  if (!dataset) return undefined;
  const pattern = datasetSubjectPattern(dataset.file?.subjectPattern, vscode.Uri.file(dataset.root));
  // A root a leukemia-audit.json names is workspace data; a folder the user picked is their own choice.
  const root = dataset.file ? await auditableRoot(dataset.root) : dataset.root;
  let report: AuditReport;
  try {
    const result = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Auditing ${path.basename(dataset.root)} (labels, subjects, duplicates)`,
        cancellable: true,
      },
      (progress, token) =>
        runCliAudit(context.asAbsolutePath(path.join('dist', 'cli.js')), root, pattern, token, (line) =>
          progress.report({ message: line }),
        ),
    );
    if (!result) return undefined;
    report = result;
  } catch (error) {
    await showErrorWithLog(`The audit of ${dataset.root} failed: ${(error as Error).message}`);
    return undefined;
  }
  deps.diagnostics.showFullReport(report);
  const counts = { error: 0, warning: 0, info: 0 };
  for (const f of report.findings) counts[f.severity]++;
  log().info(`Audit of ${report.root}: ${report.images} images, ${report.unreadable.length} unreadable.`);
  for (const f of report.findings) log().info(`  [${f.severity}] ${f.code}: ${f.message}`);
  const summary = `${path.basename(report.root)}: ${report.images.toLocaleString('en-US')} images — ${plural(counts.error, 'error')}, ${plural(counts.warning, 'warning')}, ${plural(counts.info, 'note')}.`;
  const choice =
    counts.error > 0
      ? await vscode.window.showWarningMessage(`Audit of ${summary}`, 'Show Problems', 'Show Log')
      : await vscode.window.showInformationMessage(`Audit of ${summary}`, 'Show Problems', 'Show Log');
  if (choice === 'Show Problems') await vscode.commands.executeCommand('workbench.actions.view.problems');
  if (choice === 'Show Log') log().show(true);
  return report;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** `leukemia-audit audit <dir> --json` in a child process; undefined when cancelled. */
function runCliAudit(
  cli: string,
  root: string,
  pattern: string | undefined,
  token: vscode.CancellationToken,
  onProgress: (line: string) => void,
): Promise<AuditReport | undefined> {
  return new Promise((resolve, reject) => {
    const args = ['audit', root, '--json', ...(pattern ? ['--subject-pattern', pattern] : [])];
    const child = fork(cli, args, {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8_000);
      const last = chunk
        .split(/[\r\n]+/)
        .filter((l) => l.trim() !== '')
        .pop();
      if (last) onProgress(last.trim().slice(0, 120));
    });
    const cancel = token.onCancellationRequested(() => child.kill());
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      cancel.dispose();
      if (token.isCancellationRequested) return resolve(undefined);
      if (code !== 0)
        return reject(
          new Error(
            lastLines(stderr) ||
              `the audit process ${signal ? `was stopped by ${signal}` : `exited with code ${code}`}`,
          ),
        );
      try {
        resolve(JSON.parse(Buffer.concat(stdout).toString('utf8')) as AuditReport);
      } catch (error) {
        reject(new Error(`the audit printed no readable report: ${(error as Error).message}`));
      }
    });
  });
}

function lastLines(text: string): string {
  return text
    .split(/[\r\n]+/)
    .filter((l) => l.trim() !== '')
    .slice(-3)
    .join(' ');
}
