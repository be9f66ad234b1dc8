/**
 * The DatasetSpec: where the labels, groups (folds) and splits of a dataset live, as the audit
 * recommends them or as the user chose. Training reads labels only through `resolveLabels`, so every
 * label source (folder level, file-name token, CSV column) behaves the same downstream.
 */
import type { SplitRole } from './audit/names.js';
import type { ImageEntry } from './types.js';

export const DEFAULT_SUBJECT_PATTERN = '^UID_(H?\\d+)_';

export type LabelSource =
  /** The folder at `depth` below the root (1 = the folders `ImageFolder(root)` would use as classes). */
  | {
      kind: 'folder';
      depth: number;
      /** Spellings that differ only in case (`ALL` in one fold, `all` in another) → one class. */
      valueToClass?: Record<string, string>;
    }
  /** A token of the file name, split on `_ - . space`; `index` counts from the end when negative. */
  | { kind: 'filename'; tokenIndex: number; valueToClass: Record<string, string> }
  /** A label column of a CSV/TSV file (path relative to the root), matched by file name. */
  | { kind: 'csv'; file: string; fileColumn: string; labelColumn: string; valueToClass: Record<string, string> };

export interface NamedCount {
  name: string;
  count: number;
}

export interface SplitCount extends NamedCount {
  role: SplitRole;
}

export type SplitPlan =
  /** Folders at `depth` are cross-validation folds: train on k−1, validate on the held-out one. */
  | { kind: 'folds'; depth: number; validationGroup: string }
  /** Folders at `depth` are named train/val/test splits. */
  | { kind: 'predefined'; depth: number }
  /** No usable structure: hold out whole subjects (or images, when no subject is known), seeded. */
  | { kind: 'subject-disjoint'; seed: number; validationFraction: number };

export interface DatasetSpec {
  version: 1;
  root: string;
  /** Sources in priority order: the first that labels an image wins. */
  labelSources: LabelSource[];
  classes: NamedCount[];
  /** Images none of the label sources could label (e.g. an unlabelled test set). */
  unlabelled: number;
  /** Folders that are cross-validation folds or other partitions, kept as groups. */
  groups: { depth: number; groups: NamedCount[] } | null;
  /** Folders that are named train/val/test splits. */
  splits: { depth: number; splits: SplitCount[] } | null;
  split: SplitPlan;
  subjectPattern: string;
  /**
   * Folders at this depth are patients (or slides): the subject of an image whose name the pattern does not
   * match. Absent when no such level was found.
   */
  subjectFolderDepth?: number;
  /** Subjects found (by pattern or CSV) and how many images carry one. */
  subjects: { count: number; imagesWithSubject: number };
}

/** Splits a path relative to the root into its folder names and its file name. */
export function pathParts(path: string): { folders: string[]; fileName: string } {
  const slash = path.lastIndexOf('/');
  return { folders: slash < 0 ? [] : path.slice(0, slash).split('/'), fileName: path.slice(slash + 1) };
}

/** The file name of a relative path (what follows its last slash). */
export function fileNameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export function fileStem(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot > 0 ? fileName.slice(0, dot) : fileName;
}

export function fileNameTokens(fileName: string): string[] {
  return fileStem(fileName)
    .split(/[_\-. ]+/)
    .filter(Boolean);
}

export function tokenAt(tokens: string[], index: number): string | undefined {
  return index < 0 ? tokens[tokens.length + index] : tokens[index];
}

/** The folder name at `depth` (1 = the top) of a relative path, without splitting it: audits call this per image. */
export function folderAt(path: string, depth: number): string | undefined {
  if (depth < 1) return undefined;
  let start = 0;
  for (let level = 1; level < depth; level++) {
    start = path.indexOf('/', start) + 1;
    if (start === 0) return undefined;
  }
  const end = path.indexOf('/', start);
  return end < 0 ? undefined : path.slice(start, end);
}

/** Compiles a subject pattern; the first capture group (or the whole match) is the subject id. */
/**
 * A subject pattern sees at most this many characters of a name: subject ids sit in the first few dozen, and a
 * pattern that backtracks polynomially (the setting and dataset files are user input) stays bounded on long
 * names. Exponential patterns are stopped by running the audit in a child process with a time limit.
 */
export const MAX_SUBJECT_NAME_CHARS = 128;

export function subjectMatcher(pattern: string): (fileName: string) => string | undefined {
  const regex = new RegExp(pattern, 'i');
  return (fileName) => {
    const match = regex.exec(fileName.slice(0, MAX_SUBJECT_NAME_CHARS));
    if (!match) return undefined;
    // C-NMC writes healthy subjects both as H10 and h10: the same person.
    return (match[1] ?? match[0]).toUpperCase();
  };
}

/** A table-driven label lookup built once per source; CSV rows are supplied by the caller. */
export type LabelLookup = (image: Pick<ImageEntry, 'path'>) => string | undefined;
