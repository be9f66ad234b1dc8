/**
 * Messages between the extension and the training dashboard (a page of this extension's own, separate from
 * the results view: it lives only while a run trains), declared once with the parser of what the page sends.
 */
import type { TrainingView } from '../core/train/progress.js';

export interface DashboardUpdate {
  type: 'view';
  view: TrainingView;
  /** A trainer is running for this view: the cancel button works. */
  active: boolean;
  /** The status line, worded once for every view (status bar, notification, dashboard). */
  line: string;
}

export type DashboardRequest = { type: 'ready' } | { type: 'cancel' } | { type: 'openResults' } | { type: 'showLog' };

export function parseDashboardRequest(value: unknown): DashboardRequest | undefined {
  const type = (value as { type?: unknown } | null)?.type;
  return type === 'ready' || type === 'cancel' || type === 'openResults' || type === 'showLog' ? { type } : undefined;
}
