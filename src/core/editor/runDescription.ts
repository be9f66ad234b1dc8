/**
 * A run folder as the editor's run picker lists it: icon, kind (training, evaluation or probe), status, dataset,
 * labels and the headline metric (or, for an evaluation whose outputs are not the classes, the verdict; for a
 * probe, whether the group can be told from the pixels).
 */
import * as path from 'node:path';
import type { RunFile } from '../run/runFile.js';

export interface RunDescription {
  label: string;
  description: string;
  detail: string;
}

const KIND_ICONS = { training: '', evaluation: '$(beaker) ', probe: '$(search) ' } as const;

export function describeRun(run: RunFile, runDir: string): RunDescription {
  const icon =
    run.status === 'completed'
      ? '$(pass)'
      : run.status === 'failed'
        ? '$(error)'
        : run.status === 'cancelled'
          ? '$(circle-slash)'
          : '$(sync)';
  const kind = run.kind === 'evaluation' || run.kind === 'probe' ? run.kind : 'training';
  const measured = kind === 'evaluation' ? run.metrics.test : run.metrics.validation;
  const verdict = run.evaluation && !run.evaluation.mapping ? run.evaluation.association.verdict : undefined;
  const probed = run.probe ? (run.probe.group ?? run.probe.diagnosis)?.verdict : undefined;
  const metric = probed
    ? `${run.probe?.finding ? '$(warning) ' : ''}${probed}`
    : measured
      ? `balanced accuracy ${(measured.balancedAccuracy * 100).toFixed(1)}%, weighted F1 ${measured.weightedF1.toFixed(3)}`
      : (verdict ??
        (run.history.length > 0
          ? `${run.history.length} epoch${run.history.length === 1 ? '' : 's'}`
          : 'no epoch finished'));
  const warning = run.dataset.labelsAreStructural
    ? `$(warning) ${{ training: 'trained', evaluation: 'evaluated', probe: 'probed' }[kind]} on structural labels — `
    : '';
  return {
    label: `${icon} ${KIND_ICONS[kind]}${path.basename(runDir)}`,
    description: `${kind} · ${run.status} · ${path.basename(run.dataset.root)} · ${run.settings.labels} (${run.dataset.classes.join('/')})`,
    detail: `${warning}${metric} · ${new Date(run.updatedAt || run.createdAt).toLocaleString()} · ${runDir}`,
  };
}
