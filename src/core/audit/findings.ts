/** The audit's output vocabulary. Codes are stable: editors, CI scripts and reviewers key on them. */

export type Severity = 'error' | 'warning' | 'info';

export type FindingCode =
  | 'structural-labels'
  | 'nested-labels'
  | 'filename-labels'
  | 'label-mismatch'
  /** A label table's rows that name no image or several, conflicting rows, or a table not used. */
  | 'label-table'
  /** A structural group (site, fold, batch, date) strongly associated with the classes. */
  | 'confounded-groups'
  /** The batch-effect probe: a linear probe on frozen features tells the fold/site/batch from the pixels. */
  | 'group-predictable'
  | 'subject-leakage'
  | 'duplicate-images'
  | 'class-imbalance'
  | 'unreadable-images'
  | 'too-few-images'
  | 'mixed-image-sizes'
  | 'numeric-class-names'
  | 'no-labels';

export interface Finding {
  code: FindingCode;
  severity: Severity;
  /** One or two sentences a clinician-researcher understands without knowing the code. */
  message: string;
  /** The numbers behind the message: counts, contingency tables, test statistics. */
  evidence: Record<string, unknown>;
  /** Example paths, relative to the dataset root (at most MAX_EXAMPLE_PATHS). */
  paths: string[];
}

export const MAX_EXAMPLE_PATHS = 20;

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function sortFindings(findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** "a, b and c" — findings read as sentences. */
export function listNames(names: string[], limit = 6): string {
  const shown = names.slice(0, limit);
  const rest = names.length - shown.length;
  if (rest > 0) return `${shown.join(', ')} and ${rest} more`;
  if (shown.length <= 1) return shown.join('');
  return `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}
