/**
 * Train Leukemia Model: dataset → label audit → (if the top-level folders are structural) a modal choice →
 * the trainer process. Training runs the trainer on the dataset, so it needs a trusted workspace; the audit
 * before it does not.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditReport } from '../../core/audit/audit.js';
import { labelsAreStructural } from '../../core/train/labelChoice.js';
import { structuralPrompt } from '../../core/editor/structural.js';
import { DEFAULT_SETTINGS, type LabelChoice, type TrainSettings } from '../../core/train/settings.js';
import { runsFolder, trainOptions } from '../config.js';
import { pythonFromExtension, wantsTorch } from '../pythonInterpreter.js';
import { log, showErrorWithLog } from '../log.js';
import type { TrainingController } from '../training/trainingController.js';
import type { AuditCache } from '../workspace/auditCache.js';
import type { WorkspaceDatasets } from '../workspace/workspaceDatasets.js';
import { pickDataset } from './datasetPicker.js';
import { requireTrust } from './trust.js';

export async function trainCommand(
  deps: { datasets: WorkspaceDatasets; audits: AuditCache; training: TrainingController },
  target?: unknown,
): Promise<void> {
  const trusted = await requireTrust(
    'Training',
    'Training starts a separate process that reads every image of the dataset and writes model files into the workspace, with settings this workspace can change. Auditing labels works without trust.',
  );
  if (!trusted) return;
  if (deps.training.isTraining) {
    const choice = await vscode.window.showInformationMessage(
      'A training run is already in progress.',
      'Show Dashboard',
      'Cancel Training',
    );
    if (choice === 'Show Dashboard') deps.training.showDashboard();
    if (choice === 'Cancel Training') deps.training.cancel();
    return;
  }
  const dataset = await pickDataset(deps.datasets, 'Train Leukemia Model', target);
  if (!dataset) return;
  const options = trainOptions(vscode.Uri.file(dataset.root));
  const pattern = dataset.file?.subjectPattern ?? options.subjectPattern;
  const report = await auditWithProgress(deps.audits, dataset.root, pattern);
  if (!report) return;
  if (report.images === 0) {
    await showErrorWithLog(`No images were found in ${dataset.root}.`);
    return;
  }

  let labels: LabelChoice = dataset.file?.labels ?? 'auto';
  let structural = false;
  if (labelsAreStructural(labels, report)) {
    const prompt = structuralPrompt(report);
    if (prompt) {
      const buttons = [...(prompt.recommendedButton ? [prompt.recommendedButton] : []), prompt.anywayButton];
      const choice = await vscode.window.showWarningMessage(
        prompt.message,
        { modal: true, detail: prompt.detail },
        ...buttons,
      );
      if (choice === undefined) return;
      if (choice === prompt.recommendedButton) {
        labels = prompt.recommendedLabels as LabelChoice;
      } else {
        labels = labels === 'auto' ? prompt.anywayLabels : labels;
        structural = true;
      }
    } else if (labels !== 'auto') {
      // Shallower than the recommended labels without a structural-labels finding (e.g. folder:2 when the
      // labels are at depth 3): the file asked for it explicitly, so train, but mark the run.
      log().warn(
        `${labels} is shallower than the audit's recommended labels (${report.spec.labelSources[0] ? JSON.stringify(report.spec.labelSources[0]) : 'none'}); the run is marked as structural.`,
      );
      structural = true;
    }
  }
  if (labels === 'auto' && report.spec.labelSources.length === 0) {
    await showErrorWithLog(
      `No labels were found in ${dataset.root}: no class-like folder level, file-name token or label table. Describe them in a leukemia-audit.json ("labels": "folder:N", "filename" or "csv:FILE").`,
    );
    return;
  }
  const settings: TrainSettings = {
    ...DEFAULT_SETTINGS,
    ...options,
    dataset: dataset.root,
    // A new folder in it, created exclusively by the trainer (the one source: its `started` event).
    runsFolder: runsFolder(dataset.root),
    labels,
    subjectPattern: pattern,
    seed: dataset.file?.seed ?? DEFAULT_SETTINGS.seed,
    // folds/predefined are what the audit's plan already follows when the folders allow it.
    split: dataset.file?.split === 'subject-disjoint' ? 'subject-disjoint' : DEFAULT_SETTINGS.split,
    pythonFromEditor: wantsTorch(options) ? await pythonFromExtension(vscode.Uri.file(dataset.root)) : undefined,
  };
  try {
    await deps.training.start(settings, structural);
  } catch (error) {
    await showErrorWithLog(`Training could not start: ${(error as Error).message}`);
  }
}

/**
 * The dataset's header audit under a cancellable notification, taken from the audit cache: it runs in the audit
 * child (a workspace's subject pattern can backtrack, and must never run in the extension host), and is usually
 * already done, by the background audit when the workspace opened. Undefined when cancelled or failed (reported).
 */
export async function auditWithProgress(
  audits: AuditCache,
  root: string,
  subjectPattern: string | undefined,
): Promise<AuditReport | undefined> {
  return vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `Auditing the labels of ${path.basename(root)}`,
      cancellable: true,
    },
    async (_progress, token) => {
      const cancelled = new Promise<undefined>((resolve) => token.onCancellationRequested(() => resolve(undefined)));
      try {
        const report = await Promise.race([audits.get(root, subjectPattern), cancelled]);
        if (report)
          log().info(
            `Audit of ${root}: ${report.images} images; ${report.findings.map((f) => `${f.code} (${f.severity})`).join(', ') || 'no findings'}.`,
          );
        return report;
      } catch (error) {
        await showErrorWithLog(`The audit of ${root} failed: ${(error as Error).message}`);
        return undefined;
      }
    },
  );
}
