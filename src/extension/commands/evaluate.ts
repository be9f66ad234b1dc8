/**
 * Evaluate Model on Dataset…: a checkpoint (the file the command was invoked on in the Explorer, else a file
 * dialog) → a dataset (the same picker as training) → `evaluateModel` in the trainer child process with a
 * cancellable notification → the results view of the evaluation run. When the model's outputs are not the
 * dataset's classes, the contingency verdict stands unless the user maps them in a quick pick.
 */
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { outputMappings } from '../../core/editor/outputMappings.js';
import type { EvaluatePhase } from '../../core/evaluate/evaluate.js';
import type { RunFile } from '../../core/run/runFile.js';
import type { EvaluateRequest } from '../../protocol/trainer.js';
import { runFolderName } from '../../core/run/runFolders.js';
import { runsFolder, trainOptions } from '../config.js';
import { runEvaluateProcess, type EvaluateOutcome } from '../evaluation/evaluateProcess.js';
import { phaseProgressReporter } from '../evaluation/phaseProgress.js';
import { log, showErrorWithLog } from '../log.js';
import { engineRequest } from '../pythonInterpreter.js';
import { ResultsPanel } from '../results/resultsPanel.js';
import type { WorkspaceDatasets } from '../workspace/workspaceDatasets.js';
import { pickDataset } from './datasetPicker.js';
import { requireTrust } from './trust.js';

const TITLE = 'Evaluate Model on Dataset';
export const CHECKPOINT_EXTENSIONS = ['pth', 'pt', 'safetensors'];

/**
 * `target`: the checkpoint (Explorer context menu, a test) — a file Uri or path; `dataset`: the dataset, when
 * a caller (a test, another extension) already knows it. Returns the evaluation run folder.
 */
export async function evaluateCommand(
  context: vscode.ExtensionContext,
  deps: { datasets: WorkspaceDatasets },
  target?: unknown,
  dataset?: unknown,
): Promise<string | undefined> {
  const trusted = await requireTrust(
    'Evaluating a model',
    'Evaluation starts a separate process that reads the checkpoint and every image of the dataset, and writes an evaluation run folder into the workspace.',
  );
  if (!trusted) return undefined;
  const weights = await pickCheckpoint(target);
  if (!weights) return undefined;
  const picked = await pickDataset(deps.datasets, TITLE, dataset);
  if (!picked) return undefined;
  const request: EvaluateRequest = {
    dataset: picked.root,
    weights,
    out: newEvaluationFolder(picked.root),
    labels: picked.file?.labels,
    subjectPattern: picked.file?.subjectPattern ?? trainOptions(vscode.Uri.file(picked.root)).subjectPattern,
    ...(await engineRequest(picked.root)),
  };
  let outcome = await evaluateWithProgress(context, request);
  if (outcome?.kind !== 'evaluated') return undefined;
  const mapping = await askOutputMapping(outcome.run);
  if (mapping) {
    const mapped = await evaluateWithProgress(context, {
      ...request,
      out: newEvaluationFolder(picked.root),
      classMap: mapping,
    });
    if (mapped?.kind !== 'evaluated') return showRun(context, outcome.runDir);
    // The mapped run holds the same contingency table and verdict as well: the unmapped one is superseded.
    await rm(outcome.runDir, { recursive: true, force: true });
    outcome = mapped;
  }
  return showRun(context, outcome.runDir);
}

/** A new folder in the runs folder, next to the training runs (the run history lists both). */
function newEvaluationFolder(datasetRoot: string): string {
  return path.join(runsFolder(datasetRoot), runFolderName(new Date()));
}

async function showRun(context: vscode.ExtensionContext, runDir: string): Promise<string> {
  await ResultsPanel.show(context, runDir);
  return runDir;
}

async function pickCheckpoint(target: unknown): Promise<string | undefined> {
  if (target instanceof vscode.Uri && target.scheme === 'file') return target.fsPath;
  if (typeof target === 'string' && target.trim() !== '') return path.resolve(target);
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: true,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Evaluate This Model',
    title: `${TITLE}: choose a checkpoint (.pth, .pt, .safetensors) or a run folder`,
    filters: { 'ResNet-18 checkpoints': CHECKPOINT_EXTENSIONS },
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return picked?.[0]?.fsPath;
}

/** The evaluation in the trainer child, with a cancellable notification; undefined once a failure is reported. */
async function evaluateWithProgress(
  context: vscode.ExtensionContext,
  request: EvaluateRequest,
): Promise<EvaluateOutcome | undefined> {
  log().info(`Evaluating ${request.weights} on ${request.dataset}; run folder ${request.out}.`);
  const outcome = await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `Evaluating ${path.basename(request.weights)} on ${path.basename(request.dataset)}`,
      cancellable: true,
    },
    (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      return runEvaluateProcess(context.asAbsolutePath(path.join('dist', 'trainer.js')), request, {
        signal: controller.signal,
        onOutput: (line) => log().info(line),
        onProgress: phaseProgressReporter(progress, PHASE_LABELS),
      });
    },
  );
  if (outcome.kind === 'error') {
    await showErrorWithLog(`The evaluation of ${request.weights} failed: ${outcome.message}`);
    return undefined;
  }
  if (outcome.kind === 'cancelled') log().info('Evaluation cancelled.');
  else log().info(`Evaluation run ${outcome.runDir}: ${outcome.run.evaluation?.association.verdict ?? ''}`);
  return outcome;
}

const PHASE_LABELS: Record<EvaluatePhase, string> = {
  audit: 'Reading the labels',
  prepare: 'Preparing images',
  predict: 'Predicting',
  explain: 'Grad-CAM',
  report: 'Writing the report',
};

/**
 * When the outputs are not the classes by name but as many, offer each one-to-one mapping (with the share of images it
 * would call right) next to keeping the contingency verdict. Undefined: keep the verdict.
 */
async function askOutputMapping(run: RunFile): Promise<Record<string, string> | undefined> {
  const evaluation = run.evaluation;
  if (!evaluation || evaluation.mapping) return undefined;
  const { association } = evaluation;
  const mappings = outputMappings(association);
  // Output and class counts differ (three folds, two diagnoses): the verdict is all there is to say.
  if (mappings.length === 0) return undefined;
  type Item = vscode.QuickPickItem & { classMap?: Record<string, string> };
  const keep: Item = {
    label: '$(law) Keep the contingency verdict',
    description: `Cramér's V ${association.cramersV.toFixed(2)}`,
    detail: association.verdict,
  };
  const items: Item[] = [
    keep,
    { label: 'Map the outputs to classes', kind: vscode.QuickPickItemKind.Separator },
    ...mappings.map((m) => ({
      label: m.label,
      description: `${(m.agreement * 100).toFixed(1)}% of images would be right`,
      classMap: m.classMap,
    })),
  ];
  const choice = await vscode.window.showQuickPick(items, {
    title: `The model's outputs (${evaluation.outputs.join(', ')}) are not the dataset's classes (${run.dataset.classes.join(', ')})`,
    placeHolder:
      'Keep the verdict, or say which class each output is (the evaluation then runs again with accuracy and Grad-CAM)',
    ignoreFocusOut: true,
  });
  return choice?.classMap;
}
