/**
 * Just enough of Python's lexical grammar to find dataset calls reliably: strings (every prefix, triple
 * quotes, escapes), comments, names, numbers and operators, with offsets into the source. A regular
 * expression over raw text would match `ImageFolder(` inside a comment or a docstring.
 */

export type TokenKind = 'name' | 'string' | 'number' | 'op' | 'newline';

export interface Token {
  kind: TokenKind;
  start: number;
  end: number;
  text: string;
  /** Bracket nesting depth before this token. */
  depth: number;
}

/** A string literal's parts; `value` is the decoded content (escapes applied unless raw). */
export interface StringToken extends Token {
  kind: 'string';
  prefix: string;
  quote: string;
  contentStart: number;
  contentEnd: number;
  value: string;
  raw: boolean;
  /** f-strings interpolate; their content is only a path when it has no `{…}`. */
  formatted: boolean;
  bytes: boolean;
}

const STRING_START = /([rRbBuUfF]{0,2})('''|"""|'|")/y;
const NAME = /[A-Za-z_\u00C0-\uFFFF][\w\u00C0-\uFFFF]*/y;
const NUMBER = /(?:0[xXoObB][\da-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?[jJ]?)/y;
const OPERATORS = [
  '**=',
  '//=',
  '>>=',
  '<<=',
  '...',
  '->',
  ':=',
  '**',
  '//',
  '<<',
  '>>',
  '<=',
  '>=',
  '==',
  '!=',
  '+=',
  '-=',
  '*=',
  '/=',
  '%=',
  '&=',
  '|=',
  '^=',
  '@=',
];
const ESCAPES: Record<string, string> = {
  n: '\n',
  t: '\t',
  r: '\r',
  '\\': '\\',
  "'": "'",
  '"': '"',
  '0': '\0',
  a: '\x07',
  b: '\b',
  f: '\f',
  v: '\v',
  '\n': '',
};

export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  let i = 0;
  const push = (token: Omit<Token, 'depth'>) => tokens.push({ ...token, depth });
  while (i < source.length) {
    const c = source[i];
    if (c === '#') {
      while (i < source.length && source[i] !== '\n') i++;
      continue;
    }
    if (c === '\\' && source[i + 1] === '\n') {
      i += 2; // explicit line continuation
      continue;
    }
    if (c === '\n') {
      // Inside brackets a newline does not end the statement.
      if (depth === 0) push({ kind: 'newline', start: i, end: i + 1, text: '\n' });
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f') {
      i++;
      continue;
    }
    STRING_START.lastIndex = i;
    const stringStart = STRING_START.exec(source);
    if (stringStart) {
      const token = readString(source, i, stringStart[1], stringStart[2]);
      tokens.push({ ...token, depth });
      i = token.end;
      continue;
    }
    NAME.lastIndex = i;
    const name = NAME.exec(source);
    if (name) {
      push({ kind: 'name', start: i, end: i + name[0].length, text: name[0] });
      i += name[0].length;
      continue;
    }
    NUMBER.lastIndex = i;
    const number = /[\d.]/.test(c) ? NUMBER.exec(source) : null;
    if (number && number[0].length > 0 && number[0] !== '.') {
      push({ kind: 'number', start: i, end: i + number[0].length, text: number[0] });
      i += number[0].length;
      continue;
    }
    const op = OPERATORS.find((o) => source.startsWith(o, i)) ?? c;
    if (op === '(' || op === '[' || op === '{') {
      push({ kind: 'op', start: i, end: i + 1, text: op });
      depth++;
    } else if (op === ')' || op === ']' || op === '}') {
      depth = Math.max(0, depth - 1);
      push({ kind: 'op', start: i, end: i + 1, text: op });
    } else {
      push({ kind: 'op', start: i, end: i + op.length, text: op });
    }
    i += op.length;
  }
  return tokens;
}

function readString(source: string, start: number, prefix: string, quote: string): Omit<StringToken, 'depth'> {
  const lower = prefix.toLowerCase();
  const raw = lower.includes('r');
  const contentStart = start + prefix.length + quote.length;
  const triple = quote.length === 3;
  let i = contentStart;
  let value = '';
  let contentEnd = source.length;
  let end = source.length;
  while (i < source.length) {
    const c = source[i];
    if (source.startsWith(quote, i)) {
      contentEnd = i;
      end = i + quote.length;
      break;
    }
    if (!triple && c === '\n') {
      // An unterminated single-line string ends at the line end, as the tokenizer would report it.
      contentEnd = i;
      end = i;
      break;
    }
    if (c === '\\' && i + 1 < source.length) {
      const next = source[i + 1];
      if (raw) value += c + next;
      else value += ESCAPES[next] ?? c + next;
      i += 2;
      continue;
    }
    value += c;
    i++;
  }
  return {
    kind: 'string',
    start,
    end,
    text: source.slice(start, end),
    prefix,
    quote,
    contentStart,
    contentEnd,
    value,
    raw,
    formatted: lower.includes('f'),
    bytes: lower.includes('b'),
  };
}

export function isString(token: Token | undefined): token is StringToken {
  return token?.kind === 'string';
}

/**
 * Source text for new string content in the style (quote, rawness) of an existing literal; undefined when a
 * raw literal cannot hold the value (a trailing backslash or its own quote).
 */
export function encodeStringContent(value: string, like: Pick<StringToken, 'quote' | 'raw'>): string | undefined {
  if (like.raw) return value.endsWith('\\') || value.includes(like.quote[0]) ? undefined : value;
  let out = '';
  for (const c of value) {
    if (c === '\\') out += '\\\\';
    else if (c === '\n') out += '\\n';
    else if (c === like.quote[0]) out += '\\' + c;
    else out += c;
  }
  return out;
}
