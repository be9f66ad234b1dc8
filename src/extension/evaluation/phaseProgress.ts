import type * as vscode from 'vscode';
import { describePhaseProgress } from '../../core/train/progress.js';

/**
 * The `onProgress` of a one-shot job (evaluation, probe) drawn on its notification: each phase runs the bar from
 * 0 % to 100 % in turn, and the message names the phase, the count and the time left.
 */
export function phaseProgressReporter<Phase extends string>(
  progress: vscode.Progress<{ message?: string; increment?: number }>,
  labels: Record<Phase, string>,
): (phase: Phase, done: number, total: number, etaSeconds?: number) => void {
  let reported = 0;
  return (phase, done, total, etaSeconds) => {
    const share = total > 0 ? (100 * done) / total : 0;
    progress.report({
      message: describePhaseProgress(labels[phase], done, total, etaSeconds),
      increment: share - reported,
    });
    reported = share >= 100 ? 0 : share;
  };
}
