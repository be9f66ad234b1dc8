/**
 * The extension ⇄ audit child protocol, declared once with its parsers and imported by both sides. The
 * audit child (`dist/auditChild.js`) decodes every image of a dataset, which would stall the extension
 * host; like the trainer it is a forked process speaking typed messages over Node's IPC channel.
 */
import type { AuditReport } from '../core/audit/audit.js';
import type { AuditPhase } from '../core/audit/runAudit.js';

export interface AuditRequest {
  root: string;
  /** Regular expression whose first group is the subject id; the audit's default when absent. */
  subjectPattern?: string;
  /** Decode every image (duplicates, truncated pixels); headers only when false. */
  checkPixels: boolean;
  /** Read label tables only when their real path is inside one of these folders (untrusted workspaces). */
  tablesInside?: string[];
  /** An audit nobody asked for (on workspace open): the child lowers its CPU priority. */
  background?: boolean;
}

/** Parent → audit child. To stop an audit the parent ends the process: nothing it computed is kept. */
export type AuditCommand = { type: 'audit'; request: AuditRequest };

/** Audit child → parent. */
export type AuditMessage =
  | { type: 'ready'; pid: number }
  /** Every few seconds while the child's main thread is free: a parent that hears nothing knows it is stuck. */
  | { type: 'heartbeat' }
  | { type: 'progress'; phase: AuditPhase; done: number; total?: number }
  | { type: 'result'; report: AuditReport }
  | { type: 'error'; message: string; stack?: string };

const PHASES: readonly string[] = ['scan', 'labels', 'pixels'] satisfies AuditPhase[];

export function parseAuditCommand(value: unknown): AuditCommand | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { type, request } = value as { type?: unknown; request?: unknown };
  if (type !== 'audit' || typeof request !== 'object' || request === null) return undefined;
  const { root, subjectPattern, checkPixels, tablesInside, background } = request as Record<string, unknown>;
  if (typeof root !== 'string' || typeof checkPixels !== 'boolean') return undefined;
  if (subjectPattern !== undefined && typeof subjectPattern !== 'string') return undefined;
  if (tablesInside !== undefined && !(Array.isArray(tablesInside) && tablesInside.every((t) => typeof t === 'string')))
    return undefined;
  if (background !== undefined && typeof background !== 'boolean') return undefined;
  const parsed: AuditRequest = { root, subjectPattern, checkPixels };
  if (tablesInside !== undefined) parsed.tablesInside = tablesInside as string[];
  if (background !== undefined) parsed.background = background;
  return { type: 'audit', request: parsed };
}

export function parseAuditMessage(value: unknown): AuditMessage | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const message = value as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
      return typeof message.pid === 'number' ? { type: 'ready', pid: message.pid } : undefined;
    case 'heartbeat':
      return { type: 'heartbeat' };
    case 'progress':
      return typeof message.phase === 'string' &&
        PHASES.includes(message.phase) &&
        typeof message.done === 'number' &&
        (message.total === undefined || typeof message.total === 'number')
        ? (message as AuditMessage)
        : undefined;
    case 'result':
      return typeof message.report === 'object' && message.report !== null ? (message as AuditMessage) : undefined;
    case 'error':
      return typeof message.message === 'string' ? (message as AuditMessage) : undefined;
    default:
      return undefined;
  }
}
