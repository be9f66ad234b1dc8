/**
 * The label audit: from a scan (and optionally label tables and pixel hashes) to a recommended
 * DatasetSpec and findings with evidence. Pure: no I/O, so every rule is testable on synthetic layouts.
 */
import {
  DEFAULT_SUBJECT_PATTERN,
  folderAt,
  type DatasetSpec,
  type LabelSource,
  type NamedCount,
  type SplitPlan,
} from '../datasetSpec.js';
import { subjectReader } from '../data/splits.js';
import { combinedLabeler, labelerFor, type Labeler } from '../labels.js';
import { chiSquareIndependence } from './stats.js';
import type { ScanResult } from '../types.js';
import { findConfounding, type Grouping } from './confounding.js';
import type { CsvLabelTable } from './csvLabels.js';
import { findDuplicateFindings, type ImageHashes } from './duplicates.js';
import type { NearDuplicatePair } from './nearDuplicates.js';
import { MAX_EXAMPLE_PATHS, formatCount, listNames, sortFindings, type Finding } from './findings.js';
import {
  crossTabulate,
  findTokenCandidate,
  isLabelLike,
  majorityMapping,
  repeatedChildren,
  sortedCounts,
  summariseFolderLevels,
  tokenLabel,
  type FolderLevel,
  type TokenCandidate,
} from './labelCandidates.js';
import type { SplitRole } from './names.js';
import { findLeakage } from './subjects.js';

export interface AuditOptions {
  subjectPattern?: string;
  /** Seed of the proposed subject-disjoint split. */
  seed?: number;
  validationFraction?: number;
  /** Largest perceptual-hash Hamming distance of a candidate near-duplicate (thumbnails then confirm it). */
  nearDuplicateDistance?: number;
}

export interface AuditInputs {
  csvTables?: CsvLabelTable[];
  hashes?: Map<string, ImageHashes>;
  /** Near-duplicate pairs among `hashes`, when already searched (with the scan cache's memo); else searched here. */
  nearDuplicates?: readonly NearDuplicatePair[];
}

export interface AuditReport {
  root: string;
  images: number;
  unreadable: ScanResult['unreadable'];
  spec: DatasetSpec;
  findings: Finding[];
}

/** Fewer images than this in a class makes any metric on it noise. */
export const MIN_IMAGES_PER_CLASS = 20;
const IMBALANCE_INFO_RATIO = 1.5;
const IMBALANCE_WARNING_RATIO = 3;

export function auditScan(scan: ScanResult, inputs: AuditInputs = {}, options: AuditOptions = {}): AuditReport {
  const images = scan.images;
  const paths = images.map((img) => img.path);
  const tables = inputs.csvTables ?? [];
  const findings: Finding[] = [];
  const levels = summariseFolderLevels(images);
  const candidateToken = findTokenCandidate(images);

  const labelLevel = chooseLabelLevel(levels, candidateToken, paths);
  const token = supportedToken(candidateToken, labelLevel, paths);
  const primary = choosePrimarySource(labelLevel, token);

  // Label tables: translated into the primary classes when the evidence allows. Without a folder or file-name
  // source, the table that labels most images is the primary source, its values the classes, and the other
  // tables (a train and a test table) are translated into those.
  const csvSources: UsedTable[] = [];
  const unusedTables = [...tables].sort((a, b) => b.labelByPath.size - a.labelByPath.size);
  let first: LabelSource | undefined = primary;
  if (!first && unusedTables[0]?.labelByPath.size) {
    // Tables with the same label column are one table in several files (one per patient folder, train and
    // test): their values together are the classes.
    const column = unusedTables[0].labelColumn.toLowerCase();
    const siblings = unusedTables.filter((t) => t.labelColumn.toLowerCase() === column);
    const canonical = caseFoldedValues(siblings);
    for (const table of siblings) {
      const values = [...new Set(table.labelByPath.values())];
      csvSources.push({ source: csvSource(table, Object.fromEntries(values.map((v) => [v, canonical[v]]))), table });
      unusedTables.splice(unusedTables.indexOf(table), 1);
    }
    first = csvSources[0].source;
  }
  const primaryLabel: Labeler = first ? labelerFor(first, tables) : () => undefined;
  if (first) {
    const vocabulary = countLabels(paths, primaryLabel).map((c) => c.name);
    for (const table of [...unusedTables]) {
      const valueToClass = translateCsvValues(table, vocabulary, primaryLabel, token);
      if (!valueToClass) continue;
      csvSources.push({ source: csvSource(table, valueToClass), table });
      unusedTables.splice(unusedTables.indexOf(table), 1);
    }
  }
  // Tables in the order they were found, after the primary source: the first that labels an image wins.
  csvSources.sort((a, b) =>
    a.source === first ? -1 : b.source === first ? 1 : tables.indexOf(a.table) - tables.indexOf(b.table),
  );
  const labelSources: LabelSource[] = [...(primary ? [primary] : []), ...csvSources.map((c) => c.source)];
  const labelOf = combinedLabeler(labelSources, tables);
  const classes = countLabels(paths, labelOf);
  const unlabelled = paths.length - classes.reduce((sum, c) => sum + c.count, 0);

  const subjectPattern = options.subjectPattern ?? DEFAULT_SUBJECT_PATTERN;
  const subjectLevel = levels.find((level) => level !== labelLevel && level.dominantKind === 'subject');
  const subjectFolderDepth = subjectLevel?.depth;
  const subjectOf = subjectReader(subjectPattern, tables, subjectFolderDepth);
  const subjects = new Set<string>();
  let imagesWithSubject = 0;
  for (const path of paths) {
    const subject = subjectOf(path);
    if (subject !== undefined) {
      subjects.add(subject);
      imagesWithSubject++;
    }
  }

  // Groups (folds) and splits: structural levels above the labels are kept, not thrown away.
  const structuralLevels = levels.filter(
    (level) => !primary || primary.kind !== 'folder' || level.depth < primary.depth,
  );
  const groupLevel = structuralLevels.find((level) => level.dominantKind === 'partition');
  const splitLevel = structuralLevels.find((level) => level.dominantKind === 'split');
  const groups = groupLevel
    ? {
        depth: groupLevel.depth,
        groups: groupLevel.names.filter(({ name }) => groupLevel.kinds[name].kind === 'partition'),
      }
    : null;
  const splits = splitLevel
    ? {
        depth: splitLevel.depth,
        splits: splitLevel.names
          .filter(({ name }) => splitLevel.kinds[name].role !== undefined)
          .map(({ name, count }) => ({ name, count, role: splitLevel.kinds[name].role as SplitRole })),
      }
    : null;

  const leakage = findLeakage(paths, subjectOf, groups, splits);
  if (leakage) findings.push(leakage);

  const split = planSplit(groups, splits, leakage !== undefined, options);

  const spec: DatasetSpec = {
    version: 1,
    root: scan.root,
    labelSources,
    classes,
    unlabelled,
    groups,
    splits,
    split,
    subjectPattern,
    ...(subjectFolderDepth !== undefined ? { subjectFolderDepth } : {}),
    subjects: { count: subjects.size, imagesWithSubject },
  };

  // Every finding below reads the labels through the spec: what the findings say is what training will use.
  findings.push(...structuralFindings(levels, labelLevel, spec, paths, labelOf));
  findings.push(...tokenFindings(primary, token, paths, primaryLabel));
  for (const used of csvSources)
    findings.push(...csvMismatchFindings(used, used.source === first ? () => undefined : primaryLabel, token));
  findings.push(...labelTableFindings(csvSources, unusedTables));
  findings.push(...spreadsheetFindings(scan.otherFiles, labelSources.length > 0));
  if (classes.length > 0) findings.push(...classFindings(classes, labelLevel));
  findings.push(...findConfounding(paths, labelOf, groupings(levels, labelLevel, tables)));
  findings.push(...imageFindings(scan));
  if (inputs.hashes) {
    findings.push(
      ...findDuplicateFindings(
        inputs.hashes,
        {
          labelOf,
          groupOf: groups ? (p) => folderAt(p, groups.depth) : () => undefined,
          splitOf: splits ? (p) => folderAt(p, splits.depth) : () => undefined,
          nearDuplicateDistance: options.nearDuplicateDistance,
        },
        inputs.nearDuplicates,
      ),
    );
  }
  return {
    root: scan.root,
    images: images.length,
    unreadable: scan.unreadable,
    spec,
    findings: sortFindings(findings),
  };
}

interface UsedTable {
  source: LabelSource & { kind: 'csv' };
  table: CsvLabelTable;
}

function csvSource(table: CsvLabelTable, valueToClass: Record<string, string>): LabelSource & { kind: 'csv' } {
  return { kind: 'csv', file: table.file, fileColumn: table.fileColumn, labelColumn: table.labelColumn, valueToClass };
}

/** Tables' own values as classes, spellings that differ only in case (`ALL`, `all`) folded to the commonest. */
function caseFoldedValues(tables: CsvLabelTable[]): Record<string, string> {
  const counts = new Map<string, number>();
  for (const table of tables)
    for (const value of table.labelByPath.values()) counts.set(value, (counts.get(value) ?? 0) + 1);
  return caseFolded(sortedCounts(counts)) ?? Object.fromEntries([...counts.keys()].map((v) => [v, v]));
}

/**
 * A file-name token is a label only with support. Where folder classes exist it must agree with them well
 * above chance (or name the same classes, so that a contradiction is worth reporting); a token that ignores
 * the folders is a naming habit (scanner, stain, counter), not a diagnosis.
 */
function supportedToken(
  token: TokenCandidate | undefined,
  labelLevel: FolderLevel | undefined,
  paths: string[],
): TokenCandidate | undefined {
  if (!token || !labelLevel) return token;
  const folderNames = new Set(labelLevel.names.map((n) => n.name.toLowerCase()));
  const shared = token.values.filter((v) => folderNames.has(v.name.toLowerCase())).length;
  if (shared >= 2) return token;
  const test = chiSquareIndependence(
    crossTabulate(
      paths,
      (p) => folderAt(p, labelLevel.depth),
      (p) => tokenLabel(token, p),
    ).counts,
  );
  return test.degreesOfFreedom > 0 && test.cramersV >= TOKEN_MIN_CRAMERS_V && test.pValue <= TOKEN_MAX_P_VALUE
    ? token
    : undefined;
}

const TOKEN_MIN_CRAMERS_V = 0.5;
const TOKEN_MAX_P_VALUE = 0.001;

/** `batch_3` → batch/batches, `hospital-A` → hospital/hospitals, `2019-04-01` → date/dates. */
function groupWords(level: FolderLevel): [string, string] {
  if (level.dominantKind === 'date') return ['date', 'dates'];
  const name = level.names.find((n) => level.kinds[n.name].kind === level.dominantKind)!.name;
  const word = /^[a-z]+/i.exec(name)?.[0].toLowerCase() ?? 'group';
  return [word, /(s|x|ch|sh)$/.test(word) ? `${word}es` : `${word}s`];
}

/**
 * The structural groupings of a scanned dataset (fold, site, batch, date folders; group columns of label
 * tables), shallowest first, as the confounding check sees them: what the batch-effect probe predicts by default.
 */
export function structuralGroupings(
  images: ScanResult['images'],
  tables: CsvLabelTable[],
  labelSources: readonly LabelSource[],
): Grouping[] {
  const levels = summariseFolderLevels(images);
  const primary = labelSources[0];
  const labelLevel = primary?.kind === 'folder' ? levels.find((level) => level.depth === primary.depth) : undefined;
  return groupings(levels, labelLevel, tables);
}

/** Folder levels and table columns that describe how the data was organised: candidates for confounding. */
function groupings(levels: FolderLevel[], labelLevel: FolderLevel | undefined, tables: CsvLabelTable[]): Grouping[] {
  const result: Grouping[] = [];
  for (const level of levels) {
    if (level === labelLevel || level.names.length < 2) continue;
    if (!['partition', 'series', 'site', 'date'].includes(level.dominantKind)) continue;
    const [one, many] = groupWords(level);
    result.push({
      where: `folders at depth ${level.depth}`,
      one,
      many,
      groupOf: (p) => {
        const name = folderAt(p, level.depth);
        return name !== undefined && level.kinds[name]?.kind === level.dominantKind ? name : undefined;
      },
      evidence: { groupSource: { kind: 'folder', depth: level.depth }, kind: level.dominantKind },
    });
  }
  for (const table of tables) {
    for (const column of table.groupColumns) {
      result.push({
        where: `column ${column.column} of ${table.file}`,
        one: column.column,
        many: `${column.column} groups`,
        groupOf: (p) => column.valueByPath.get(p),
        evidence: { groupSource: { kind: 'csv', file: table.file, column: column.column } },
      });
    }
  }
  return result;
}

/**
 * The shallowest level whose names look like classes, unless its folders all wrap the same label-like
 * sub-folders (`0/{all,hem}`, `1/{all,hem}`): then the labels are deeper.
 */
function chooseLabelLevel(
  levels: FolderLevel[],
  token: TokenCandidate | undefined,
  paths: string[],
): FolderLevel | undefined {
  for (const level of levels) {
    if (!isLabelLike(level)) continue;
    const next = levels.find((l) => l.depth === level.depth + 1);
    if (next && repeatedChildren(level) && isLabelLike(next)) continue;
    // Numbers are ambiguous: when the file names carry class tokens that ignore these folders (V < 0.3),
    // the numbers are indices (folds, batches), not classes.
    if (token && !token.numeric && level.dominantKind === 'numeric') {
      const v = tokenAssociation(level, token, paths);
      if (v !== undefined && v < 0.3) continue;
    }
    return level;
  }
  return undefined;
}

/** Cramér's V between a folder level and the file-name token, over the images both label. */
function tokenAssociation(level: FolderLevel, token: TokenCandidate, paths: string[]): number | undefined {
  const table = crossTabulate(
    paths,
    (p) => folderAt(p, level.depth),
    (p) => tokenLabel(token, p),
  );
  const test = chiSquareIndependence(table.counts);
  return test.degreesOfFreedom > 0 ? test.cramersV : undefined;
}

/** Names that differ only in case, each → the spelling with most images; undefined when there are none. */
function caseFolded(names: NamedCount[]): Record<string, string> | undefined {
  const canonical = new Map<string, string>();
  for (const { name } of [...names].sort((a, b) => b.count - a.count))
    if (!canonical.has(name.toLowerCase())) canonical.set(name.toLowerCase(), name);
  if (canonical.size === names.length) return undefined;
  return Object.fromEntries(names.map(({ name }) => [name, canonical.get(name.toLowerCase())!]));
}

function choosePrimarySource(
  labelLevel: FolderLevel | undefined,
  token: TokenCandidate | undefined,
): LabelSource | undefined {
  if (labelLevel) {
    const valueToClass = caseFolded(labelLevel.names);
    return { kind: 'folder', depth: labelLevel.depth, ...(valueToClass ? { valueToClass } : {}) };
  }
  if (token) return { kind: 'filename', tokenIndex: token.tokenIndex, valueToClass: token.valueToClass };
  return undefined;
}

/**
 * How a table's values (e.g. 1/0) map to the primary classes (all/hem): by equal names, by the class
 * token of an original file name kept in the table, or by the images both label.
 */
function translateCsvValues(
  table: CsvLabelTable,
  vocabulary: string[],
  primaryLabel: (path: string) => string | undefined,
  token: TokenCandidate | undefined,
): Record<string, string> | undefined {
  const values = [...new Set(table.labelByPath.values())];
  if (values.length === 0) return undefined;
  const paths = [...table.labelByPath.keys()];
  const known = new Set(vocabulary);
  if (token) for (const cls of Object.values(token.valueToClass)) known.add(cls);
  const byName = (v: string) => [...known].find((k) => k.toLowerCase() === v.toLowerCase());
  if (values.every((v) => byName(v) !== undefined)) return Object.fromEntries(values.map((v) => [v, byName(v)!]));
  const viaOriginalName =
    token && table.originalNameByPath.size > 0
      ? crossTabulate(
          paths,
          (p) => table.labelByPath.get(p),
          (p) => {
            const original = table.originalNameByPath.get(p);
            return original === undefined ? undefined : tokenLabel(token, original.replace(/\\/g, '/'));
          },
        )
      : undefined;
  const viaPrimary = crossTabulate(paths, (p) => table.labelByPath.get(p), primaryLabel);
  for (const table of [viaOriginalName, viaPrimary]) {
    if (!table || table.rows.length < 2) continue;
    const { mapping, agreement } = majorityMapping(table);
    if (agreement >= 0.9 && new Set(Object.values(mapping)).size === table.rows.length) return mapping;
  }
  return undefined;
}

function planSplit(
  groups: DatasetSpec['groups'],
  splits: DatasetSpec['splits'],
  leaks: boolean,
  options: AuditOptions,
): SplitPlan {
  const seed = options.seed ?? 42;
  const validationFraction = options.validationFraction ?? 0.2;
  if (!leaks && groups && groups.groups.length >= 2) {
    return { kind: 'folds', depth: groups.depth, validationGroup: groups.groups[groups.groups.length - 1].name };
  }
  if (
    !leaks &&
    splits &&
    splits.splits.some((s) => s.role === 'train') &&
    splits.splits.some((s) => s.role !== 'train')
  ) {
    return { kind: 'predefined', depth: splits.depth };
  }
  return { kind: 'subject-disjoint', seed, validationFraction };
}

function describeLevel(level: FolderLevel): string {
  const kinds = new Set(level.names.map(({ name }) => level.kinds[name].kind));
  if (kinds.size === 1) {
    switch ([...kinds][0]) {
      case 'partition':
        return 'cross-validation folds or numbered partitions';
      case 'split':
        return 'train/validation/test splits';
      case 'site':
        return 'acquisition sites or devices';
      case 'date':
        return 'dates';
      case 'subject':
        return 'patients/subjects';
      case 'series':
        return 'numbered acquisitions (smears, slides, runs)';
      case 'artifact':
        return 'kinds of file (images, masks, annotations), not diagnoses';
      case 'numeric':
        return 'plain numbers';
      default:
        break;
    }
  }
  return 'a way the data was organised, not diagnoses';
}

function structuralFindings(
  levels: FolderLevel[],
  labelLevel: FolderLevel | undefined,
  spec: DatasetSpec,
  paths: string[],
  labelOf: Labeler,
): Finding[] {
  const findings: Finding[] = [];
  const top = levels[0];
  const recommendedSource = spec.labelSources[0];
  const labelled = recommendedSource !== undefined;
  const topIsLabel = recommendedSource?.kind === 'folder' && recommendedSource.depth === 1;
  const single = top?.names.length === 1;
  // One folder around everything matters to ImageFolder only when the classes are folders deeper down; with
  // labels from a table or the file names there is no folder trap to warn about (and `--labels auto` works).
  const wrapperOnly = single && labelled && recommendedSource.kind !== 'folder';
  if (top && !topIsLabel && top.covered >= paths.length * 0.5 && !wrapperOnly) {
    const names = top.names.map((n) => n.name);
    const sizes = top.names.map((n) => n.count);
    const sizeRatio = Math.max(...sizes) / Math.min(...sizes);
    const repeated = repeatedChildren(top);
    const table = labelled ? crossTabulate(paths, (p) => folderAt(p, 1), labelOf) : undefined;
    const independence = table ? chiSquareIndependence(table.counts) : undefined;
    const examplePaths = top.names
      .map(({ name }) => paths.find((p) => folderAt(p, 1) === name)!)
      .slice(0, MAX_EXAMPLE_PATHS);
    const what = describeLevel(top);
    let message = single
      ? `All images sit under one folder, ${names[0]}: a model trained on the folder names would have a single class.`
      : `The folders ${listNames(names)} look like ${what}. A model trained on the folder names (ImageFolder's default) learns to predict the ${what.split(' ')[0] === 'cross-validation' ? 'fold' : 'folder'}, not the diagnosis.`;
    if (labelled) message += ` The diagnoses are ${describeLabels(spec)}.`;
    else message += ' No diagnosis labels were found in deeper folders, file names or label tables.';
    if (!single && independence && independence.degreesOfFreedom > 0 && independence.cramersV < 0.2) {
      message += ` The diagnoses are distributed the same way in every folder (Cramér's V = ${independence.cramersV.toFixed(2)}), so the folder says nothing about the cell.`;
    }
    findings.push({
      code: 'structural-labels',
      severity: labelled ? 'error' : 'warning',
      message,
      evidence: {
        depth: 1,
        classes: top.names,
        kinds: Object.fromEntries(names.map((n) => [n, top.kinds[n].kind])),
        sizeRatio: Number(sizeRatio.toFixed(3)),
        nearEqualSizes: names.length >= 2 && sizeRatio <= 1.25,
        repeatedSubfolders: repeated ?? null,
        recommendedLabelSource: recommendedSource ?? null,
        independence: independence ?? null,
        contingency: table ?? null,
      },
      paths: examplePaths,
    });
  }
  if (labelLevel && labelLevel.depth > 1 && recommendedSource?.kind === 'folder') {
    const parent = levels[labelLevel.depth - 2];
    const repeated = repeatedChildren(parent);
    const folderClasses = countLabels(paths, labelerFor(recommendedSource));
    findings.push({
      code: 'nested-labels',
      severity: 'warning',
      message:
        `The class folders ${listNames(labelLevel.names.map((n) => n.name))} are ${labelLevel.depth - 1} level${labelLevel.depth > 2 ? 's' : ''} below the dataset folder` +
        (repeated
          ? `, repeated under every ${parent.names.length > 1 ? listNames(parent.names.map((n) => n.name)) : parent.names[0].name} folder`
          : '') +
        `. Use the folder at depth ${labelLevel.depth} as the label: ${folderClasses.map((n) => `${n.name} ${formatCount(n.count)}`).join(', ')}.`,
      evidence: {
        recommendedLabelSource: recommendedSource,
        classes: folderClasses,
        parentFolders: parent.names,
      },
      paths: labelLevel.names.map(({ name }) => paths.find((p) => folderAt(p, labelLevel.depth) === name)!),
    });
  }
  if (!labelled) {
    findings.push({
      code: 'no-labels',
      severity: 'error',
      message:
        (single ? `All images sit under one folder, ${top.names[0].name}, and n` : 'N') +
        'o usable labels were found: no folder level with class-like names, no class token in the file names and no label table that names these images. Say where the labels are with --labels.',
      evidence: { levels: levels.map((l) => ({ depth: l.depth, names: l.names.slice(0, 10), kind: l.dominantKind })) },
      paths: paths.slice(0, 5),
    });
  }
  return findings;
}

/** Every label source of the spec, with the classes each contributes. */
function describeLabels(spec: DatasetSpec): string {
  const parts: string[] = [];
  const tablesByColumn = new Map<string, string[]>();
  for (const source of spec.labelSources) {
    if (source.kind !== 'csv') parts.push(describeSource(source));
    else if (!tablesByColumn.has(source.labelColumn)) tablesByColumn.set(source.labelColumn, [source.file]);
    else tablesByColumn.get(source.labelColumn)!.push(source.file);
  }
  for (const [column, files] of tablesByColumn)
    parts.push(`in column ${column} of ${listNames(files, 2)}${files.length > 2 ? ' tables' : ''}`);
  const counts = spec.classes.map((c) => `${c.name} ${formatCount(c.count)}`).join(', ');
  return `${parts.join(', then ')} (${counts})`;
}

function countLabels(paths: string[], labelOf: Labeler): NamedCount[] {
  const counts = new Map<string, number>();
  for (const path of paths) {
    const label = labelOf(path);
    if (label !== undefined) counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return sortedCounts(counts);
}

function describeSource(source: LabelSource): string {
  switch (source.kind) {
    case 'folder':
      return `the folders at depth ${source.depth}`;
    case 'filename':
      return 'in the file names';
    case 'csv':
      return `in column ${source.labelColumn} of ${source.file}`;
  }
}

function tokenFindings(
  primary: LabelSource | undefined,
  token: TokenCandidate | undefined,
  paths: string[],
  primaryLabel: (path: string) => string | undefined,
): Finding[] {
  if (!token) return [];
  const tokenNames = token.values.map((v) => v.name);
  if (primary?.kind === 'filename') {
    return [
      {
        code: 'filename-labels',
        severity: 'warning',
        message: `The folders hold no diagnoses, but the file names do: ${token.values.map((v) => `${v.name} ${formatCount(v.count)}`).join(', ')}. Use the file-name token as the label.`,
        evidence: { tokenIndex: token.tokenIndex, classes: token.values, recommendedLabelSource: primary },
        paths: tokenNames.map((name) => paths.find((p) => tokenLabel(token, p) === name)!),
      },
    ];
  }
  const table = crossTabulate(paths, (p) => tokenLabel(token, p), primaryLabel);
  const { mapping, agreement } = majorityMapping(table);
  const independence = chiSquareIndependence(table.counts);
  const findings: Finding[] = [];
  const mismatched = paths.filter((p) => {
    const t = tokenLabel(token, p);
    const l = primaryLabel(p);
    return t !== undefined && l !== undefined && mapping[t] !== l;
  });
  const agrees = agreement >= 0.9;
  findings.push({
    code: 'filename-labels',
    severity: agrees ? 'info' : 'warning',
    message: agrees
      ? `The file names carry class tokens too (${listNames(tokenNames)}); they agree with the chosen labels for ${(agreement * 100).toFixed(1)}% of images.`
      : `The file names carry class tokens (${listNames(tokenNames)}) that do not follow the chosen labels (agreement ${(agreement * 100).toFixed(1)}%, Cramér's V = ${independence.cramersV.toFixed(2)}). Check which of the two is the diagnosis.`,
    evidence: {
      tokenIndex: token.tokenIndex,
      classes: token.values,
      agreement,
      mapping,
      independence,
      contingency: table,
    },
    paths: tokenNames.map((name) => paths.find((p) => tokenLabel(token, p) === name)!),
  });
  if (agrees && mismatched.length > 0) {
    findings.push({
      code: 'label-mismatch',
      severity: 'error',
      message: `${formatCount(mismatched.length)} image${mismatched.length === 1 ? '' : 's'} sit in a class folder that contradicts the class in the file name (e.g. ${mismatched[0]}).`,
      evidence: { source: 'filename', count: mismatched.length, mapping },
      paths: mismatched.slice(0, MAX_EXAMPLE_PATHS),
    });
  }
  return findings;
}

function csvMismatchFindings(
  { source, table }: UsedTable,
  primaryLabel: (path: string) => string | undefined,
  token: TokenCandidate | undefined,
): Finding[] {
  const disagreeing: string[] = [];
  for (const [path, raw] of table.labelByPath) {
    const mapped = source.valueToClass[raw];
    const byFolder = primaryLabel(path);
    const original = table.originalNameByPath.get(path);
    const byOriginalName = original && token ? tokenLabel(token, original.replace(/\\/g, '/')) : undefined;
    if ((byFolder !== undefined && byFolder !== mapped) || (byOriginalName !== undefined && byOriginalName !== mapped))
      disagreeing.push(path);
  }
  const findings: Finding[] = [
    {
      code: 'filename-labels',
      severity: 'info',
      message: `${source.file} labels ${formatCount(table.labelByPath.size)} images by ${source.fileColumn}${table.keyedBy === 'folder' ? ' (one row per folder)' : table.keyedBy === 'name-token' ? ' (one row per id in the file names)' : ''} in column ${source.labelColumn} (${Object.entries(
        source.valueToClass,
      )
        .map(([v, c]) => `${v} = ${c}`)
        .join(', ')}).`,
      evidence: {
        labelTable: source,
        rows: table.rows,
        matched: table.labelByPath.size,
        keyedBy: table.keyedBy,
        unmatchedRows: table.unmatchedRows,
        ambiguousRows: table.ambiguousCount,
      },
      paths: [source.file],
    },
  ];
  if (disagreeing.length > 0) {
    findings.push({
      code: 'label-mismatch',
      severity: 'error',
      message: `${formatCount(disagreeing.length)} image${disagreeing.length === 1 ? '' : 's'} labelled in ${source.file} disagree with their folder or original file name (e.g. ${disagreeing[0]}).`,
      evidence: { source: 'csv', file: source.file, count: disagreeing.length },
      paths: disagreeing.slice(0, MAX_EXAMPLE_PATHS),
    });
  }
  return findings;
}

/**
 * What went wrong reading the tables: rows that name no image or several, images two rows label differently,
 * and tables whose values could not be related to the classes found elsewhere.
 */
function labelTableFindings(used: UsedTable[], unused: CsvLabelTable[]): Finding[] {
  const findings: Finding[] = [];
  for (const { table } of used) {
    const problems: string[] = [];
    if (table.ambiguousCount > 0) {
      const example = table.ambiguousRows[0];
      problems.push(
        `${formatCount(table.ambiguousCount)} row${table.ambiguousCount === 1 ? '' : 's'} fit more than one image and ${table.ambiguousCount === 1 ? 'was' : 'were'} not used (row ${example.row}, ${example.value}, could be ${listNames(example.candidates, 3)}); write the path relative to the table's folder`,
      );
    }
    if (table.unmatchedRows > 0 && table.unmatchedRows >= table.rows * 0.05)
      problems.push(
        `${formatCount(table.unmatchedRows)} of ${formatCount(table.rows)} rows name no image in the dataset (e.g. ${listNames(table.unmatchedExamples, 3)})`,
      );
    if (table.conflictingPaths.length > 0)
      problems.push(
        `${formatCount(table.conflictingPaths.length)} image${table.conflictingPaths.length === 1 ? ' is' : 's are'} given different labels by two rows (e.g. ${table.conflictingPaths[0]}); the first row was used`,
      );
    if (problems.length === 0) continue;
    findings.push({
      code: 'label-table',
      severity: 'warning',
      message: `${table.file}: ${problems.join('; ')}.`,
      evidence: {
        file: table.file,
        rows: table.rows,
        matched: table.labelByPath.size,
        unmatchedRows: table.unmatchedRows,
        unmatchedExamples: table.unmatchedExamples,
        ambiguousCount: table.ambiguousCount,
        ambiguousRows: table.ambiguousRows,
        conflictingPaths: table.conflictingPaths,
      },
      paths: [table.file, ...table.ambiguousRows.flatMap((r) => r.candidates), ...table.conflictingPaths]
        .filter((p) => !p.endsWith('/'))
        .slice(0, MAX_EXAMPLE_PATHS),
    });
  }
  for (const table of unused) {
    const values = [...new Set(table.labelByPath.values())];
    findings.push({
      code: 'label-table',
      severity: 'warning',
      message: `${table.file} labels ${formatCount(table.labelByPath.size)} images in column ${table.labelColumn} (${listNames(values)}), but its values could not be related to the classes found elsewhere, so it is not used. Choose it with --labels csv:${table.file} if it holds the diagnoses.`,
      evidence: { file: table.file, labelColumn: table.labelColumn, values, matched: table.labelByPath.size },
      paths: [table.file],
    });
  }
  return findings;
}

const SPREADSHEET = /\.(xlsx|xlsm|xls|ods|numbers)$/i;

/** Spreadsheets may hold the labels, but are not read (a zip of XML is a parser of its own): say how to use them. */
function spreadsheetFindings(otherFiles: string[], labelled: boolean): Finding[] {
  const sheets = otherFiles.filter((f) => SPREADSHEET.test(f));
  if (sheets.length === 0) return [];
  return [
    {
      code: 'label-table',
      severity: labelled ? 'info' : 'warning',
      message: `${listNames(sheets, 3)} ${sheets.length === 1 ? 'is a spreadsheet' : 'are spreadsheets'}, which the audit does not read. If ${sheets.length === 1 ? 'it holds' : 'they hold'} labels, save as CSV (UTF-8) beside the images and audit again.`,
      evidence: { spreadsheets: sheets },
      paths: sheets.slice(0, MAX_EXAMPLE_PATHS),
    },
  ];
}

function classFindings(classes: NamedCount[], labelLevel: FolderLevel | undefined): Finding[] {
  const findings: Finding[] = [];
  const counts = classes.map((c) => c.count);
  const largest = classes[counts.indexOf(Math.max(...counts))];
  const smallest = classes[counts.indexOf(Math.min(...counts))];
  const ratio = largest.count / smallest.count;
  if (classes.length >= 2 && ratio >= IMBALANCE_INFO_RATIO) {
    findings.push({
      code: 'class-imbalance',
      severity: ratio >= IMBALANCE_WARNING_RATIO ? 'warning' : 'info',
      message: `${largest.name} has ${ratio.toFixed(1)}× as many images as ${smallest.name}. Accuracy alone will flatter the model: use class weights or balanced sampling and read balanced accuracy and weighted F1.`,
      evidence: { classes, ratio: Number(ratio.toFixed(3)) },
      paths: [],
    });
  }
  const small = classes.filter((c) => c.count < MIN_IMAGES_PER_CLASS);
  if (classes.length < 2 || small.length > 0) {
    findings.push({
      code: 'too-few-images',
      severity: 'warning',
      message:
        classes.length < 2
          ? `Only one class (${classes[0].name}) was found: a classifier needs at least two.`
          : `${listNames(small.map((c) => `${c.name} (${c.count})`))} ${small.length === 1 ? 'has' : 'have'} fewer than ${MIN_IMAGES_PER_CLASS} images: metrics on ${small.length === 1 ? 'it' : 'them'} will be noise.`,
      evidence: { classes, minimumPerClass: MIN_IMAGES_PER_CLASS },
      paths: [],
    });
  }
  if (labelLevel && labelLevel.dominantKind === 'numeric') {
    findings.push({
      code: 'numeric-class-names',
      severity: 'info',
      message: `The classes are named by numbers (${listNames(labelLevel.names.map((n) => n.name))}). That is common and fine, but write down which number is ALL: reports will show the numbers.`,
      evidence: { classes: labelLevel.names },
      paths: [],
    });
  }
  return findings;
}

function imageFindings(scan: ScanResult): Finding[] {
  const findings: Finding[] = [];
  if (scan.unreadable.length > 0) {
    const byReason: Record<string, number> = {};
    for (const u of scan.unreadable) byReason[u.reason] = (byReason[u.reason] ?? 0) + 1;
    findings.push({
      code: 'unreadable-images',
      severity: 'warning',
      message: `${formatCount(scan.unreadable.length)} file${scan.unreadable.length === 1 ? '' : 's'} could not be read and will be skipped (${Object.entries(
        byReason,
      )
        .map(([r, n]) => `${n} ${r}`)
        .join(', ')}), e.g. ${scan.unreadable[0].path}: ${scan.unreadable[0].detail}`,
      evidence: { byReason, files: scan.unreadable.slice(0, 200) },
      paths: scan.unreadable.slice(0, MAX_EXAMPLE_PATHS).map((u) => u.path),
    });
  }
  const sizes = new Map<string, number>();
  for (const img of scan.images)
    sizes.set(`${img.width}×${img.height}`, (sizes.get(`${img.width}×${img.height}`) ?? 0) + 1);
  if (sizes.size > 1) {
    const sorted = [...sizes.entries()].sort((a, b) => b[1] - a[1]);
    const aspects = new Set(scan.images.map((img) => (img.width / img.height).toFixed(2)));
    findings.push({
      code: 'mixed-image-sizes',
      severity: aspects.size > 1 ? 'warning' : 'info',
      message: `Images come in ${sizes.size} sizes (most common ${sorted[0][0]}: ${formatCount(sorted[0][1])}). They are resized for training${aspects.size > 1 ? '; differing aspect ratios will be distorted or cropped, and a size that differs by class is a shortcut a model can learn' : ''}.`,
      evidence: {
        sizes: Object.fromEntries(sorted.slice(0, 20)),
        distinctSizes: sizes.size,
        aspectRatios: [...aspects].slice(0, 20),
      },
      paths: sorted
        .slice(1, 1 + MAX_EXAMPLE_PATHS)
        .map(([size]) => scan.images.find((img) => `${img.width}×${img.height}` === size)!.path),
    });
  }
  return findings;
}
