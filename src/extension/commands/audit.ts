/**
 * Audit Dataset Labels: the full audit (every image decoded: duplicates, truncated files) in the audit child
 * process — decoding thousands of images would otherwise stall the extension host. Allowed in
 * untrusted workspaces: it only reads the dataset. Findings go to the Problems panel and the log.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import { describeAuditProgress } from '../../core/audit/runAudit.js';
import type { DatasetDiagnostics } from '../diagnostics/datasetDiagnostics.js';
import { log, showErrorWithLog } from '../log.js';
import { runAuditProcess } from '../workspace/auditProcess.js';
import { auditableRoot, datasetSubjectPattern, tablesInside } from '../workspace/confinement.js';
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
      (progress, token) => {
        const cancelled = new AbortController();
        token.onCancellationRequested(() => cancelled.abort());
        return runAuditProcess(
          context.asAbsolutePath(path.join('dist', 'auditChild.js')),
          { root, subjectPattern: pattern, checkPixels: true, tablesInside: tablesInside() },
          {
            signal: cancelled.signal,
            onProgress: (phase, done, total) => progress.report({ message: describeAuditProgress(phase, done, total) }),
            onOutput: (line) => log().info(`[audit] ${line}`),
          },
        );
      },
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
