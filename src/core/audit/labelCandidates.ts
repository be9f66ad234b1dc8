/**
 * Candidate label sources, each described by the evidence the audit reasons with: folder levels (what
 * `ImageFolder` would see at each depth) and class tokens in file names.
 */
import { fileNameOf, fileNameTokens, folderAt, pathParts, tokenAt, type NamedCount } from '../datasetSpec.js';
import type { ImageEntry } from '../types.js';
import {
  classifyName,
  numberedSeriesKind,
  isStructuralKind,
  numberPattern,
  type NameClassification,
  type NameKind,
} from './names.js';

export interface FolderLevel {
  depth: number;
  /** Images that have a folder at this depth. */
  covered: number;
  names: NamedCount[];
  kinds: Record<string, NameClassification>;
  /** The kind carrying most images at this level. */
  dominantKind: NameKind;
  /** Share of covered images whose folder name is structural (fold, split, batch, site, date, subject). */
  structuralShare: number;
  /** Folder names one level deeper under each name at this level. */
  childrenByName: Record<string, string[]>;
}

export function summariseFolderLevels(images: ImageEntry[]): FolderLevel[] {
  const maxDepth = Math.max(0, ...images.map((img) => pathParts(img.path).folders.length));
  const levels: FolderLevel[] = [];
  for (let depth = 1; depth <= maxDepth; depth++) {
    const counts = new Map<string, number>();
    const children = new Map<string, Set<string>>();
    for (const img of images) {
      const name = folderAt(img.path, depth);
      if (name === undefined) continue;
      counts.set(name, (counts.get(name) ?? 0) + 1);
      const child = folderAt(img.path, depth + 1);
      if (child !== undefined) {
        if (!children.has(name)) children.set(name, new Set());
        children.get(name)!.add(child);
      }
    }
    const names = sortedCounts(counts);
    const kinds: Record<string, NameClassification> = {};
    const kindWeight = new Map<NameKind, number>();
    let covered = 0;
    let structural = 0;
    for (const { name, count } of names) {
      const kind = classifyName(name);
      kinds[name] = kind;
      covered += count;
      if (isStructuralKind(kind.kind)) structural += count;
      kindWeight.set(kind.kind, (kindWeight.get(kind.kind) ?? 0) + count);
    }
    // A numbered series (P01 … P30, smear_1/smear_2) is a grouping, even though each name alone reads as a class.
    const series = numberedSeriesKind(names.map((n) => n.name));
    if (series) {
      kindWeight.clear();
      structural = 0;
      for (const { name, count } of names) {
        if (kinds[name].kind === 'class' || kinds[name].kind === 'numeric') kinds[name] = { kind: series };
        if (isStructuralKind(kinds[name].kind)) structural += count;
        kindWeight.set(kinds[name].kind, (kindWeight.get(kinds[name].kind) ?? 0) + count);
      }
    }
    const dominantKind = [...kindWeight.entries()].sort((a, b) => b[1] - a[1])[0][0];
    const childrenByName: Record<string, string[]> = {};
    for (const [name, set] of children) childrenByName[name] = [...set].sort();
    levels.push({ depth, covered, names, kinds, dominantKind, structuralShare: structural / covered, childrenByName });
  }
  return levels;
}

/**
 * Could this level hold diagnoses? Mostly non-structural names, at least two of them, and far fewer
 * names than images (one folder per image or per patient is a grouping, not a label).
 */
export function isLabelLike(level: FolderLevel): boolean {
  return level.structuralShare < 0.5 && level.names.length >= 2 && level.names.length <= Math.max(2, level.covered / 4);
}

/** The same ≥ 2 sub-folders under every name: the signature of folds or splits wrapping the real classes. */
export function repeatedChildren(level: FolderLevel): string[] | undefined {
  const sets = level.names.map(({ name }) => level.childrenByName[name] ?? []);
  if (sets.length < 2 || sets[0].length < 2) return undefined;
  const first = sets[0].join('\u0000');
  return sets.every((set) => set.join('\u0000') === first) ? sets[0] : undefined;
}

export interface TokenCandidate {
  tokenIndex: number;
  covered: number;
  /** Canonical class names (most common spelling) with counts. */
  values: NamedCount[];
  /** Every spelling seen (e.g. `ALL`, `all`) → canonical name. */
  valueToClass: Record<string, string>;
  /** A binary 0/1 code (ALL-IDB's `Im001_1.jpg`: 1 = blasts present), not a word. */
  numeric: boolean;
}

const TOKEN_POSITIONS = [-1, -2, 0, 1, 2];
const MAX_TOKEN_CLASSES = 20;
const BINARY_CODE = /^[01]$/;
const count = (bySpelling: Map<string, number>) => [...bySpelling.values()].reduce((a, b) => a + b, 0);
/** Each class value must recur: at least this many files, and this share of the files carrying the token. */
const MIN_TOKEN_FILES = 3;
const MIN_TOKEN_SHARE = 0.02;
/** Words that name the file, the counter or the object, never the class: `cell no 3`, `img_12`, `crop-4`. */
const NAME_WORDS = new Set([
  'no',
  'nr',
  'nro',
  'num',
  'number',
  'n',
  'idx',
  'index',
  'img',
  'image',
  'im',
  'pic',
  'picture',
  'photo',
  'cell',
  'cells',
  'file',
  'scan',
  'copy',
  'crop',
  'frame',
  'tile',
  'patch',
  'field',
  'roi',
  'view',
  'capture',
]);

/**
 * A file-name token with few, repeated, word-like values, present in most file names: `UID_11_10_1_all`.
 * Noise is not a class: a running number or ordinal (`n°3`, `x40`: values that differ only by a number), a
 * lone letter (`site_B`), a naming word (`cell`, `no`), or a value seen in too few files.
 */
export function findTokenCandidate(images: ImageEntry[]): TokenCandidate | undefined {
  let best: TokenCandidate | undefined;
  const tokensOf = images.map((img) => fileNameTokens(fileNameOf(img.path)));
  for (const tokenIndex of TOKEN_POSITIONS) {
    const spellings = new Map<string, Map<string, number>>();
    let covered = 0;
    for (const tokens of tokensOf) {
      if (tokens.length < 2) continue;
      const token = tokenAt(tokens, tokenIndex);
      if (token === undefined || !(/[a-z]/i.test(token) || (tokenIndex === -1 && BINARY_CODE.test(token)))) continue;
      covered++;
      const key = token.toLowerCase();
      if (!spellings.has(key)) spellings.set(key, new Map());
      const bySpelling = spellings.get(key)!;
      bySpelling.set(token, (bySpelling.get(token) ?? 0) + 1);
    }
    if (covered < images.length * 0.5 || spellings.size < 2 || spellings.size > MAX_TOKEN_CLASSES) continue;
    const keys = [...spellings.keys()];
    const numeric = keys.every((k) => BINARY_CODE.test(k));
    if (!numeric && keys.some((k) => k.length < 2 || NAME_WORDS.has(k) || BINARY_CODE.test(k))) continue;
    // A 0/1 code must be in nearly every name, with both values common: else it is a counter's last digit.
    if (
      numeric &&
      (covered < images.length * 0.9 || Math.min(...keys.map((k) => count(spellings.get(k)!))) < covered * 0.1)
    )
      continue;
    if (!numeric && new Set(keys.map(numberPattern)).size < keys.length) continue;
    const minCount = Math.max(MIN_TOKEN_FILES, covered * MIN_TOKEN_SHARE);
    const valueToClass: Record<string, string> = {};
    const counts = new Map<string, number>();
    let rare = false;
    for (const bySpelling of spellings.values()) {
      const sorted = [...bySpelling.entries()].sort((a, b) => b[1] - a[1]);
      const canonical = sorted[0][0];
      const total = sorted.reduce((sum, [, n]) => sum + n, 0);
      if (total < minCount) rare = true;
      for (const [spelling] of sorted) valueToClass[spelling] = canonical;
      counts.set(canonical, total);
    }
    // A token that is a structural word (e.g. `train`) or too rare to be a class is no label.
    if (rare || [...counts.keys()].every((value) => isStructuralKind(classifyName(value).kind))) continue;
    const candidate = { tokenIndex, covered, values: sortedCounts(counts), valueToClass, numeric };
    if (
      !best ||
      candidate.covered > best.covered ||
      (candidate.covered === best.covered && candidate.values.length < best.values.length)
    ) {
      best = candidate;
    }
  }
  return best;
}

export function tokenLabel(candidate: TokenCandidate, path: string): string | undefined {
  const token = tokenAt(fileNameTokens(fileNameOf(path)), candidate.tokenIndex);
  return token === undefined ? undefined : candidate.valueToClass[token];
}

export function sortedCounts(counts: Map<string, number>): NamedCount[] {
  return [...counts.entries()]
    .map(([name, count]) => ({ name, count }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface Contingency {
  rows: string[];
  columns: string[];
  /** counts[row][column] */
  counts: number[][];
}

/** Cross-tabulates two labelings over the images both of them label. */
export function crossTabulate(
  paths: string[],
  rowLabel: (path: string) => string | undefined,
  columnLabel: (path: string) => string | undefined,
): Contingency {
  const rowIndex = new Map<string, number>();
  const columnIndex = new Map<string, number>();
  const pairs: [number, number][] = [];
  for (const path of paths) {
    const r = rowLabel(path);
    const c = columnLabel(path);
    if (r === undefined || c === undefined) continue;
    if (!rowIndex.has(r)) rowIndex.set(r, rowIndex.size);
    if (!columnIndex.has(c)) columnIndex.set(c, columnIndex.size);
    pairs.push([rowIndex.get(r)!, columnIndex.get(c)!]);
  }
  const counts = [...rowIndex.keys()].map(() => new Array<number>(columnIndex.size).fill(0));
  for (const [r, c] of pairs) counts[r][c]++;
  return { rows: [...rowIndex.keys()], columns: [...columnIndex.keys()], counts };
}

/** For each row value, the column value it co-occurs with most: how one labeling translates to another. */
export function majorityMapping(table: Contingency): { mapping: Record<string, string>; agreement: number } {
  const mapping: Record<string, string> = {};
  let agreeing = 0;
  let total = 0;
  table.rows.forEach((row, r) => {
    const counts = table.counts[r];
    let bestColumn = 0;
    counts.forEach((n, c) => {
      if (n > counts[bestColumn]) bestColumn = c;
    });
    mapping[row] = table.columns[bestColumn];
    agreeing += counts[bestColumn];
    total += counts.reduce((a, b) => a + b, 0);
  });
  return { mapping, agreement: total === 0 ? 0 : agreeing / total };
}
