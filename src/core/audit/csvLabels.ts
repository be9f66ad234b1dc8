/**
 * Label tables shipped beside the images (C-NMC's `C-NMC_test_prelim_phase_data_labels.csv` has
 * `Patient_ID,new_names,labels`). The key column and the label column are detected from the content, not
 * from their names, so other datasets' tables work too. A row names its image however its author wrote it:
 * a bare file name, a stem without extension (`IMG_0042`), a path relative to the table or to the dataset
 * (`p07/smear2/img3.tif`), an absolute path from the author's machine, or a folder (a patient) whose images
 * all share the row's label. A row that fits more than one image is reported, never guessed.
 */
import { fileNameTokens, fileStem, pathParts } from '../datasetSpec.js';
import type { ImageEntry } from '../types.js';

export interface DelimitedTable {
  delimiter: string;
  header: string[];
  rows: string[][];
}

const DELIMITERS = [',', '\t', ';', '|'];

/**
 * A table file's text: UTF-8 (with or without BOM), or UTF-16 with a BOM — what Excel's "Unicode Text" saves.
 * Bytes that are not valid UTF-8 are read as Windows-1252, the other common Excel export.
 */
export function decodeTableText(bytes: Uint8Array): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes.subarray(2));
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes.subarray(2));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder('windows-1252').decode(bytes);
  }
}

/**
 * RFC 4180 CSV (quotes, doubled quotes, delimiters and newlines inside quotes, CRLF, a UTF-8 BOM), with the
 * delimiter guessed from the header line (counted outside quotes) or given by Excel's `sep=;` first line.
 */
export function parseDelimited(text: string): DelimitedTable {
  let body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let delimiter: string | undefined;
  const hint = /^sep=(.)\r?\n/i.exec(body);
  if (hint) {
    delimiter = hint[1];
    body = body.slice(hint[0].length);
  }
  delimiter ??= guessDelimiter(body);
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (quoted) {
      if (ch === '"' && body[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (ch === delimiter) {
      record.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && body[i + 1] === '\n') i++;
      record.push(field);
      records.push(record);
      record = [];
      field = '';
    } else field += ch;
  }
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  const cells = delimiter === ' ' ? records.map((r) => r.filter((f) => f !== '')) : records;
  const nonEmpty = cells.filter((r) => r.some((f) => f.trim() !== ''));
  const [header = [], ...rows] = nonEmpty;
  return { delimiter, header: header.map((h) => h.trim()), rows: rows.map((r) => r.map((f) => f.trim())) };
}

function guessDelimiter(body: string): string {
  const counts = new Map(DELIMITERS.map((d) => [d, 0]));
  let quoted = false;
  for (const ch of body) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && (ch === '\n' || ch === '\r')) break;
    else if (!quoted && counts.has(ch)) counts.set(ch, counts.get(ch)! + 1);
  }
  const [best, n] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
  // A plain list (`imgs/c1.png 0`, as Caffe and many scripts write them) separates by spaces.
  return n === 0 && /^\S+[ ]+\S/.test(body) ? ' ' : best;
}

/** Rows that fit more than one image: reported with the images they could mean. */
export interface AmbiguousRow {
  /** 1-based data row (the header is row 0). */
  row: number;
  value: string;
  candidates: string[];
}

/** Another column of the table that says how the data was organised (site, batch, scanner, date…). */
export interface GroupColumn {
  column: string;
  valueByPath: Map<string, string>;
}

export interface CsvLabelTable {
  /** Path of the table relative to the dataset root. */
  file: string;
  fileColumn: string;
  labelColumn: string;
  /**
   * What the key column names: images; folders (one row per patient folder); or a token of the file names
   * (one row per patient id written in `P07_003.png`), at `keyTokenIndex`.
   */
  keyedBy: 'file' | 'folder' | 'name-token';
  keyTokenIndex?: number;
  /** Raw label value per matched image path. */
  labelByPath: Map<string, string>;
  /** For a table keyed by folder or name token: the row's key per image — a patient, since a diagnosis is one. */
  groupKeyByPath: Map<string, string>;
  /** Other name-like columns per matched image (C-NMC's Patient_ID holds the original file name). */
  originalNameByPath: Map<string, string>;
  /** Columns that look like acquisition groups (site, batch, date…), for the confounding check. */
  groupColumns: GroupColumn[];
  rows: number;
  /** Rows whose key matched no image. */
  unmatchedRows: number;
  /** Examples (at most MAX_ROW_EXAMPLES) of keys that matched no image. */
  unmatchedExamples: string[];
  /** Rows matching several images, left unused (at most MAX_ROW_EXAMPLES kept; the count is `ambiguousCount`). */
  ambiguousRows: AmbiguousRow[];
  ambiguousCount: number;
  /** Images that two rows give different labels: the first row wins, the image is listed here. */
  conflictingPaths: string[];
}

const LABEL_COLUMN_NAME =
  /label|class|diagnos|target|category|outcome|cancer|type|^y$|^dx$|truth|^gt$|annotat|status|disease|leuk|condition|malignan|tumou?r|finding|result/i;
const NOT_LABEL_COLUMN_NAME =
  /site|hospital|cent(er|re)|clinic|batch|fold|split|date|time|scanner|device|microscope|camera|lab\b|operator|patient|subject|donor|case|^id$|_id$|\bid\b|uid|width|height|size|age|sex|gender|stain|magnif|path|file|name|image/i;
const GROUP_COLUMN_NAME =
  /site|hospital|cent(er|re)|clinic|institut|batch|fold|scanner|device|microscope|camera|^lab$|operator|source|cohort|date|day|session|stain|protocol/i;
const MAX_LABEL_VALUES = 50;
const NOT_CELL_IMAGES =
  /^(?:masks?|segmentations?|seg|overlays?|annotations?|gt|ground[\s_-]?truth|thumbnails?|thumbs|previews?)$/i;
const MAX_ROW_EXAMPLES = 20;
const IMAGE_EXTENSION = /\.(bmp|png|jpe?g|tiff?|webp|gif)$/i;

type Match = { kind: 'one'; paths: string[] } | { kind: 'ambiguous'; paths: string[] } | { kind: 'none' };

/**
 * Matches a table's rows to images and picks the key and label columns. Images under the table's own folder
 * are preferred: C-NMC's validation and test folders both contain `1.bmp`.
 */
export function detectCsvLabels(file: string, table: DelimitedTable, images: ImageEntry[]): CsvLabelTable | undefined {
  let { header, rows } = table;
  if (header.length < 2 || rows.length === 0) return undefined;
  const matcher = imageMatcher(images, pathParts(file).folders.join('/'));

  let best: { column: number; matches: number; key: Key } | undefined;
  for (let column = 0; column < header.length; column++) {
    const distinct = new Set(rows.map((row) => (row[column] ?? '').toLowerCase())).size;
    for (const key of matcher.keys) {
      // A folder or a name token is a group key: one row per group, each group several images.
      if (key.keyedBy !== 'file' && distinct < rows.length * 0.9) continue;
      let matches = 0;
      let matchedImages = 0;
      for (const row of rows) {
        const match = key.match(row[column]);
        if (match.kind === 'one') matches++;
        else if (match.kind === 'ambiguous') matches += 0.5;
        if (match.kind === 'one') matchedImages += match.paths.length;
      }
      if (key.keyedBy !== 'file' && matchedImages < matches * 2) continue;
      // Keys are tried file first: a file match beats a group match of the same column.
      if (matches > 0 && (!best || matches > best.matches)) best = { column, matches, key };
    }
  }
  if (!best || best.matches < Math.max(1, rows.length * 0.2)) return undefined;
  const { column: fileColumn, key } = best;
  const { keyedBy } = key;
  // No header: the first line is already an image and its label.
  if (key.match(header[fileColumn]).kind !== 'none') {
    rows = [header, ...rows];
    header = header.map((_, c) => `column ${c + 1}`);
  }

  const labelColumn = chooseLabelColumn(header, rows, fileColumn);
  if (labelColumn === undefined) return undefined;
  const nameColumn = header.findIndex(
    (_, c) =>
      c !== fileColumn &&
      c !== labelColumn &&
      rows.some((row) => /[a-z].*\.(bmp|png|jpe?g|tiff?|webp)$/i.test(row[c] ?? '')),
  );
  const groupColumns = header
    .map((name, c) => ({ name, c }))
    .filter(({ name, c }) => c !== fileColumn && c !== labelColumn && GROUP_COLUMN_NAME.test(name))
    .filter(({ c }) => {
      const values = new Set(rows.map((row) => row[c] ?? '').filter(Boolean));
      return values.size >= 2 && values.size <= MAX_LABEL_VALUES;
    });

  const result: CsvLabelTable = {
    file,
    fileColumn: header[fileColumn],
    labelColumn: header[labelColumn],
    keyedBy,
    ...(key.keyedBy === 'name-token' ? { keyTokenIndex: key.tokenIndex } : {}),
    labelByPath: new Map(),
    groupKeyByPath: new Map(),
    originalNameByPath: new Map(),
    groupColumns: groupColumns.map(({ name }) => ({ column: name, valueByPath: new Map() })),
    rows: rows.length,
    unmatchedRows: 0,
    unmatchedExamples: [],
    ambiguousRows: [],
    ambiguousCount: 0,
    conflictingPaths: [],
  };
  rows.forEach((row, r) => {
    const value = row[fileColumn];
    const match = key.match(value);
    if (match.kind === 'none') {
      result.unmatchedRows++;
      if (result.unmatchedExamples.length < MAX_ROW_EXAMPLES && value) result.unmatchedExamples.push(value);
      return;
    }
    if (match.kind === 'ambiguous') {
      result.ambiguousCount++;
      if (result.ambiguousRows.length < MAX_ROW_EXAMPLES)
        result.ambiguousRows.push({ row: r + 1, value, candidates: match.paths.slice(0, 5) });
      return;
    }
    const label = row[labelColumn] ?? '';
    if (label === '') return;
    for (const path of match.paths) {
      const previous = result.labelByPath.get(path);
      if (previous !== undefined) {
        if (previous !== label && result.conflictingPaths.length < MAX_ROW_EXAMPLES) result.conflictingPaths.push(path);
        continue;
      }
      result.labelByPath.set(path, label);
      if (keyedBy !== 'file') result.groupKeyByPath.set(path, value);
      if (nameColumn >= 0 && row[nameColumn]) result.originalNameByPath.set(path, row[nameColumn]);
      groupColumns.forEach(({ c }, g) => {
        if (row[c]) result.groupColumns[g].valueByPath.set(path, row[c]);
      });
    }
  });
  return result;
}

function chooseLabelColumn(header: string[], rows: string[][], fileColumn: number): number | undefined {
  const candidates: { column: number; score: number }[] = [];
  for (let column = 0; column < header.length; column++) {
    if (column === fileColumn) continue;
    const values = new Set(rows.map((row) => row[column] ?? ''));
    values.delete('');
    const named = LABEL_COLUMN_NAME.test(header[column]) ? 2 : NOT_LABEL_COLUMN_NAME.test(header[column]) ? -2 : 0;
    // One value is enough under a label-like name: a per-patient table beside one patient's images.
    if (
      values.size < (named > 0 ? 1 : 2) ||
      values.size > MAX_LABEL_VALUES ||
      values.size > Math.max(2, rows.length / 2)
    )
      continue;
    // Paths and file names are keys, never classes.
    if ([...values].some((v) => IMAGE_EXTENSION.test(v) || v.includes('/'))) continue;
    candidates.push({ column, score: named + 1 / values.size });
  }
  candidates.sort((a, b) => b.score - a.score || a.column - b.column);
  return candidates[0]?.column;
}

/** Normalises a path as a table author might write it: `.\P07\Smear2\IMG3.TIF` → `p07/smear2/img3.tif`. */
function normalisedSegments(value: string): string[] {
  return value
    .trim()
    .replace(/\\/g, '/')
    .toLowerCase()
    .split('/')
    .filter((s) => s !== '' && s !== '.');
}

/**
 * Indexes every image by every suffix of its path (`img3.tif`, `smear2/img3.tif`, `p07/smear2/img3.tif`), each
 * with and without the extension. A value is looked up by its own suffixes, longest first: the longest suffix
 * it shares with any image decides, and if that suffix fits two images the row is ambiguous. Absolute paths
 * from another machine match by the part that is inside the dataset. Images under the table's folder are
 * tried first, then the whole dataset.
 */
function imageMatcher(images: ImageEntry[], tableFolder: string) {
  const local = tableFolder === '' ? [] : images.filter((img) => img.path.startsWith(tableFolder + '/'));
  const indexes = [local, images].filter((list) => list.length > 0).map(suffixIndex);
  const folderIndex = folderNameIndex(images);

  const file = (value: string | undefined): Match => {
    if (!value) return { kind: 'none' };
    const segments = normalisedSegments(value);
    if (segments.length === 0) return { kind: 'none' };
    const last = segments[segments.length - 1];
    const stemmed = [...segments.slice(0, -1), IMAGE_EXTENSION.test(last) ? fileStem(last) : last];
    for (let k = segments.length; k >= 1; k--) {
      for (const index of indexes) {
        const hit = index.get(segments.slice(-k).join('/')) ?? index.get('\0' + stemmed.slice(-k).join('/'));
        if (hit === undefined) continue;
        if (hit.length === 1) return { kind: 'one', paths: hit };
        // `images/x.png` and `masks/x.png`: the row labels the cell image, not its mask.
        const cells = hit.filter((p) => !pathParts(p).folders.some((f) => NOT_CELL_IMAGES.test(f)));
        return cells.length === 1 ? { kind: 'one', paths: cells } : { kind: 'ambiguous', paths: hit };
      }
    }
    return { kind: 'none' };
  };
  const folder = (value: string | undefined): Match => {
    if (!value) return { kind: 'none' };
    const segments = normalisedSegments(value);
    for (let k = segments.length; k >= 1; k--) {
      const hit = folderIndex.get(segments.slice(-k).join('/'));
      if (!hit) continue;
      const folders = [...hit.keys()];
      return folders.length === 1
        ? { kind: 'one', paths: hit.get(folders[0])! }
        : { kind: 'ambiguous', paths: folders.map((f) => f + '/') };
    }
    return { kind: 'none' };
  };
  const tokenIndex = nameTokenIndex(images);
  const keys: Key[] = [
    { keyedBy: 'file', match: file },
    { keyedBy: 'folder', match: folder },
    ...NAME_TOKEN_POSITIONS.map((position) => ({
      keyedBy: 'name-token' as const,
      tokenIndex: position,
      match: (value: string | undefined): Match => {
        const hit = value ? tokenIndex.get(`${position}\0${value.trim().toLowerCase()}`) : undefined;
        return hit ? { kind: 'one', paths: hit } : { kind: 'none' };
      },
    })),
  ];
  return { keys };
}

type Key =
  | { keyedBy: 'file' | 'folder'; match: (value: string | undefined) => Match }
  | { keyedBy: 'name-token'; tokenIndex: number; match: (value: string | undefined) => Match };

const NAME_TOKEN_POSITIONS = [0, 1, 2];

/** `${position}\0${token}` → images whose file name has that token there (`P07_003.png`: 0 → p07). */
function nameTokenIndex(images: ImageEntry[]): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const img of images) {
    const tokens = fileNameTokens(pathParts(img.path).fileName);
    // A one-token name is the whole stem: that is the file key's business.
    if (tokens.length < 2) continue;
    for (const position of NAME_TOKEN_POSITIONS) {
      const token = tokens[position];
      if (token === undefined) continue;
      const key = `${position}\0${token.toLowerCase()}`;
      const list = index.get(key);
      if (list) list.push(img.path);
      else index.set(key, [img.path]);
    }
  }
  return index;
}

/** Suffix → images; stem keys are prefixed with NUL so `a/b` (a folder-less stem) never equals a full name. */
function suffixIndex(images: ImageEntry[]): Map<string, string[]> {
  const index = new Map<string, string[]>();
  const add = (key: string, path: string) => {
    const list = index.get(key);
    if (!list) index.set(key, [path]);
    else if (!list.includes(path)) list.push(path);
  };
  for (const img of images) {
    const segments = img.path.toLowerCase().split('/');
    const stemmed = [...segments.slice(0, -1), fileStem(segments[segments.length - 1])];
    for (let k = 1; k <= segments.length; k++) {
      add(segments.slice(-k).join('/'), img.path);
      add('\0' + stemmed.slice(-k).join('/'), img.path);
    }
  }
  return index;
}

/**
 * Every suffix of every folder path (`p07`, `cohort1/p07`, lower-cased) → the folders it names → their images.
 * `smear1` under two patients names two folders: ambiguous.
 */
function folderNameIndex(images: ImageEntry[]): Map<string, Map<string, string[]>> {
  const index = new Map<string, Map<string, string[]>>();
  for (const img of images) {
    const { folders } = pathParts(img.path);
    for (let depth = 1; depth <= folders.length; depth++) {
      const folder = folders.slice(0, depth).join('/');
      const lower = folder.toLowerCase().split('/');
      for (let k = 1; k <= depth; k++) {
        const key = lower.slice(-k).join('/');
        let byFolder = index.get(key);
        if (!byFolder) index.set(key, (byFolder = new Map()));
        let paths = byFolder.get(folder);
        if (!paths) byFolder.set(folder, (paths = []));
        paths.push(img.path);
      }
    }
  }
  return index;
}
