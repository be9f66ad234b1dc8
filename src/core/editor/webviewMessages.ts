/**
 * Messages from a webview are input from a page that renders run data (file names, CSV values): checked
 * field by field before the extension acts on them, and paths confined to the folders the panel may show.
 */
import * as path from 'node:path';
import type { WebviewToExtension } from '../../../webview/protocol.js';
import { isInside } from './datasetFolders.js';

export function parseResultsMessage(value: unknown): WebviewToExtension | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
      return { type: 'ready' };
    case 'openImage':
      return typeof message.path === 'string' &&
        message.path.length > 0 &&
        message.path.length < 4096 &&
        !message.path.includes('\0')
        ? { type: 'openImage', path: message.path }
        : undefined;
    case 'saveState':
      return typeof message.state === 'object' && message.state !== null
        ? { type: 'saveState', state: message.state as never }
        : undefined;
    default:
      return undefined;
  }
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
