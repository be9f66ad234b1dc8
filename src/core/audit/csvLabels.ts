/**
 * Label tables shipped beside the images (C-NMC's `C-NMC_test_prelim_phase_data_labels.csv` has
 * `Patient_ID,new_names,labels`). The file-name column and the label column are detected from the content,
 * not from their names, so other datasets' tables work too.
 */
import { fileStem, pathParts } from '../datasetSpec.js';
import type { ImageEntry } from '../types.js';

export interface DelimitedTable {
  delimiter: string;
  header: string[];
  rows: string[][];
}

/** RFC 4180 CSV (quotes, doubled quotes, CRLF) with the delimiter guessed from the header line. */
export function parseDelimited(text: string): DelimitedTable {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const firstLine = body.slice(0, body.search(/\r?\n|$/));
  const delimiter = [',', '\t', ';', '|']
    .map((d) => ({ d, n: firstLine.split(d).length }))
    .sort((a, b) => b.n - a.n)[0].d;
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
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === delimiter) {
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
  const nonEmpty = records.filter((r) => r.some((f) => f.trim() !== ''));
  const [header = [], ...rows] = nonEmpty;
  return { delimiter, header: header.map((h) => h.trim()), rows: rows.map((r) => r.map((f) => f.trim())) };
}

export interface CsvLabelTable {
  /** Path of the table relative to the dataset root. */
  file: string;
  fileColumn: string;
  labelColumn: string;
  /** Raw label value per matched image path. */
  labelByPath: Map<string, string>;
  /** Other name-like columns per matched image (C-NMC's Patient_ID holds the original file name). */
  originalNameByPath: Map<string, string>;
  rows: number;
  /** Rows whose file name matched no image. */
  unmatchedRows: number;
}

const LABEL_COLUMN_NAME = /label|class|diagnos|target|category|outcome|cancer|type|^y$/i;
const MAX_LABEL_VALUES = 50;

/**
 * Matches a table's rows to images by file name (with or without extension), preferring images under the
 * table's own folder: C-NMC's validation and test folders both contain `1.bmp`.
 */
export function detectCsvLabels(file: string, table: DelimitedTable, images: ImageEntry[]): CsvLabelTable | undefined {
  const { header, rows } = table;
  if (header.length < 2 || rows.length === 0) return undefined;
  const tableFolder = pathParts(file).folders.join('/');
  const local = images.filter((img) => tableFolder === '' || img.path.startsWith(tableFolder + '/'));
  const index = indexByName(local.length > 0 ? local : images);

  let best: { column: number; matches: number } | undefined;
  for (let column = 0; column < header.length; column++) {
    let matches = 0;
    for (const row of rows) if (lookup(index, row[column])) matches++;
    if (matches > 0 && (!best || matches > best.matches)) best = { column, matches };
  }
  if (!best || best.matches < Math.max(1, rows.length * 0.2)) return undefined;
  const fileColumn = best.column;

  const labelColumn = chooseLabelColumn(header, rows, fileColumn);
  if (labelColumn === undefined) return undefined;
  const nameColumn = header.findIndex(
    (_, c) =>
      c !== fileColumn &&
      c !== labelColumn &&
      rows.some((row) => /[a-z].*\.(bmp|png|jpe?g|tiff?|webp)$/i.test(row[c] ?? '')),
  );

  const labelByPath = new Map<string, string>();
  const originalNameByPath = new Map<string, string>();
  let unmatchedRows = 0;
  for (const row of rows) {
    const path = lookup(index, row[fileColumn]);
    if (!path) {
      unmatchedRows++;
      continue;
    }
    labelByPath.set(path, row[labelColumn] ?? '');
    if (nameColumn >= 0 && row[nameColumn]) originalNameByPath.set(path, row[nameColumn]);
  }
  return {
    file,
    fileColumn: header[fileColumn],
    labelColumn: header[labelColumn],
    labelByPath,
    originalNameByPath,
    rows: rows.length,
    unmatchedRows,
  };
}

function chooseLabelColumn(header: string[], rows: string[][], fileColumn: number): number | undefined {
  const candidates: { column: number; score: number }[] = [];
  for (let column = 0; column < header.length; column++) {
    if (column === fileColumn) continue;
    const values = new Set(rows.map((row) => row[column] ?? ''));
    values.delete('');
    if (values.size < 2 || values.size > MAX_LABEL_VALUES || values.size > rows.length / 2) continue;
    const named = LABEL_COLUMN_NAME.test(header[column]) ? 2 : 0;
    candidates.push({ column, score: named + 1 / values.size });
  }
  candidates.sort((a, b) => b.score - a.score);
  return candidates[0]?.column;
}

type NameIndex = Map<string, string | null>;

/** Keys: lower-cased file name and stem; a name shared by two images maps to null (ambiguous). */
function indexByName(images: ImageEntry[]): NameIndex {
  const index: NameIndex = new Map();
  const add = (key: string, path: string) => index.set(key, index.has(key) && index.get(key) !== path ? null : path);
  for (const img of images) {
    const name = pathParts(img.path).fileName.toLowerCase();
    add(name, img.path);
    add(fileStem(name), img.path);
  }
  return index;
}

function lookup(index: NameIndex, value: string | undefined): string | undefined {
  if (!value) return undefined;
  const name = value.replace(/\\/g, '/').split('/').pop()!.toLowerCase();
  return index.get(name) ?? index.get(fileStem(name)) ?? undefined;
}
