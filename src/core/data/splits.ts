/**
 * Which images train, which validate and which are held out as a test set, following the DatasetSpec's split
 * plan. A patient's cells must not end up on both sides: a model can recognise the patient (stain batch,
 * microscope day) and look far better than it is. The subject-disjoint plan guarantees it; for plans that
 * follow the folders, `findSubjectOverlap` checks it.
 */
import { classifyName, type SplitRole } from '../audit/names.js';
import type { CsvLabelTable } from '../audit/csvLabels.js';
import { fileNameOf, folderAt, pathParts, subjectMatcher, type DatasetSpec } from '../datasetSpec.js';
import type { Labeler } from '../labels.js';
import { createRng, type Rng } from '../random.js';

export type SplitName = SplitRole;
export const SPLIT_NAMES: readonly SplitName[] = ['train', 'val', 'test'];

export type SubjectOf = (path: string) => string | undefined;

/**
 * Subjects the way the audit reads them: from the file name by `pattern`, else from the original file name a
 * label table keeps (C-NMC's numbered test images are `1.bmp`, `2.bmp`, … with the UID name in the CSV), else
 * from the key of a per-patient label table, else from the patient folder the audit found.
 */
export function subjectReader(
  pattern: string,
  csvTables: readonly CsvLabelTable[] = [],
  subjectFolderDepth?: number,
): SubjectOf {
  const match = subjectMatcher(pattern);
  const originalNames = new Map<string, string>();
  const groupKeys = new Map<string, string>();
  for (const table of csvTables) {
    for (const [path, name] of table.originalNameByPath) originalNames.set(path, name);
    for (const [path, key] of table.groupKeyByPath) groupKeys.set(path, key.toUpperCase());
  }
  return (path) => {
    const own = match(fileNameOf(path));
    if (own !== undefined) return own;
    const original = originalNames.get(path);
    const byOriginal = original === undefined ? undefined : match(fileNameOf(original.replace(/\\/g, '/')));
    if (byOriginal !== undefined) return byOriginal;
    // A per-patient table's row key (`P07`) names the patient.
    const byKey = groupKeys.get(path);
    if (byKey !== undefined || subjectFolderDepth === undefined) return byKey;
    // The patient folder, as a path: `P07` under two cohorts is two people.
    const { folders } = pathParts(path);
    return folders.length >= subjectFolderDepth ? folders.slice(0, subjectFolderDepth).join('/') : undefined;
  };
}

export interface SplitAssignment {
  /** Every labelled image's split; unlabelled images are left out. */
  splitOf: Map<string, SplitName>;
  /**
   * Images a subject-disjoint plan had to split one by one because no subject is known for them: their
   * patients may straddle train and val, so the caller should warn. 0 for the other plans.
   */
  imagesSplitWithoutSubject: number;
  /** Sentences for the user about compromises made (e.g. a class with a single subject). */
  notes: string[];
}

type ImagePath = string | { path: string };

export function assignSplits(
  spec: Pick<DatasetSpec, 'split' | 'groups' | 'splits'>,
  images: readonly ImagePath[],
  labelOf: Labeler,
  subjectOf: SubjectOf,
): SplitAssignment {
  const labelled = images
    .map((image) => (typeof image === 'string' ? image : image.path))
    .filter((path) => labelOf(path) !== undefined);
  const plan = spec.split;
  switch (plan.kind) {
    case 'folds':
      return byRule(labelled, foldRule(spec, plan.depth, plan.validationGroup));
    case 'predefined':
      return byRule(labelled, (path) => splitRoleAt(spec, path, plan.depth));
    case 'subject-disjoint':
      return holdOutSubjects(labelled, labelOf, subjectOf, createRng(plan.seed).fork('split'), plan.validationFraction);
  }
}

function byRule(paths: string[], rule: (path: string) => SplitName | undefined): SplitAssignment {
  const splitOf = new Map<string, SplitName>();
  for (const path of paths) {
    const split = rule(path);
    if (split !== undefined) splitOf.set(path, split);
  }
  return { splitOf, imagesSplitWithoutSubject: 0, notes: [] };
}

/**
 * The held-out fold validates, the other folds train. Images outside every fold follow their split folder:
 * C-NMC's `validation_data` is the preliminary test set, never seen while choosing epochs, so it becomes test.
 */
function foldRule(spec: Pick<DatasetSpec, 'groups' | 'splits'>, depth: number, validationGroup: string) {
  const listedGroups = spec.groups?.depth === depth ? new Set(spec.groups.groups.map((g) => g.name)) : undefined;
  // A hand-written spec may list no groups: then any folder at that depth is one, unless its name says split.
  const isGroup = (folder: string) =>
    folder === validationGroup || (listedGroups ? listedGroups.has(folder) : classifyName(folder).role === undefined);
  return (path: string): SplitName | undefined => {
    const group = folderAt(path, depth);
    if (group !== undefined && isGroup(group)) {
      return group === validationGroup ? 'val' : 'train';
    }
    const role = spec.splits ? splitRoleAt(spec, path, spec.splits.depth) : undefined;
    return role === undefined ? undefined : role === 'train' ? 'train' : 'test';
  };
}

/** The role of the split folder at `depth`: as the spec lists it, else as its name says (`validation_data` → val). */
function splitRoleAt(spec: Pick<DatasetSpec, 'splits'>, path: string, depth: number): SplitName | undefined {
  const folder = folderAt(path, depth);
  if (folder === undefined) return undefined;
  const listed = spec.splits?.depth === depth ? spec.splits.splits.find((s) => s.name === folder) : undefined;
  return listed?.role ?? classifyName(folder).role;
}

/**
 * Holds out whole subjects, stratified by class: each class gives about `fraction` of its subjects (at least
 * one) to validation. Images without a known subject are stratified and held out one by one, separately, so
 * a few anonymous images cannot distort the subject quotas.
 */
function holdOutSubjects(
  paths: string[],
  labelOf: Labeler,
  subjectOf: SubjectOf,
  rng: Rng,
  fraction: number,
): SplitAssignment {
  if (!(fraction > 0 && fraction < 1))
    throw new RangeError(`validationFraction must be between 0 and 1, got ${fraction}`);
  const imagesBySubject = new Map<string, string[]>();
  const anonymous: string[] = [];
  for (const path of paths) {
    const subject = subjectOf(path);
    if (subject === undefined) anonymous.push(path);
    else pushTo(imagesBySubject, subject, path);
  }
  const notes: string[] = [];
  const subjectUnits = [...imagesBySubject].map(([subject, images]) => ({
    id: subject,
    paths: images,
    label: majorityLabel(images, labelOf),
  }));
  const imageUnits = anonymous.map((path) => ({ id: path, paths: [path], label: labelOf(path)! }));
  const held = new Set([
    ...stratifiedHoldOut(subjectUnits, fraction, rng.fork('subjects'), 'subject', notes),
    ...stratifiedHoldOut(imageUnits, fraction, rng.fork('images'), 'image', notes),
  ]);
  const splitOf = new Map<string, SplitName>();
  for (const unit of [...subjectUnits, ...imageUnits]) {
    for (const path of unit.paths) splitOf.set(path, held.has(unit) ? 'val' : 'train');
  }
  if (anonymous.length > 0) {
    notes.push(
      anonymous.length === paths.length
        ? 'No image has a subject, so the split is by image: cells of one patient may be in both training and validation.'
        : `${anonymous.length} of ${paths.length} images have no subject and were split by image.`,
    );
  }
  return { splitOf, imagesSplitWithoutSubject: anonymous.length, notes };
}

interface SplitUnit {
  id: string;
  paths: string[];
  label: string;
}

function stratifiedHoldOut(units: SplitUnit[], fraction: number, rng: Rng, noun: string, notes: string[]): SplitUnit[] {
  const byClass = new Map<string, SplitUnit[]>();
  for (const unit of units) pushTo(byClass, unit.label, unit);
  const held: SplitUnit[] = [];
  for (const label of [...byClass.keys()].sort()) {
    // Sorted before shuffling, so the split depends on the seed and the data, not on the order of the scan.
    const members = byClass.get(label)!.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    if (members.length < 2) {
      // Holding out the only one would leave training without the class, which is worse than no validation of it.
      notes.push(`Class ${label} has a single ${noun}; it stays in training, so validation has no ${label} ${noun}s.`);
      continue;
    }
    const count = Math.min(members.length - 1, Math.max(1, Math.round(members.length * fraction)));
    held.push(...rng.fork(label).shuffle(members).slice(0, count));
  }
  return held;
}

function pushTo<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** A subject's class for stratification; C-NMC subjects have one class, a mixed one counts as its commonest. */
function majorityLabel(paths: string[], labelOf: Labeler): string {
  const counts = new Map<string, number>();
  for (const path of paths) {
    const label = labelOf(path)!;
    counts.set(label, (counts.get(label) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0][0];
}

export interface SplitSummary {
  split: SplitName;
  images: number;
  /** Images per class, every class of the dataset listed (0 when absent from this split). */
  byClass: Record<string, number>;
  subjects: number;
  imagesWithoutSubject: number;
}

/** Counts per split × class and subjects per split, in train, val, test order; empty splits are left out. */
export function summariseSplits(
  splitOf: ReadonlyMap<string, SplitName>,
  labelOf: Labeler,
  subjectOf: SubjectOf,
): SplitSummary[] {
  const classes = [...new Set([...splitOf.keys()].map((path) => labelOf(path)!))].sort();
  const summaries = new Map<SplitName, SplitSummary & { subjectSet: Set<string> }>();
  for (const [path, split] of splitOf) {
    let summary = summaries.get(split);
    if (!summary) {
      summary = {
        split,
        images: 0,
        byClass: Object.fromEntries(classes.map((c) => [c, 0])),
        subjects: 0,
        imagesWithoutSubject: 0,
        subjectSet: new Set(),
      };
      summaries.set(split, summary);
    }
    summary.images++;
    summary.byClass[labelOf(path)!]++;
    const subject = subjectOf(path);
    if (subject === undefined) summary.imagesWithoutSubject++;
    else summary.subjectSet.add(subject);
  }
  return SPLIT_NAMES.flatMap((name) => {
    const summary = summaries.get(name);
    if (!summary) return [];
    const { subjectSet, ...rest } = summary;
    return [{ ...rest, subjects: subjectSet.size }];
  });
}

export interface SubjectOverlap {
  subject: string;
  /** Images of the subject per split it appears in. */
  where: Partial<Record<SplitName, number>>;
}

/** Subjects with images in more than one split, sorted by subject; empty when the split is subject-disjoint. */
export function findSubjectOverlap(splitOf: ReadonlyMap<string, SplitName>, subjectOf: SubjectOf): SubjectOverlap[] {
  const placements = new Map<string, Partial<Record<SplitName, number>>>();
  for (const [path, split] of splitOf) {
    const subject = subjectOf(path);
    if (subject === undefined) continue;
    const where = placements.get(subject) ?? {};
    where[split] = (where[split] ?? 0) + 1;
    placements.set(subject, where);
  }
  return [...placements]
    .filter(([, where]) => Object.keys(where).length > 1)
    .map(([subject, where]) => ({ subject, where }))
    .sort((a, b) => (a.subject < b.subject ? -1 : a.subject > b.subject ? 1 : 0));
}
