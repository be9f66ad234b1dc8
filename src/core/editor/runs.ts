/** Run folders as the editor lists and names them: where they go, what to call them, how to describe one. */
import * as path from 'node:path';
import type { RunFile } from '../run/runFile.js';

export interface PathVariables {
  workspaceFolder?: string;
  userHome?: string;
}

/**
 * Expands `${workspaceFolder}`, `${workspaceFolderBasename}`, `${userHome}` and a leading `~`; a relative result is
 * taken relative to the workspace folder. Undefined when the value needs a workspace folder and there is none.
 */
export function expandPathVariables(value: string, variables: PathVariables): string | undefined {
  let missing = false;
  let expanded = value.replace(/\$\{(workspaceFolder|workspaceFolderBasename|userHome)\}/g, (_, name: string) => {
    const replacement =
      name === 'userHome'
        ? variables.userHome
        : name === 'workspaceFolder'
          ? variables.workspaceFolder
          : variables.workspaceFolder && path.basename(variables.workspaceFolder);
    if (replacement === undefined) missing = true;
    return replacement ?? '';
  });
  if (missing) return undefined;
  if ((expanded === '~' || expanded.startsWith('~/')) && variables.userHome)
    expanded = path.join(variables.userHome, expanded.slice(1));
  if (path.isAbsolute(expanded)) return path.normalize(expanded);
  return variables.workspaceFolder ? path.resolve(variables.workspaceFolder, expanded) : undefined;
}

/** `run-20250101-093000`: sorts by time, valid on every file system. */
export function runFolderName(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `run-${date.getFullYear()}${p(date.getMonth() + 1)}${p(date.getDate())}-${p(date.getHours())}${p(date.getMinutes())}${p(date.getSeconds())}`;
}

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
