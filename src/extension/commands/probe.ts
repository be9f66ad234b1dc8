/**
 * Probe Dataset for Batch Effects: a dataset (the same picker as training and evaluation) → `probeDataset` in
 * the trainer child process with a cancellable notification (phase, images, ETA) → the results view of the
 * probe run; a `group-predictable` finding joins the dataset's findings in the Problems panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { ProbePhase } from '../../core/probe/probe.js';
import { runFolderName } from '../../core/run/runFolders.js';
import type { ProbeRequest } from '../../protocol/trainer.js';
import { runsFolder, trainOptions } from '../config.js';
import type { DatasetDiagnostics } from '../diagnostics/datasetDiagnostics.js';
import { runProbeProcess } from '../evaluation/evaluateProcess.js';
import { phaseProgressReporter } from '../evaluation/phaseProgress.js';
import { log, showErrorWithLog } from '../log.js';
import { engineRequest } from '../pythonInterpreter.js';
import { ResultsPanel } from '../results/resultsPanel.js';
import type { WorkspaceDatasets } from '../workspace/workspaceDatasets.js';
import { pickDataset } from './datasetPicker.js';
import { requireTrust } from './trust.js';

const TITLE = 'Probe Dataset for Batch Effects';

const PHASE_LABELS: Record<ProbePhase, string> = {
  audit: 'Reading the labels and groups',
  prepare: 'Preparing images',
  features: 'Computing features',
  probe: 'Fitting the probes',
  report: 'Writing the report',
};

/** `target`: the dataset folder or leukemia-audit.json (Explorer, a test). Returns the probe run folder. */
export async function probeCommand(
  context: vscode.ExtensionContext,
  deps: { datasets: WorkspaceDatasets; diagnostics: DatasetDiagnostics },
  target?: unknown,
): Promise<string | undefined> {
  const trusted = await requireTrust(
    'Probing a dataset',
    'The probe starts a separate process that reads every image of the dataset, runs ResNet-18 on it, and writes a run folder into the workspace.',
  );
  if (!trusted) return undefined;
  const picked = await pickDataset(deps.datasets, TITLE, target);
  if (!picked) return undefined;
  const options = trainOptions(vscode.Uri.file(picked.root));
  const request: ProbeRequest = {
    dataset: picked.root,
    out: path.join(runsFolder(picked.root), runFolderName(new Date())),
    weights: options.weights === 'none' ? 'auto' : options.weights,
    labels: picked.file?.labels,
    subjectPattern: picked.file?.subjectPattern ?? options.subjectPattern,
    ...(await engineRequest(picked.root)),
  };
  log().info(`Probing ${request.dataset} for batch effects; run folder ${request.out}.`);
  const outcome = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `${TITLE}: ${path.basename(picked.root)}`,
      cancellable: true,
    },
    (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      return runProbeProcess(context.asAbsolutePath(path.join('dist', 'trainer.js')), request, {
        signal: controller.signal,
        onOutput: (line) => log().info(line),
        onProgress: phaseProgressReporter(progress, PHASE_LABELS),
      });
    },
  );
  if (outcome.kind === 'error') {
    await showErrorWithLog(`The probe of ${request.dataset} failed: ${outcome.message}`);
    return undefined;
  }
  if (outcome.kind === 'cancelled') {
    log().info('Probe cancelled.');
    return undefined;
  }
  const probe = outcome.run.probe;
  for (const result of [probe?.group, probe?.diagnosis]) if (result) log().info(`Probe: ${result.verdict}.`);
  deps.diagnostics.showProbeFindings(picked.root, probe?.finding ? [probe.finding] : []);
  await ResultsPanel.show(context, outcome.runDir);
  return outcome.runDir;
}
