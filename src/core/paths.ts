/** Whether a path stays inside a folder: the one check behind every path a page or a workspace file names. */
import * as path from 'node:path';

export function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (relative !== '..' && !relative.startsWith('..' + path.sep) && !path.isAbsolute(relative));
}

/**
 * The absolute file a relative path names, when it stays inside one of `roots` after resolving `..` and
 * separators; undefined otherwise (absolute paths, `../../etc/passwd`, drive letters).
 */
export function resolveInside(relative: string, base: string, roots: string[]): string | undefined {
  if (path.isAbsolute(relative) || /^[A-Za-z]:/.test(relative) || relative.startsWith('\\')) return undefined;
  const resolved = path.resolve(base, ...relative.split(/[\\/]+/));
  return roots.some((root) => isInside(resolved, path.resolve(root))) ? resolved : undefined;
}
