/**
 * `--group auto|folder:N|csv:COL`: which structural grouping the batch-effect probe predicts. `auto` is the
 * first grouping the audit itself detects (fold, site, batch or date folders, shallowest first, then group
 * columns of label tables: `structuralGroupings`), the same ones its confounding check looks at.
 */
import { structuralGroupings, type AuditReport } from '../audit/audit.js';
import type { Grouping } from '../audit/confounding.js';
import type { CsvLabelTable } from '../audit/csvLabels.js';
import { folderAt, type LabelSource } from '../datasetSpec.js';
import type { ScanResult } from '../types.js';

export type GroupChoice = 'auto' | `folder:${number}` | `csv:${string}`;

export class GroupChoiceError extends Error {}

export function parseGroupChoice(value: string): GroupChoice {
  if (value === 'auto') return value;
  if (/^folder:[1-9]\d*$/.test(value)) return value as GroupChoice;
  if (/^csv:.+/.test(value)) return value as GroupChoice;
  throw new GroupChoiceError(`--group must be auto, folder:N or csv:COLUMN, got "${value}"`);
}

/**
 * The grouping `choice` names; undefined for `auto` on a dataset without any structural grouping. `auto` falls
 * back on the top-level folders the audit's `structural-labels` finding names (splits, mixed organisation), but
 * never on patient folders: a subject held out is a group never seen, so predicting it says nothing.
 */
export function resolveGrouping(
  choice: GroupChoice,
  images: ScanResult['images'],
  tables: CsvLabelTable[],
  report: Pick<AuditReport, 'findings'>,
  labelSources: readonly LabelSource[],
): Grouping | undefined {
  const detected = structuralGroupings(images, tables, labelSources);
  if (choice === 'auto') return detected[0] ?? structuralTopLevel(report);
  if (choice.startsWith('folder:')) {
    const depth = Number(choice.slice('folder:'.length));
    const known = detected.find((g) => (g.evidence.groupSource as { depth?: number }).depth === depth);
    if (known) return known;
    if (!images.some((image) => folderAt(image.path, depth) !== undefined))
      throw new GroupChoiceError(`No image has a folder at depth ${depth}.`);
    return {
      where: `folders at depth ${depth}`,
      one: 'folder',
      many: 'folders',
      groupOf: (p) => folderAt(p, depth),
      evidence: { groupSource: { kind: 'folder', depth } },
    };
  }
  const column = choice.slice('csv:'.length);
  const known = detected.find((g) => (g.evidence.groupSource as { column?: string }).column === column);
  if (known) return known;
  for (const table of tables) {
    const found = table.groupColumns.find((c) => c.column === column);
    if (found)
      return {
        where: `column ${column} of ${table.file}`,
        one: column,
        many: `${column} groups`,
        groupOf: (p) => found.valueByPath.get(p),
        evidence: { groupSource: { kind: 'csv', file: table.file, column } },
      };
  }
  const columns = tables.flatMap((t) => t.groupColumns.map((c) => `${c.column} (${t.file})`));
  throw new GroupChoiceError(
    `No label table of this dataset has a group column ${column}${columns.length ? `; its group columns: ${columns.join(', ')}` : ''}.`,
  );
}

/** The top-level folders of a `structural-labels` finding, unless they are mostly patient folders. */
function structuralTopLevel(report: Pick<AuditReport, 'findings'>): Grouping | undefined {
  const finding = report.findings.find((f) => f.code === 'structural-labels');
  const kinds = Object.values((finding?.evidence.kinds ?? {}) as Record<string, string>);
  if (!finding || kinds.length < 2 || kinds.filter((k) => k === 'subject').length * 2 >= kinds.length) return undefined;
  return {
    where: 'folders at depth 1',
    one: 'folder',
    many: 'folders',
    groupOf: (p) => folderAt(p, 1),
    evidence: { groupSource: { kind: 'folder', depth: 1 }, from: 'structural-labels' },
  };
}
