/**
 * Where a path written in code points on this machine. Notebooks are usually copied from Kaggle or Colab, so
 * `/kaggle/input/leukemia-classification/C-NMC_Leukemia/training_data` rarely exists here; the same dataset
 * unpacked in the workspace ends in the same folder names, and matching those trailing names finds it.
 */
import * as path from 'node:path';

export interface ResolveContext {
  /** Folder of the Python file or notebook; undefined for an unsaved one. */
  fileDir?: string;
  workspaceFolders: string[];
  /** Folders in the workspace that hold images somewhere below them. */
  knownFolders: string[];
  isDirectory(folder: string): Promise<boolean>;
  home?: string;
}

export type ResolutionKind = 'absolute' | 'relative-to-file' | 'relative-to-workspace' | 'trailing-match';

export interface Resolution {
  folder: string;
  how: ResolutionKind;
  /** For `trailing-match`: how many trailing folder names agree. */
  matched?: number;
  /** Other folders that matched as well as this one (ambiguous trailing matches). */
  alternatives?: string[];
}

export function pathComponents(value: string): string[] {
  return value.split(/[\\/]+/).filter((c) => c !== '' && c !== '.');
}

export async function resolveDatasetPath(value: string, context: ResolveContext): Promise<Resolution | undefined> {
  const trimmed = value.trim();
  if (trimmed === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) return undefined; // gs://, s3://, http://
  const expanded = trimmed.startsWith('~') && context.home ? path.join(context.home, trimmed.slice(1)) : trimmed;
  if (path.isAbsolute(expanded) || /^[A-Za-z]:[\\/]/.test(expanded)) {
    const folder = path.resolve(expanded);
    if (await context.isDirectory(folder)) return { folder, how: 'absolute' };
  } else {
    if (context.fileDir) {
      const folder = path.resolve(context.fileDir, expanded);
      if (await context.isDirectory(folder)) return { folder, how: 'relative-to-file' };
    }
    for (const root of context.workspaceFolders) {
      const folder = path.resolve(root, expanded);
      if (await context.isDirectory(folder)) return { folder, how: 'relative-to-workspace' };
    }
  }
  const matches = matchTrailingComponents(expanded, context.knownFolders);
  if (matches.length === 0) return undefined;
  const best = matches.filter((m) => m.matched === matches[0].matched);
  return {
    folder: best[0].folder,
    how: 'trailing-match',
    matched: best[0].matched,
    alternatives: best.slice(1).map((m) => m.folder),
  };
}

/**
 * Known folders whose last names equal the path's last names, best first. One agreeing name is enough only
 * when the path has a single name (`ImageFolder('training_data')`); otherwise two must agree, so that
 * `/content/data` does not claim every folder called `data`.
 */
export function matchTrailingComponents(value: string, knownFolders: string[]): { folder: string; matched: number }[] {
  const wanted = pathComponents(value);
  const lastParent = wanted.lastIndexOf('..');
  const tail = lastParent >= 0 ? wanted.slice(lastParent + 1) : wanted;
  if (tail.length === 0) return [];
  const needed = Math.min(2, tail.length);
  const matches: { folder: string; matched: number }[] = [];
  for (const folder of knownFolders) {
    const have = pathComponents(folder);
    let matched = 0;
    while (
      matched < tail.length &&
      matched < have.length &&
      tail[tail.length - 1 - matched] === have[have.length - 1 - matched]
    )
      matched++;
    if (matched >= needed) matches.push({ folder, matched });
  }
  return matches.sort(
    (a, b) => b.matched - a.matched || a.folder.length - b.folder.length || (a.folder < b.folder ? -1 : 1),
  );
}
