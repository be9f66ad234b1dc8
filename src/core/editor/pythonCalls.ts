/**
 * Finds the calls that turn a folder tree into class labels — torchvision's `ImageFolder`/`DatasetFolder`,
 * Keras' `image_dataset_from_directory`/`flow_from_directory` — and works out the folder they are given when
 * the code says it plainly: a string literal, a variable assigned one earlier in the file (or in an earlier
 * notebook cell), `os.path.join`, `Path(...) / '...'` and `+` over those. Anything computed at run time is
 * left alone: a guess would put a warning on correct code.
 */
import { isString, tokenize, type StringToken, type Token } from './pythonTokens.js';

/** One Python file is one cell; a notebook passes its code cells in order, so later cells see earlier assignments. */
export interface SourceCell {
  id: string;
  text: string;
}

export type DatasetFunction = 'ImageFolder' | 'DatasetFolder' | 'image_dataset_from_directory' | 'flow_from_directory';
export type Framework = 'torch' | 'keras';

const FUNCTIONS: Record<DatasetFunction, { framework: Framework; keyword: string }> = {
  ImageFolder: { framework: 'torch', keyword: 'root' },
  DatasetFolder: { framework: 'torch', keyword: 'root' },
  image_dataset_from_directory: { framework: 'keras', keyword: 'directory' },
  flow_from_directory: { framework: 'keras', keyword: 'directory' },
};

export interface SourceRange {
  cell: string;
  start: number;
  end: number;
}

/** A string literal a quick fix may rewrite. */
export interface PathLiteral extends SourceRange {
  contentStart: number;
  contentEnd: number;
  quote: string;
  raw: boolean;
  value: string;
}

export interface PathValue {
  value: string;
  /** Set when the whole value is one literal, reached directly or through variables: the text a fix can rewrite. */
  literal?: PathLiteral;
  /** Variables followed to reach the value, outermost first. */
  via: string[];
}

export interface DatasetCall {
  function: DatasetFunction;
  framework: Framework;
  /** The dotted callee, e.g. `datasets.ImageFolder`. */
  callee: SourceRange;
  /** From the callee to the closing parenthesis. */
  call: SourceRange;
  /** The path argument's expression (without a `root=` keyword), when there is one. */
  argument?: SourceRange;
  /** Offset of the closing parenthesis, and whether the argument list ends in a comma (for appending a keyword). */
  closeParen: number;
  endsWithComma: boolean;
  hasArguments: boolean;
  /** Offset of the start of the line where the call's statement begins, and that line's indentation. */
  statementLineStart: number;
  indentation: string;
  path?: PathValue;
}

interface Assignment {
  cellIndex: number;
  offset: number;
  name: string;
  tokens: Token[];
}

interface Cell {
  id: string;
  text: string;
  tokens: Token[];
}

const MAX_VARIABLE_CHAIN = 16;

export function findDatasetCalls(cells: SourceCell[]): DatasetCall[] {
  const parsed: Cell[] = cells.map((c) => ({ id: c.id, text: c.text, tokens: tokenize(c.text) }));
  const assignments = parsed.flatMap((cell, cellIndex) => findAssignments(cell.tokens, cellIndex));
  const calls: DatasetCall[] = [];
  parsed.forEach((cell, cellIndex) => {
    const { tokens } = cell;
    for (let i = 0; i < tokens.length - 1; i++) {
      const token = tokens[i];
      if (token.kind !== 'name' || !(token.text in FUNCTIONS) || tokens[i + 1].text !== '(') continue;
      const before = tokens[i - 1];
      if (before?.kind === 'name' && (before.text === 'def' || before.text === 'class')) continue;
      let first = i;
      while (first >= 2 && tokens[first - 1].text === '.' && tokens[first - 2].kind === 'name') first -= 2;
      const close = matchingClose(tokens, i + 1);
      if (close === undefined) continue;
      const fn = token.text as DatasetFunction;
      const args = splitArguments(tokens, i + 1, close);
      const pathArg =
        args.find((a) => a.keyword === FUNCTIONS[fn].keyword) ??
        args.find((a) => a.keyword === undefined && !a.starred);
      const evaluator = new Evaluator(parsed, assignments);
      const statementStart = statementStartToken(tokens, first);
      const lineStart = cell.text.lastIndexOf('\n', tokens[statementStart].start - 1) + 1;
      calls.push({
        function: fn,
        framework: FUNCTIONS[fn].framework,
        callee: { cell: cell.id, start: tokens[first].start, end: token.end },
        call: { cell: cell.id, start: tokens[first].start, end: tokens[close].end },
        argument:
          pathArg && pathArg.tokens.length > 0
            ? { cell: cell.id, start: pathArg.tokens[0].start, end: pathArg.tokens[pathArg.tokens.length - 1].end }
            : undefined,
        closeParen: tokens[close].start,
        endsWithComma: tokens[close - 1]?.text === ',' && close - 1 > i + 1,
        hasArguments: close > i + 2,
        statementLineStart: lineStart,
        indentation: /^[ \t]*/.exec(cell.text.slice(lineStart))![0],
        path: pathArg ? evaluator.evaluate(pathArg.tokens, cellIndex, token.start) : undefined,
      });
    }
  });
  return calls;
}

function matchingClose(tokens: Token[], open: number): number | undefined {
  const depth = tokens[open].depth;
  for (let j = open + 1; j < tokens.length; j++) {
    if (tokens[j].depth === depth && (tokens[j].text === ')' || tokens[j].text === ']' || tokens[j].text === '}'))
      return j;
  }
  return undefined;
}

interface Argument {
  keyword?: string;
  starred: boolean;
  tokens: Token[];
}

function splitArguments(tokens: Token[], open: number, close: number): Argument[] {
  const inner = tokens[open].depth + 1;
  const args: Argument[] = [];
  let current: Token[] = [];
  const flush = () => {
    if (current.length === 0) return;
    const keyword =
      current.length > 2 && current[0].kind === 'name' && current[1].text === '=' ? current[0].text : undefined;
    args.push({
      keyword,
      starred: current[0].text === '*' || current[0].text === '**',
      tokens: keyword ? current.slice(2) : current,
    });
    current = [];
  };
  for (let j = open + 1; j < close; j++) {
    if (tokens[j].depth === inner && tokens[j].text === ',') flush();
    else current.push(tokens[j]);
  }
  flush();
  return args;
}

/** The first token of the statement holding token `index`: after the previous top-level newline or `;`. */
function statementStartToken(tokens: Token[], index: number): number {
  let j = index;
  while (j > 0 && !(tokens[j - 1].depth === 0 && (tokens[j - 1].kind === 'newline' || tokens[j - 1].text === ';'))) j--;
  return j;
}

/** `name = expr` and `name: type = expr` at the start of a statement. */
function findAssignments(tokens: Token[], cellIndex: number): Assignment[] {
  const found: Assignment[] = [];
  let start = 0;
  for (let j = 0; j <= tokens.length; j++) {
    const end =
      j === tokens.length || (tokens[j].depth === 0 && (tokens[j].kind === 'newline' || tokens[j].text === ';'));
    if (!end) continue;
    const statement = tokens.slice(start, j);
    start = j + 1;
    if (statement.length < 3 || statement[0].kind !== 'name') continue;
    let eq = 1;
    if (statement[1].text === ':') {
      eq = statement.findIndex((t, k) => k > 1 && t.text === '=' && t.depth === statement[0].depth);
      if (eq < 0) continue;
    }
    if (statement[eq].text !== '=') continue;
    // Chained `a = b = '...'` assigns both; the value is the last part.
    const rest = statement.slice(eq + 1);
    const lastEq = rest.map((t) => t.text === '=' && t.depth === statement[0].depth).lastIndexOf(true);
    found.push({ cellIndex, offset: statement[0].start, name: statement[0].text, tokens: rest.slice(lastEq + 1) });
  }
  return found;
}

const PASS_THROUGH_FUNCTIONS = new Set([
  'str',
  'fspath',
  'abspath',
  'normpath',
  'realpath',
  'expanduser',
  'Path',
  'PurePath',
  'PosixPath',
  'WindowsPath',
  'PurePosixPath',
  'PureWindowsPath',
]);
const PASS_THROUGH_METHODS = new Set(['resolve', 'absolute', 'expanduser', 'as_posix', 'rstrip']);

class Evaluator {
  private chain = 0;

  constructor(
    private readonly cells: Cell[],
    private readonly assignments: Assignment[],
  ) {}

  evaluate(tokens: Token[], cellIndex: number, offset: number): PathValue | undefined {
    const parser = { tokens, pos: 0 };
    const value = this.sum(parser, cellIndex, offset);
    return value && parser.pos === tokens.length ? value : undefined;
  }

  private sum(p: { tokens: Token[]; pos: number }, cellIndex: number, offset: number): PathValue | undefined {
    let left = this.postfix(p, cellIndex, offset);
    while (left && (p.tokens[p.pos]?.text === '/' || p.tokens[p.pos]?.text === '+')) {
      const op = p.tokens[p.pos++].text;
      const right = this.postfix(p, cellIndex, offset);
      if (!right) return undefined;
      left = {
        value: op === '/' ? joinPath(left.value, right.value) : left.value + right.value,
        via: [...left.via, ...right.via],
      };
    }
    return left;
  }

  private postfix(p: { tokens: Token[]; pos: number }, cellIndex: number, offset: number): PathValue | undefined {
    let value = this.atom(p, cellIndex, offset);
    while (
      value &&
      p.tokens[p.pos]?.text === '.' &&
      p.tokens[p.pos + 1]?.kind === 'name' &&
      p.tokens[p.pos + 2]?.text === '('
    ) {
      const method = p.tokens[p.pos + 1].text;
      const args = this.callArguments(p, p.pos + 2, cellIndex, offset);
      if (!args) return undefined;
      if (method === 'joinpath' && args.length > 0)
        value = { value: args.reduce((a, b) => joinPath(a, b.value), value.value), via: value.via };
      else if (!PASS_THROUGH_METHODS.has(method) || (method !== 'rstrip' && args.length > 0)) return undefined;
    }
    return value;
  }

  private atom(p: { tokens: Token[]; pos: number }, cellIndex: number, offset: number): PathValue | undefined {
    const token = p.tokens[p.pos];
    if (!token) return undefined;
    if (isString(token)) return this.strings(p, cellIndex, offset);
    if (token.text === '(') {
      p.pos++;
      const inner = this.sum(p, cellIndex, offset);
      if (p.tokens[p.pos]?.text !== ')') return undefined;
      p.pos++;
      return inner;
    }
    if (token.kind !== 'name') return undefined;
    const names = [token.text];
    let j = p.pos + 1;
    while (p.tokens[j]?.text === '.' && p.tokens[j + 1]?.kind === 'name' && p.tokens[j + 2]?.text !== '(') {
      names.push(p.tokens[j + 1].text);
      j += 2;
    }
    // `os.path.join(` and `pathlib.Path(` are functions; `x.joinpath(` and `x.resolve(` are methods on a value.
    const method =
      p.tokens[j]?.text === '.' && p.tokens[j + 1]?.kind === 'name' && p.tokens[j + 2]?.text === '('
        ? p.tokens[j + 1].text
        : undefined;
    if (method !== undefined && method !== 'joinpath' && !PASS_THROUGH_METHODS.has(method)) {
      names.push(method);
      j += 2;
    }
    const fn = names[names.length - 1];
    if (p.tokens[j]?.text === '(') {
      const args = this.callArguments(p, j, cellIndex, offset);
      if (!args || args.length === 0) return undefined;
      if (fn === 'join' && (names.length === 1 || names[names.length - 2] === 'path')) {
        return {
          value: args.slice(1).reduce((a, b) => joinPath(a, b.value), args[0].value),
          via: args.flatMap((a) => a.via),
          literal: args.length === 1 ? args[0].literal : undefined,
        };
      }
      if (PASS_THROUGH_FUNCTIONS.has(fn) && (args.length === 1 || fn.includes('Path'))) {
        if (args.length === 1) return args[0];
        return {
          value: args.slice(1).reduce((a, b) => joinPath(a, b.value), args[0].value),
          via: args.flatMap((a) => a.via),
        };
      }
      return undefined;
    }
    if (names.length !== 1) return undefined;
    p.pos = j;
    return this.variable(token.text, cellIndex, offset);
  }

  /** Adjacent literals concatenate; f-strings interpolate plain `{name}` fields only. */
  private strings(p: { tokens: Token[]; pos: number }, cellIndex: number, offset: number): PathValue | undefined {
    const parts: StringToken[] = [];
    while (isString(p.tokens[p.pos])) parts.push(p.tokens[p.pos++] as StringToken);
    let value = '';
    const via: string[] = [];
    for (const part of parts) {
      if (part.bytes) return undefined;
      if (!part.formatted) {
        value += part.value;
        continue;
      }
      const interpolated = this.interpolate(part.value, cellIndex, offset);
      if (interpolated === undefined) return undefined;
      value += interpolated.value;
      via.push(...interpolated.via);
    }
    const only = parts.length === 1 && (!parts[0].formatted || !parts[0].value.includes('{')) ? parts[0] : undefined;
    const cell = this.cells[cellIndex].id;
    const literal = only
      ? {
          cell,
          start: only.start,
          end: only.end,
          contentStart: only.contentStart,
          contentEnd: only.contentEnd,
          quote: only.quote,
          raw: only.raw,
          value: only.value,
        }
      : undefined;
    return { value, via, literal };
  }

  private interpolate(
    template: string,
    cellIndex: number,
    offset: number,
  ): { value: string; via: string[] } | undefined {
    let ok = true;
    const via: string[] = [];
    const value = template.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (match, field: string | undefined) => {
      if (match === '{{') return '{';
      if (match === '}}') return '}';
      const name = field?.trim() ?? '';
      const resolved = /^[A-Za-z_]\w*$/.test(name) ? this.variable(name, cellIndex, offset) : undefined;
      if (!resolved) {
        ok = false;
        return '';
      }
      via.push(...resolved.via);
      return resolved.value;
    });
    return ok ? { value, via } : undefined;
  }

  private callArguments(
    p: { tokens: Token[]; pos: number },
    open: number,
    cellIndex: number,
    offset: number,
  ): PathValue[] | undefined {
    const close = matchingClose(p.tokens, open);
    if (close === undefined) return undefined;
    const values: PathValue[] = [];
    for (const arg of splitArguments(p.tokens, open, close)) {
      if (arg.keyword !== undefined || arg.starred) return undefined;
      const value = this.evaluate(arg.tokens, cellIndex, offset);
      if (!value) return undefined;
      values.push(value);
    }
    p.pos = close + 1;
    return values;
  }

  /** The last assignment to `name` before (cellIndex, offset). */
  private variable(name: string, cellIndex: number, offset: number): PathValue | undefined {
    let found: Assignment | undefined;
    for (const a of this.assignments) {
      if (a.name !== name) continue;
      if (a.cellIndex < cellIndex || (a.cellIndex === cellIndex && a.offset < offset)) found = a;
    }
    if (!found || this.chain >= MAX_VARIABLE_CHAIN) return undefined;
    this.chain++;
    try {
      const value = this.evaluate(found.tokens, found.cellIndex, found.offset);
      return value ? { ...value, via: [name, ...value.via] } : undefined;
    } finally {
      this.chain--;
    }
  }
}

/** `os.path.join` / `Path.__truediv__`: an absolute right-hand side replaces the left. */
export function joinPath(left: string, right: string): string {
  if (left === '' || right.startsWith('/') || right.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(right)) return right;
  if (right === '') return left;
  return /[\\/]$/.test(left) ? left + right : `${left}/${right}`;
}
