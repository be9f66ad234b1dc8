/** Where run folders go and what they are called: the trainer, the CLI and the editor name them the same way. */
import * as path from 'node:path';

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
