/** Turns `--labels auto|folder:N|filename|csv:FILE` into label sources, with the audit as the judge. */
import type { AuditReport } from '../audit/audit.js';
import type { LabelSource } from '../datasetSpec.js';
import { folderAt } from '../datasetSpec.js';
import type { LabelChoice } from './settings.js';

export interface ResolvedLabels {
  sources: LabelSource[];
  /** The chosen labels are what the audit calls structural (folds, splits…). */
  structural: boolean;
}

export class LabelChoiceError extends Error {}

export function parseLabelChoice(value: string): LabelChoice {
  if (value === 'auto' || value === 'filename') return value;
  if (/^folder:[1-9]\d*$/.test(value)) return value as LabelChoice;
  if (/^csv:.+/.test(value)) return value as LabelChoice;
  throw new LabelChoiceError(`--labels must be auto, folder:N, filename or csv:FILE, got "${value}"`);
}

/**
 * The one judge of whether training on `choice` is training on what the audit calls structural (folds,
 * splits, batches): the extension asks it before training, the trainer reports its answer in `started` and
 * run.json. The default (`auto`) is structural when the audit found structural labels and would take the
 * labels from folders too (or found none) — see `autoNeedsAChoice`; `folder:N` when it names the top level of
 * such a dataset, a level the audit found partitions or named splits at, or a level above the labels the
 * audit recommends.
 */
export function labelsAreStructural(choice: LabelChoice, report: AuditReport): boolean {
  const structural = report.findings.some((f) => f.code === 'structural-labels');
  if (choice === 'auto') return autoNeedsAChoice(report);
  if (!choice.startsWith('folder:')) return false;
  const depth = Number(choice.slice('folder:'.length));
  const recommended = report.spec.labelSources[0];
  return (
    (structural && depth === 1) ||
    report.spec.groups?.depth === depth ||
    report.spec.splits?.depth === depth ||
    (recommended?.kind === 'folder' && recommended.depth > depth)
  );
}

/**
 * Whether `auto` must not pick for the user: the top-level folders are structural (folds, patients, sites…)
 * and the audit's recommended labels are folders as well (the C-NMC trap: fold_N/all next to fold_N), or it
 * found none. When the recommendation is a label table or the file names, `auto` takes it: the folders that
 * make the finding are not what it trains on (patient folders with patients.csv beside them).
 */
export function autoNeedsAChoice(report: AuditReport): boolean {
  const recommended = report.spec.labelSources[0];
  const structural = report.findings.some((f) => f.code === 'structural-labels');
  return structural && (recommended === undefined || recommended.kind === 'folder');
}

export function resolveLabels(choice: LabelChoice, report: AuditReport, imagePaths: string[]): ResolvedLabels {
  const recommended = report.spec.labelSources;
  const structuralFinding = report.findings.find((f) => f.code === 'structural-labels');
  if (choice === 'auto') {
    if (structuralFinding && autoNeedsAChoice(report)) {
      const suggestion = recommended[0] ? ` Recommended: --labels ${labelFlag(recommended[0])}.` : '';
      throw new LabelChoiceError(
        `${structuralFinding.message}${suggestion} Say explicitly which labels to use with --labels.`,
      );
    }
    if (recommended.length === 0)
      throw new LabelChoiceError(
        'No labels were found. Say where they are with --labels folder:N, filename or csv:FILE.',
      );
    return { sources: recommended, structural: false };
  }
  if (choice.startsWith('folder:')) {
    const depth = Number(choice.slice('folder:'.length));
    if (!imagePaths.some((p) => folderAt(p, depth) !== undefined))
      throw new LabelChoiceError(`No image has a folder at depth ${depth}.`);
    const recommendedDepth = recommended[0]?.kind === 'folder' ? recommended[0].depth : undefined;
    const structural = labelsAreStructural(choice, report);
    // Keep the audit's other sources (e.g. the validation CSV) only when they translate into these classes.
    const extra = recommended.filter((s) => s.kind === 'csv' && recommendedDepth === depth);
    // The audit's own source for this depth carries its case folding (`ALL` and `all` are one class).
    const folder =
      recommended[0]?.kind === 'folder' && recommendedDepth === depth
        ? recommended[0]
        : { kind: 'folder' as const, depth };
    return { sources: [folder, ...extra], structural };
  }
  if (choice === 'filename') {
    const source = recommended.find((s) => s.kind === 'filename') ?? filenameSourceFromFindings(report);
    if (!source) throw new LabelChoiceError('The file names carry no class token the audit could find.');
    return { sources: [source], structural: false };
  }
  const file = choice.slice('csv:'.length);
  const source = recommended.find((s) => s.kind === 'csv' && (s.file === file || s.file.endsWith('/' + file)));
  if (!source)
    throw new LabelChoiceError(
      `${file} was not recognised as a label table of this dataset (it needs a file-name column and a label column).`,
    );
  return { sources: [source], structural: false };
}

function filenameSourceFromFindings(report: AuditReport): LabelSource | undefined {
  const finding = report.findings.find(
    (f) => f.code === 'filename-labels' && typeof f.evidence.tokenIndex === 'number',
  );
  if (!finding) return undefined;
  const classes = finding.evidence.classes as { name: string }[];
  const valueToClass: Record<string, string> = {};
  for (const { name } of classes) valueToClass[name] = name;
  return { kind: 'filename', tokenIndex: finding.evidence.tokenIndex as number, valueToClass };
}

/** The `--labels` value that selects a source. */
export function labelFlag(source: LabelSource): string {
  switch (source.kind) {
    case 'folder':
      return `folder:${source.depth}`;
    case 'filename':
      return 'filename';
    case 'csv':
      return `csv:${source.file}`;
  }
}
