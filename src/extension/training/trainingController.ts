/**
 * One training run at a time, shown three ways from the same folded TrainingView: a cancellable progress
 * notification, a status-bar item (click → dashboard) and the dashboard webview. Every ending — result,
 * cancel, error, crash — ends in a clear message; a crash leaves the extension host and the last checkpoint
 * untouched and offers to resume from it.
 */
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  applyTrainEvent,
  describeEpoch,
  describeStart,
  initialView,
  overallFraction,
  progressMessage,
  statusLine,
  type TrainingView,
} from '../../core/train/progress.js';
import { CHECKPOINT_FILE, RUN_FILE } from '../../core/run/runFile.js';
import type { TrainSettings } from '../../core/train/settings.js';
import { COMMANDS, TRAINING_CONTEXT_KEY } from '../commandIds.js';
import { DashboardPanel, dashboardUpdate } from '../dashboard/dashboardPanel.js';
import { log, showErrorWithLog } from '../log.js';
import { ResultsPanel, rememberRun } from '../results/resultsPanel.js';
import { TrainerProcess, type TrainerOutcome } from './trainerProcess.js';

const UI_INTERVAL_MS = 250;

interface ActiveRun {
  process: TrainerProcess;
  view: TrainingView;
}

export class TrainingController implements vscode.Disposable {
  private active: ActiveRun | undefined;
  private lastView: TrainingView | undefined;
  private readonly statusBar = vscode.window.createStatusBarItem(
    TRAINING_CONTEXT_KEY,
    vscode.StatusBarAlignment.Left,
    10,
  );

  constructor(private readonly context: vscode.ExtensionContext) {
    this.statusBar.name = 'Leukemia Audit Training';
    this.statusBar.command = COMMANDS.showDashboard;
  }

  get isTraining(): boolean {
    return this.active !== undefined;
  }

  cancel(): boolean {
    if (!this.active) return false;
    if (this.active.view.status !== 'cancelling') {
      log().info('Cancelling training after the current batch…');
      this.active.view = { ...this.active.view, status: 'cancelling' };
      this.active.process.cancel();
      this.render(this.active.view, true);
    }
    return true;
  }

  showDashboard(): void {
    const view = this.active?.view ?? this.lastView;
    DashboardPanel.show(
      this.context.extensionUri,
      this.dashboardActions(),
      view ? dashboardUpdate(view, this.active !== undefined) : undefined,
    );
  }

  async start(settings: TrainSettings, labelsAreStructural: boolean): Promise<void> {
    if (this.active) throw new Error('A training run is already in progress.');
    const process = new TrainerProcess(this.context.asAbsolutePath(path.join('dist', 'trainer.js')));
    const run: ActiveRun = {
      process,
      view: initialView(settings.dataset, settings.labels, labelsAreStructural, settings.epochs),
    };
    this.active = run;
    void vscode.commands.executeCommand('setContext', TRAINING_CONTEXT_KEY, true);
    log().info(
      `Training ResNet-18 on ${settings.dataset} with labels ${settings.labels}${labelsAreStructural ? ' (structural: the run is marked)' : ''}; run folder ${settings.out ?? `a new one in ${settings.runsFolder}`}.`,
    );
    this.showDashboard();
    this.render(run.view, true);

    const outcome = await vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `Training on ${path.basename(settings.dataset)}`,
        cancellable: true,
      },
      async (progress, token) => {
        token.onCancellationRequested(() => this.cancel());
        let reported = 0;
        let dirty = false;
        const tick = setInterval(() => {
          if (!dirty) return;
          dirty = false;
          const fraction = overallFraction(run.view);
          progress.report({ message: progressMessage(run.view), increment: Math.max(0, fraction - reported) * 100 });
          reported = Math.max(reported, fraction);
          this.render(run.view, true);
        }, UI_INTERVAL_MS);
        try {
          return await process.run(settings, {
            onEvent: (event) => {
              run.view = applyTrainEvent(run.view, event);
              dirty = true;
              if (event.type === 'log')
                log()[event.level === 'info' ? 'info' : event.level === 'warning' ? 'warn' : 'error'](event.message);
              if (event.type === 'started') log().info(describeStart(event));
              if (event.type === 'epoch') log().info(describeEpoch(event.record, event.best));
            },
            onOutput: (line, stream) =>
              stream === 'stderr' ? log().info(`[trainer] ${line}`) : log().trace(`[trainer] ${line}`),
          });
        } finally {
          clearInterval(tick);
        }
      },
    );
    this.active = undefined;
    void vscode.commands.executeCommand('setContext', TRAINING_CONTEXT_KEY, false);
    await this.finish(run, outcome, settings, labelsAreStructural);
  }

  private async finish(
    run: ActiveRun,
    outcome: TrainerOutcome,
    settings: TrainSettings,
    labelsAreStructural: boolean,
  ): Promise<void> {
    // The one source: the folder the trainer announced in its `started` event.
    const runDir = outcome.runDir;
    const status = outcome.kind === 'result' ? 'completed' : outcome.kind === 'cancelled' ? 'cancelled' : 'failed';
    const error =
      outcome.kind === 'error' ? outcome.message : outcome.kind === 'crashed' ? crashDescription(outcome) : undefined;
    run.view = { ...run.view, status, runDir: runDir ?? undefined, error };
    this.lastView = run.view;
    this.render(run.view, false);
    const hasRun = runDir !== null && existsSync(path.join(runDir, RUN_FILE));
    const hasCheckpoint = runDir !== null && existsSync(path.join(runDir, CHECKPOINT_FILE));
    if (runDir && hasRun) rememberRun(this.context, runDir);
    const resume = () => this.start({ ...settings, out: runDir!, resume: true }, labelsAreStructural);

    switch (outcome.kind) {
      case 'result': {
        log().info(`Training finished: ${outcome.runDir}`);
        await ResultsPanel.show(this.context, outcome.runDir);
        return;
      }
      case 'cancelled': {
        const kept = hasCheckpoint ? ` The last finished epoch's checkpoint is kept in ${runDir}.` : '';
        log().info(`Training cancelled.${kept}`);
        const choice = await vscode.window.showInformationMessage(
          `Training cancelled.${kept}`,
          ...(hasRun ? ['Open Results'] : []),
          ...(hasCheckpoint ? ['Resume Training'] : []),
        );
        if (choice === 'Open Results') await ResultsPanel.show(this.context, runDir!);
        if (choice === 'Resume Training') await resume();
        return;
      }
      case 'error':
      case 'crashed': {
        const kept = hasCheckpoint ? ` The last finished epoch's checkpoint is kept in ${runDir}.` : '';
        const choice = await showErrorWithLog(
          `Training failed: ${error}${kept}`,
          ...(hasCheckpoint ? ['Resume Training'] : []),
        );
        if (choice === 'Resume Training') await resume();
        return;
      }
    }
  }

  private render(view: TrainingView, active: boolean): void {
    if (active) {
      this.statusBar.text = `$(loading~spin) ${statusLine(view)}`;
      this.statusBar.tooltip = `${progressMessage(view)}\n${view.dataset}\nClick to show the training dashboard.`;
      this.statusBar.show();
    } else {
      this.statusBar.hide();
    }
    DashboardPanel.update(view, active);
  }

  private dashboardActions() {
    return {
      cancel: () => void this.cancel(),
      openResults: (runDir: string) =>
        void ResultsPanel.show(this.context, runDir).catch((e: Error) => showErrorWithLog(e.message)),
      showLog: () => log().show(true),
    };
  }

  dispose(): void {
    // The trainer also stops by itself when the extension host goes away (its IPC channel closes).
    this.active?.process.cancel();
    this.statusBar.dispose();
  }
}

function crashDescription(outcome: Extract<TrainerOutcome, { kind: 'crashed' }>): string {
  const how = outcome.signal ? `was stopped by ${outcome.signal}` : `exited with code ${outcome.code}`;
  return `the trainer process ${how} without finishing (out of memory, killed, or a native crash). The extension is unaffected.`;
}
