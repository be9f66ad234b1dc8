/**
 * Any JSON value as nested tables: the audit's `evidence` and the run's settings have open-ended shapes
 * (counts, contingency tables, test statistics), so they are laid out generically rather than per finding.
 */
import { h } from './dom.js';
import { number } from './format.js';

const MAX_LIST_ITEMS = 40;
const MAX_DEPTH = 6;

type Plain = Record<string, unknown>;

export function valueView(value: unknown, depth = 0): Node {
  if (value === null || value === undefined) return h('span', { class: 'dim' }, 'none');
  if (typeof value === 'number') return document.createTextNode(number(value));
  if (typeof value === 'boolean') return document.createTextNode(value ? 'yes' : 'no');
  if (typeof value === 'string') return document.createTextNode(value);
  if (depth >= MAX_DEPTH) return h('code', {}, JSON.stringify(value));
  if (Array.isArray(value)) return arrayView(value, depth);
  if (isPlain(value)) return isContingency(value) ? contingencyView(value) : objectView(value, depth);
  return document.createTextNode(String(value));
}

export function objectView(value: Plain, depth = 0): HTMLElement {
  const rows = Object.entries(value).map(([key, v]) =>
    h('tr', {}, h('th', { scope: 'row' }, key), h('td', {}, valueView(v, depth + 1))),
  );
  return rows.length === 0
    ? h('span', { class: 'dim' }, 'empty')
    : h('table', { class: 'kv' }, h('tbody', {}, ...rows));
}

function arrayView(items: unknown[], depth: number): Node {
  if (items.length === 0) return h('span', { class: 'dim' }, 'none');
  if (items.every(isPrimitive)) {
    const shown = items
      .slice(0, MAX_LIST_ITEMS)
      .map((item) => (typeof item === 'number' ? number(item) : String(item)));
    const rest = items.length - shown.length;
    return document.createTextNode(shown.join(', ') + (rest > 0 ? ` … and ${rest} more` : ''));
  }
  if (items.every((row) => Array.isArray(row) && row.every(isPrimitive))) {
    return matrixTable(null, null, items as unknown[][]);
  }
  if (items.every(isPlain)) {
    const columns = [...new Set((items as Plain[]).flatMap((item) => Object.keys(item)))];
    const shown = (items as Plain[]).slice(0, MAX_LIST_ITEMS);
    // A column of numbers is right-aligned, heading included, like every other table of counts.
    const numeric = new Set(columns.filter((c) => shown.every((item) => typeof item[c] === 'number')));
    const align = (c: string) => (numeric.has(c) ? 'num' : null);
    const table = h(
      'table',
      { class: 'grid' },
      h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col', class: align(c) }, c)))),
      h(
        'tbody',
        {},
        ...shown.map((item) =>
          h('tr', {}, ...columns.map((c) => h('td', { class: align(c) }, valueView(item[c], depth + 1)))),
        ),
      ),
    );
    const rest = items.length - shown.length;
    return rest > 0 ? h('div', {}, table, h('p', { class: 'dim' }, `… and ${rest} more`)) : table;
  }
  return h(
    'ol',
    { class: 'values' },
    ...items.slice(0, MAX_LIST_ITEMS).map((item) => h('li', {}, valueView(item, depth + 1))),
  );
}

/** The audit's contingency tables: `{ rows, columns, counts }`, drawn as the matrix they are. */
function isContingency(value: Plain): value is { rows: unknown[]; columns: unknown[]; counts: unknown[][] } {
  const { rows, columns, counts } = value;
  return (
    Array.isArray(rows) &&
    Array.isArray(columns) &&
    Array.isArray(counts) &&
    counts.length === rows.length &&
    counts.every((row) => Array.isArray(row) && row.length === columns.length)
  );
}

function contingencyView(value: { rows: unknown[]; columns: unknown[]; counts: unknown[][] }): HTMLElement {
  return matrixTable(value.rows.map(String), value.columns.map(String), value.counts);
}

function matrixTable(rowNames: string[] | null, columnNames: string[] | null, cells: unknown[][]): HTMLElement {
  const head = columnNames
    ? h(
        'thead',
        {},
        h(
          'tr',
          {},
          rowNames ? h('td', {}) : null,
          ...columnNames.map((c) => h('th', { scope: 'col', class: 'num' }, c)),
        ),
      )
    : null;
  const body = h(
    'tbody',
    {},
    ...cells.map((row, r) =>
      h(
        'tr',
        {},
        rowNames ? h('th', { scope: 'row' }, rowNames[r]) : null,
        ...row.map((cell) => h('td', { class: 'num' }, valueView(cell, MAX_DEPTH - 1))),
      ),
    ),
  );
  return h('table', { class: 'grid' }, head, body);
}

function isPrimitive(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
