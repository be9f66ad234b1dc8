/**
 * `leukemia-audit.json`: a dataset's own record of where its labels are. Its folder is the dataset root unless
 * `root` says otherwise. The audit's findings become diagnostics on it, and the two decisions a person must
 * make — which labels, which split — get quick fixes that write the audit's recommendation into the file.
 */
import * as path from 'node:path';
import type { AuditReport } from '../audit/audit.js';
import type { Finding, Severity } from '../audit/findings.js';
import { labelFlag, labelsAreStructural, parseLabelChoice } from '../train/labelChoice.js';
import type { LabelChoice } from '../train/settings.js';
import { outlineJsonObject, type JsonObjectOutline, type JsonProperty } from './jsonLocate.js';

export const DATASET_FILE_NAME = 'leukemia-audit.json';

export type DeclaredSplit = 'auto' | 'folds' | 'predefined' | 'subject-disjoint';

export interface DatasetFile {
  /** Absolute dataset folder. */
  root: string;
  labels: LabelChoice;
  subjectPattern?: string;
  split: DeclaredSplit;
  seed?: number;
}

export interface OffsetEdit {
  start: number;
  end: number;
  newText: string;
}

export interface FileDiagnostic {
  /** A finding code, or `dataset-file` for a problem with the file itself. */
  code: string;
  severity: Severity;
  start: number;
  end: number;
  message: string;
  fixes: { title: string; edits: OffsetEdit[]; preferred: boolean }[];
}

/** Reads the settings the extension uses; unknown or invalid values fall back to defaults (the schema flags them). */
export function readDatasetFile(text: string, filePath: string): DatasetFile | undefined {
  const outline = outlineJsonObject(text);
  if (!outline) return undefined;
  const get = (key: string) => outline.properties.find((p) => p.key === key)?.value;
  const dir = path.dirname(filePath);
  const root =
    typeof get('root') === 'string' && (get('root') as string).trim() !== ''
      ? path.resolve(dir, get('root') as string)
      : dir;
  let labels: LabelChoice = 'auto';
  try {
    if (typeof get('labels') === 'string') labels = parseLabelChoice(get('labels') as string);
  } catch {
    // The schema reports the bad value; training falls back to the audit's judgement.
  }
  const split = get('split');
  return {
    root,
    labels,
    subjectPattern: typeof get('subjectPattern') === 'string' ? (get('subjectPattern') as string) : undefined,
    split: split === 'folds' || split === 'predefined' || split === 'subject-disjoint' ? split : 'auto',
    seed: Number.isInteger(get('seed')) ? (get('seed') as number) : undefined,
  };
}

export function datasetFileDiagnostics(text: string, filePath: string, report: AuditReport): FileDiagnostic[] {
  const outline = outlineJsonObject(text);
  const file = readDatasetFile(text, filePath);
  if (!outline || !file) return [];
  const prop = (key: string) => outline.properties.find((p) => p.key === key);
  const anchor = anchorRange(outline);
  const recommended = report.spec.labelSources[0];
  const labelsProp = prop('labels');
  const splitProp = prop('split');
  const labelsStructural = labelsAreStructural(file.labels, report);
  const diagnostics: FileDiagnostic[] = [];
  for (const finding of report.findings) {
    let range = anchor;
    let severity = finding.severity;
    let message = withExample(finding);
    const fixes: FileDiagnostic['fixes'] = [];
    if (finding.code === 'structural-labels' || finding.code === 'nested-labels') {
      if (!labelsStructural) continue; // the file already names non-structural labels
      range = labelsProp ? valueRange(labelsProp) : anchor;
      if (file.labels !== 'auto' && finding.code === 'structural-labels') {
        severity = 'error';
        message = `"labels": "${file.labels}" are the folders the audit judged structural. ${message}`;
      } else if (finding.code === 'structural-labels') {
        message += ' Training refuses "labels": "auto" here: say which labels to use.';
      }
      if (recommended) {
        const flag = labelFlag(recommended);
        fixes.push({
          title: `Set "labels" to "${flag}" (the audit's recommendation)`,
          edits: [setProperty(text, outline, 'labels', flag)],
          preferred: true,
        });
      }
    } else if (finding.code === 'subject-leakage') {
      if (file.split === 'subject-disjoint') continue;
      range = splitProp ? valueRange(splitProp) : anchor;
      fixes.push({
        title: 'Set "split" to "subject-disjoint"',
        edits: [setProperty(text, outline, 'split', 'subject-disjoint')],
        preferred: true,
      });
    }
    diagnostics.push({ code: finding.code, severity, start: range.start, end: range.end, message, fixes });
  }
  if (report.images === 0) {
    diagnostics.push({
      code: 'dataset-file',
      severity: 'warning',
      ...anchor,
      message: `No images were found in ${report.root}.`,
      fixes: [],
    });
  }
  return diagnostics;
}

/** A problem with the file itself, e.g. a `root` that does not exist: on `root`, or on the first property. */
export function datasetFileProblem(text: string, message: string, key = 'root'): FileDiagnostic | undefined {
  const outline = outlineJsonObject(text);
  if (!outline) return undefined;
  const property = outline.properties.find((p) => p.key === key);
  const range = property ? valueRange(property) : anchorRange(outline);
  return { code: 'dataset-file', severity: 'error', ...range, message, fixes: [] };
}

function withExample(finding: Finding): string {
  const example = finding.paths[0];
  return example && !finding.message.includes(example) ? `${finding.message} (e.g. ${example})` : finding.message;
}

function valueRange(property: JsonProperty): { start: number; end: number } {
  return { start: property.valueStart, end: property.valueEnd };
}

/** Dataset-wide findings sit on `root` when present, else on the first key, else on the opening brace. */
function anchorRange(outline: JsonObjectOutline): { start: number; end: number } {
  const root = outline.properties.find((p) => p.key === 'root');
  if (root) return valueRange(root);
  const first = outline.properties[0];
  return first ? { start: first.keyStart, end: first.keyEnd } : { start: outline.start, end: outline.start + 1 };
}

/** Replaces a property's value, or inserts the property first, in the file's indentation. */
export function setProperty(text: string, outline: JsonObjectOutline, key: string, value: string): OffsetEdit {
  const existing = outline.properties.find((p) => p.key === key);
  if (existing) return { start: existing.valueStart, end: existing.valueEnd, newText: JSON.stringify(value) };
  const first = outline.properties[0];
  const insertAt = outline.start + 1;
  if (!first)
    return { start: insertAt, end: insertAt, newText: `\n  ${JSON.stringify(key)}: ${JSON.stringify(value)}\n` };
  const lineStart = text.lastIndexOf('\n', first.keyStart - 1) + 1;
  const indentation = lineStart > outline.start ? text.slice(lineStart, first.keyStart) : ' ';
  const newline = lineStart > outline.start ? '\n' : '';
  return {
    start: insertAt,
    end: insertAt,
    newText: `${newline}${indentation}${JSON.stringify(key)}: ${JSON.stringify(value)},${newline ? '' : ' '}`,
  };
}
