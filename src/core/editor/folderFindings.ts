/**
 * Where a dataset's findings go in the Problems panel when it has no `leukemia-audit.json` to carry them.
 * A folder cannot be opened as a document, so each finding sits on the image it names as its first example
 * (clicking it opens the evidence, e.g. `fold_0/all/UID_11_10_1_all.bmp` for structural labels); findings
 * without examples (class imbalance) share the first such image, so a dataset's problems stay together.
 */
import type { AuditReport } from '../audit/audit.js';
import type { Finding } from '../audit/findings.js';

export interface AnchoredFinding {
  finding: Finding;
  /** Relative to the dataset root, `/` separators. */
  path: string;
  message: string;
}

export function anchorFolderFindings(report: AuditReport, datasetName: string): AnchoredFinding[] {
  const fallback = report.findings.find((f) => f.paths.length > 0)?.paths[0];
  const anchored: AnchoredFinding[] = [];
  for (const finding of report.findings) {
    // Unreadable files are real files too, but opening an empty or corrupt one helps less than the finding's text.
    const path = finding.paths[0] ?? fallback;
    if (!path) continue;
    anchored.push({ finding, path, message: `${datasetName}: ${finding.message}` });
  }
  return anchored;
}
