/**
 * Which folders a workspace may make us read. A workspace is untrusted input: its `leukemia-audit.json`, its
 * notebooks and its `run.json` files name folders and files, and in an untrusted workspace what they name must
 * stay inside the workspace folders. Checked on real paths, so a symlink inside the workspace cannot lead out.
 */
import { realpathSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import * as path from 'node:path';
import { isInside } from './paths.js';

export type Confined = { ok: true; root: string } | { ok: false; reason: string };

export interface ConfineContext {
  /** Whether the user trusts the workspace. */
  trusted: boolean;
  /** The workspace folders (absolute); what an untrusted workspace may name stays inside them. */
  workspaceFolders: readonly string[];
  /** The user's home folder: it and its ancestors are never audited as a dataset. */
  home: string;
}

async function realOrUndefined(file: string): Promise<string | undefined> {
  try {
    return await realpath(file);
  } catch {
    return undefined;
  }
}

/** The real path of `file` when it exists and its real path lies inside the real path of one of `roots`. */
export async function realPathInside(file: string, roots: readonly string[]): Promise<string | undefined> {
  const real = await realOrUndefined(file);
  if (real === undefined) return undefined;
  for (const root of roots) {
    const realRoot = await realOrUndefined(root);
    if (realRoot !== undefined && isInside(real, realRoot)) return real;
  }
  return undefined;
}

/**
 * The same check, synchronous: for a handful of files on a path that must answer at once (the results view
 * posting a run's image URIs). One `realpath` per file and root.
 */
export function realPathInsideSync(file: string, roots: readonly string[]): string | undefined {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return undefined;
    }
  };
  const target = real(file);
  if (target === undefined) return undefined;
  return roots.some((root) => {
    const realRoot = real(root);
    return realRoot !== undefined && isInside(target, realRoot);
  })
    ? target
    : undefined;
}

/** Why `root` is too broad to be a dataset (the file-system root, the home folder or one of its ancestors). */
export function tooBroadToAudit(root: string, home: string): string | undefined {
  const resolved = path.resolve(root);
  if (resolved === path.parse(resolved).root) return `${resolved} is the file-system root`;
  if (isInside(path.resolve(home), resolved)) return `${resolved} holds the home folder`;
  return undefined;
}

/**
 * The folder an audit may read for a dataset root named by the workspace: refused when too broad, and in an
 * untrusted workspace unless its real path lies inside a workspace folder. Returns the real path to audit,
 * so a link swapped after the check cannot redirect the audit.
 */
export async function confineAuditRoot(root: string, context: ConfineContext): Promise<Confined> {
  const real = await realOrUndefined(root);
  if (real === undefined) return { ok: false, reason: `${root} does not exist or cannot be read` };
  const broad = tooBroadToAudit(real, context.home);
  if (broad) return { ok: false, reason: `${broad}: too broad to audit as a dataset` };
  if (context.trusted) return { ok: true, root: real };
  if (await realPathInside(real, context.workspaceFolders)) return { ok: true, root: real };
  const shown = real === path.resolve(root) ? real : `${root} (really ${real})`;
  return {
    ok: false,
    reason: `${shown} is outside the workspace folders; an untrusted workspace may only audit folders inside them`,
  };
}

/**
 * The subject pattern an audit uses: a dataset file's own pattern only in a trusted workspace (the setting is
 * a restricted configuration, so VS Code already ignores the workspace's value when it is untrusted).
 */
export function chooseSubjectPattern(
  datasetFilePattern: string | undefined,
  settingPattern: string | undefined,
  trusted: boolean,
): string | undefined {
  return (trusted ? datasetFilePattern : undefined) ?? settingPattern;
}
