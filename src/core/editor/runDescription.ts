/** A run folder as the editor's run picker lists it: icon, status, dataset, labels and the headline metric. */
import * as path from 'node:path';
import type { RunFile } from '../run/runFile.js';

export interface RunDescription {
  label: string;
  description: string;
  detail: string;
}

export function describeRun(run: RunFile, runDir: string): RunDescription {
  const icon =
    run.status === 'completed'
      ? '$(pass)'
      : run.status === 'failed'
        ? '$(error)'
        : run.status === 'cancelled'
          ? '$(circle-slash)'
          : '$(sync)';
  const validation = run.metrics.validation;
  const metric = validation
    ? `balanced accuracy ${(validation.balancedAccuracy * 100).toFixed(1)}%, weighted F1 ${validation.weightedF1.toFixed(3)}`
    : run.history.length > 0
      ? `${run.history.length} epoch${run.history.length === 1 ? '' : 's'}`
      : 'no epoch finished';
  const warning = run.dataset.labelsAreStructural ? '$(warning) trained on structural labels — ' : '';
  return {
    label: `${icon} ${path.basename(runDir)}`,
    description: `${run.status} · ${path.basename(run.dataset.root)} · ${run.settings.labels} (${run.dataset.classes.join('/')})`,
    detail: `${warning}${metric} · ${new Date(run.updatedAt || run.createdAt).toLocaleString()} · ${runDir}`,
  };
}
