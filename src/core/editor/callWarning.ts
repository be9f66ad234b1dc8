/**
 * The editor warning on a dataset call whose folder's top-level sub-folders are not diagnoses, and its
 * quick fixes. Pure: the extension resolves the folder and audits it, this decides what to say and edit.
 */
import * as path from 'node:path';
import type { AuditReport } from '../audit/audit.js';
import { listNames } from '../audit/findings.js';
import type { DatasetCall, PathLiteral, SourceCell } from './pythonCalls.js';
import { encodeStringContent } from './pythonTokens.js';
import type { Resolution } from './pathResolve.js';
import {
  KERAS_HELPER,
  TORCH_DATASET_CLASS,
  indentLines,
  kerasHelperSnippet,
  torchDatasetSnippet,
} from './pythonSnippets.js';
import { structuralSummary, type StructuralSummary } from './structural.js';

export interface TextEdit {
  cell: string;
  start: number;
  end: number;
  newText: string;
}

export interface CodeFix {
  title: string;
  edits: TextEdit[];
  /** The fix to offer first (VS Code's "preferred" quick fix). */
  preferred: boolean;
}

export interface CallWarning {
  code: 'structural-labels';
  severity: 'warning';
  /** Where the warning goes: the path literal when there is one, else the call's argument. */
  range: { cell: string; start: number; end: number };
  message: string;
  fixes: CodeFix[];
}

const CALL_WORDS: Record<DatasetCall['function'], string> = {
  ImageFolder: 'ImageFolder',
  DatasetFolder: 'DatasetFolder',
  image_dataset_from_directory: 'image_dataset_from_directory',
  flow_from_directory: 'flow_from_directory',
};

/**
 * `calls`: every dataset call of the file or notebook, so a literal shared by several calls gets one warning
 * and no path rewrite that would silently change the others.
 */
export function datasetCallWarning(
  call: DatasetCall,
  resolution: Resolution,
  report: AuditReport,
  cells: SourceCell[],
  calls: DatasetCall[] = [call],
): CallWarning | undefined {
  const summary = structuralSummary(report);
  if (!summary || !call.path) return undefined;
  const range = call.path.literal ?? call.argument;
  if (!range) return undefined;
  const fn = CALL_WORDS[call.function];
  const folderName = path.basename(resolution.folder);
  const classesWord = call.framework === 'keras' ? 'class_names' : 'classes';
  const folders = summary.folders.length === 1 ? summary.folders[0] : listNames(summary.folders);
  let message =
    `${fn} will use ${folders} — the sub-folders of ${folderName} — as its ${classesWord}. ` +
    `${summary.folders.length === 1 ? 'It looks' : 'They look'} like ${summary.looksLike}: the model would learn to predict the ${summary.predicts}, not the diagnosis.`;
  if (summary.where) {
    const classes = summary.classes.length > 0 ? ` (${listNames(summary.classes)})` : '';
    message += ` The diagnoses${classes} are ${summary.where}${examplePlace(summary, report)}.`;
  } else {
    message += ' No diagnosis labels were found in deeper folders, file names or label tables.';
  }
  if (summary.cramersV !== undefined && summary.cramersV < 0.2 && summary.folders.length > 1) {
    message += ` Every ${summary.predicts} holds the diagnoses in the same proportions (Cramér's V = ${summary.cramersV.toFixed(2)}).`;
  }
  message += resolutionNote(call.path.value, resolution);
  return {
    code: 'structural-labels',
    severity: 'warning',
    range: { cell: range.cell, start: range.start, end: range.end },
    message,
    fixes: callFixes(call, summary, report, cells, calls),
  };
}

function examplePlace(summary: StructuralSummary, report: AuditReport): string {
  if (summary.recommended?.kind !== 'folder') return '';
  const example = summary.finding.paths[0] ?? report.findings.find((f) => f.code === 'nested-labels')?.paths[0];
  if (!example) return '';
  const parts = example.split('/');
  return parts.length > summary.recommended.depth
    ? `, e.g. ${parts.slice(0, summary.recommended.depth).join('/')}`
    : '';
}

function resolutionNote(value: string, resolution: Resolution): string {
  if (resolution.how !== 'trailing-match') return '';
  const also = resolution.alternatives?.length
    ? ` (also matches ${resolution.alternatives.length} other folder${resolution.alternatives.length === 1 ? '' : 's'})`
    : '';
  return ` ${value} does not exist here; checked against the workspace folder ${resolution.folder}, which has the same trailing folder names${also}.`;
}

function callFixes(
  call: DatasetCall,
  summary: StructuralSummary,
  report: AuditReport,
  cells: SourceCell[],
  calls: DatasetCall[],
): CodeFix[] {
  const fixes: CodeFix[] = [];
  const literal = call.path?.literal;
  const sharedLiteral =
    literal !== undefined && calls.filter((c) => c.path?.literal && sameLiteral(c.path.literal, literal)).length > 1;
  const rewrite = literal && !sharedLiteral ? pathRewrite(literal, summary, report) : undefined;
  if (rewrite) fixes.push(rewrite);
  if (summary.recommended?.kind === 'folder' && summary.recommended.depth >= 2) {
    const context = {
      function: call.function,
      framework: call.framework,
      folders: summary.folders,
      looksLike: summary.looksLike,
      labelDepth: summary.recommended.depth,
      classes: summary.classes,
      exampleGroup:
        report.spec.split.kind === 'folds'
          ? report.spec.split.validationGroup
          : summary.folders[summary.folders.length - 1],
    };
    const cell = cells.find((c) => c.id === call.callee.cell);
    const allText = cells.map((c) => c.text).join('\n');
    if (call.framework === 'torch') {
      const edits: TextEdit[] = [];
      if (!new RegExp(`\\bclass\\s+${TORCH_DATASET_CLASS}\\b`).test(allText)) {
        edits.push({
          cell: call.callee.cell,
          start: call.statementLineStart,
          end: call.statementLineStart,
          newText: indentLines(torchDatasetSnippet(context), call.indentation),
        });
      }
      if (call.function === 'ImageFolder' && cell) {
        edits.push({
          cell: call.callee.cell,
          start: call.callee.start,
          end: call.callee.end,
          newText: TORCH_DATASET_CLASS,
        });
        edits.push({
          cell: call.callee.cell,
          start: call.closeParen,
          end: call.closeParen,
          newText: keywordArgument(call, cell.text, `label_depth=${context.labelDepth}`),
        });
      }
      fixes.push({
        title:
          call.function === 'ImageFolder'
            ? `Use ${TORCH_DATASET_CLASS}: label by the folder at depth ${context.labelDepth} over all ${summary.predicts}s`
            : `Insert ${TORCH_DATASET_CLASS} (labels from the folder at depth ${context.labelDepth}) to use instead of ${call.function}`,
        edits,
        preferred: !rewrite,
      });
    } else if (!new RegExp(`\\bdef\\s+${KERAS_HELPER}\\b`).test(allText)) {
      fixes.push({
        title: `Insert ${KERAS_HELPER}(): labels from the folder at depth ${context.labelDepth} over all ${summary.predicts}s`,
        edits: [
          {
            cell: call.callee.cell,
            start: call.statementLineStart,
            end: call.statementLineStart,
            newText: indentLines(kerasHelperSnippet(context), call.indentation),
          },
        ],
        preferred: !rewrite,
      });
    }
  }
  return fixes;
}

function sameLiteral(a: PathLiteral, b: PathLiteral): boolean {
  return a.cell === b.cell && a.start === b.start;
}

/** `, label_depth=2` before the closing parenthesis, respecting a trailing comma or an empty argument list. */
function keywordArgument(call: DatasetCall, text: string, argument: string): string {
  if (!call.hasArguments) return argument;
  if (call.endsWithComma) return /\s$/.test(text.slice(0, call.closeParen)) ? `${argument}, ` : ` ${argument}, `;
  return `, ${argument}`;
}

/**
 * A plain path rewrite is honest only when it loses nothing: every level between the folder and the labels is
 * a single folder (`data/images/{all,hem}` → `data/images`), or the top level is named splits and the call
 * should read the training split (`data/{train,val}/…` → `data/train`).
 */
function pathRewrite(literal: PathLiteral, summary: StructuralSummary, report: AuditReport): CodeFix | undefined {
  const source = summary.recommended;
  if (source?.kind !== 'folder' || source.depth < 2) return undefined;
  const levels: string[][] = [summary.folders];
  const nested = report.findings.find((f) => f.code === 'nested-labels');
  const parents = (nested?.evidence.parentFolders as { name: string }[] | undefined)?.map((p) => p.name);
  if (source.depth === 3 && parents) levels.push(parents);
  let chain: string[] | undefined;
  let title: string;
  if (levels.length === source.depth - 1 && levels.every((names) => names.length === 1)) {
    chain = levels.map((names) => names[0]);
    title = 'Point at';
  } else if (source.depth === 2 && report.spec.splits?.depth === 1) {
    const train = report.spec.splits.splits.find((s) => s.role === 'train');
    if (!train) return undefined;
    chain = [train.name];
    title = 'Read the training split:';
  } else {
    return undefined;
  }
  const separator = literal.value.includes('\\') && !literal.value.includes('/') ? '\\' : '/';
  const base = literal.value.replace(/[\\/]+$/, '');
  const value = (base === '' ? '' : base + separator) + chain.join(separator);
  const content = encodeStringContent(value, literal);
  if (content === undefined) return undefined;
  return {
    title: `${title} '${value}' (its sub-folders are the diagnoses)`,
    edits: [{ cell: literal.cell, start: literal.contentStart, end: literal.contentEnd, newText: content }],
    preferred: true,
  };
}
