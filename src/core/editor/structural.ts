/**
 * The structural-labels finding said in the few words a modal dialog, an editor warning or a status line has
 * room for: which folders would become classes, what they look like, and where the diagnoses really are.
 */
import type { AuditReport } from '../audit/audit.js';
import type { Finding } from '../audit/findings.js';
import type { NameKind } from '../audit/names.js';
import type { LabelSource } from '../datasetSpec.js';
import { labelFlag } from '../train/labelChoice.js';

export interface StructuralSummary {
  finding: Finding;
  /** The depth-1 folders: what `ImageFolder(root)` would use as classes. */
  folders: string[];
  /** e.g. "cross-validation folds". */
  looksLike: string;
  /** The singular noun a model would predict: "fold", "split", "folder". */
  predicts: string;
  recommended?: LabelSource;
  /** The `--labels` value of the recommended source. */
  recommendedLabels?: string;
  /** The recommended classes, e.g. ["all", "hem"]. */
  classes: string[];
  /** "one level deeper", "in the file names", "in column labels of labels.csv". */
  where?: string;
  /** Cramér's V of the folders against the recommended labels, when computed. */
  cramersV?: number;
}

const KIND_WORDS: Partial<Record<NameKind, [string, string]>> = {
  partition: ['cross-validation folds', 'fold'],
  split: ['train/validation/test splits', 'split'],
  site: ['acquisition sites or devices', 'site'],
  date: ['acquisition dates', 'date'],
  subject: ['patient folders', 'patient'],
  numeric: ['numbered folders', 'folder'],
};

const LEVELS = ['', 'one level', 'two levels', 'three levels', 'four levels'];

export function structuralSummary(report: AuditReport): StructuralSummary | undefined {
  const finding = report.findings.find((f) => f.code === 'structural-labels');
  if (!finding) return undefined;
  const evidence = finding.evidence as {
    classes?: { name: string }[];
    kinds?: Record<string, NameKind>;
    recommendedLabelSource?: LabelSource | null;
    independence?: { cramersV?: number; degreesOfFreedom?: number } | null;
  };
  const folders = (evidence.classes ?? []).map((c) => c.name);
  const kinds = Object.values(evidence.kinds ?? {});
  const dominant = kinds.length > 0 && kinds.every((k) => k === kinds[0]) ? KIND_WORDS[kinds[0]] : undefined;
  const [looksLike, predicts] =
    folders.length === 1
      ? ['a single wrapper folder', 'folder']
      : (dominant ?? ['the way the data was organised', 'folder']);
  const recommended = evidence.recommendedLabelSource ?? report.spec.labelSources[0];
  const independence = evidence.independence;
  return {
    finding,
    folders,
    looksLike,
    predicts,
    recommended: recommended ?? undefined,
    recommendedLabels: recommended ? labelFlag(recommended) : undefined,
    classes: report.spec.classes.map((c) => c.name),
    where: recommended ? whereLabelsAre(recommended) : undefined,
    cramersV: independence && (independence.degreesOfFreedom ?? 0) > 0 ? independence.cramersV : undefined,
  };
}

function whereLabelsAre(source: LabelSource): string {
  switch (source.kind) {
    case 'folder':
      return source.depth === 1
        ? 'in the top-level folders'
        : `${LEVELS[source.depth - 1] ?? `${source.depth - 1} levels`} deeper`;
    case 'filename':
      return 'in the file names';
    case 'csv':
      return `in column ${source.labelColumn} of ${source.file}`;
  }
}

/** `fold_0/fold_1/fold_2`, shortened for many folders. */
export function slashList(names: string[], limit = 5): string {
  if (names.length <= limit) return names.join('/');
  return `${names.slice(0, limit - 1).join('/')}/…/${names[names.length - 1]} (${names.length} folders)`;
}

/** One sentence: "fold_0/fold_1/fold_2 look like cross-validation folds; the diagnoses all/hem are one level deeper." */
export function structuralSentence(summary: StructuralSummary): string {
  const subject =
    summary.folders.length === 1
      ? `${summary.folders[0]} looks like ${summary.looksLike}`
      : `${slashList(summary.folders)} look like ${summary.looksLike}`;
  if (!summary.where)
    return `${subject}, and no diagnosis labels were found in deeper folders, file names or label tables.`;
  const classes = summary.classes.length > 0 ? ` ${slashList(summary.classes)}` : '';
  return `${subject}; the diagnoses${classes} are ${summary.where}.`;
}

export interface StructuralPrompt {
  message: string;
  detail: string;
  /** Absent when the audit found no other labels. */
  recommendedButton?: string;
  recommendedLabels?: string;
  anywayButton: string;
  anywayLabels: 'folder:1';
}

/** The modal shown before training on a dataset whose top-level folders are not diagnoses. */
export function structuralPrompt(report: AuditReport): StructuralPrompt | undefined {
  const summary = structuralSummary(report);
  if (!summary) return undefined;
  const classes = summary.classes.length > 0 ? slashList(summary.classes) : summary.recommendedLabels;
  const statistic =
    summary.cramersV !== undefined ? ` (Cramér's V between folder and diagnosis = ${summary.cramersV.toFixed(2)})` : '';
  return {
    message: structuralSentence(summary),
    detail:
      `Training on the folder labels would teach the model to predict the ${summary.predicts}, not the diagnosis${statistic}.` +
      (summary.recommendedLabels ? ` Recommended labels: ${summary.recommendedLabels}.` : '') +
      ` A run trained on the folder labels is marked as structural in run.json and in every report.`,
    recommendedButton: summary.recommendedLabels ? `Train on ${classes} (recommended)` : undefined,
    recommendedLabels: summary.recommendedLabels,
    anywayButton: 'Train on the folder labels anyway',
    anywayLabels: 'folder:1',
  };
}
