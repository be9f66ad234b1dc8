/**
 * A dataset as evaluation and the batch-effect probe judge it: audited (headers only), with the labels to judge
 * by and the audit's reading of subjects. `--labels auto` is the audit's recommendation as it stands: where
 * training would refuse structural folders and ask, judging simply uses what the audit found the diagnosis to be.
 */
import type { AuditReport } from '../audit/audit.js';
import type { CsvLabelTable } from '../audit/csvLabels.js';
import { scanAndAudit } from '../audit/runAudit.js';
import { subjectReader, type SubjectOf } from '../data/splits.js';
import { combinedLabeler, type Labeler } from '../labels.js';
import { resolveLabels, type ResolvedLabels } from '../train/labelChoice.js';
import type { LabelChoice } from '../train/settings.js';
import type { ScanResult } from '../types.js';

export interface JudgedDataset {
  report: AuditReport;
  scan: ScanResult;
  csvTables: CsvLabelTable[];
  imagePaths: string[];
  labelChoice: LabelChoice;
  labels: ResolvedLabels;
  labelOf: Labeler;
  subjectOf: SubjectOf;
}

export async function judgedDataset(
  root: string,
  options: { labels?: LabelChoice; subjectPattern?: string; signal?: AbortSignal },
): Promise<JudgedDataset> {
  const { report, scan, csvTables } = await scanAndAudit(root, {
    subjectPattern: options.subjectPattern,
    checkPixels: false,
    signal: options.signal,
  });
  const imagePaths = scan.images.map((image) => image.path);
  const labelChoice = options.labels ?? 'auto';
  const labels =
    labelChoice === 'auto'
      ? { sources: report.spec.labelSources, structural: false }
      : resolveLabels(labelChoice, report, imagePaths);
  return {
    report,
    scan,
    csvTables,
    imagePaths,
    labelChoice,
    labels,
    labelOf: combinedLabeler(labels.sources, csvTables),
    subjectOf: subjectReader(report.spec.subjectPattern, csvTables, report.spec.subjectFolderDepth),
  };
}
