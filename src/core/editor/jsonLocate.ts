/**
 * A JSON reader that keeps offsets, so diagnostics and quick fixes can point at a property of
 * `leukemia-audit.json`. Tolerates comments and trailing commas (people write them); on a syntax error it
 * returns what it read so far, and the editor's JSON support reports the error itself.
 */

export interface JsonProperty {
  key: string;
  keyStart: number;
  keyEnd: number;
  valueStart: number;
  valueEnd: number;
  value: unknown;
}

export interface JsonObjectOutline {
  /** Offsets of `{` and `}` of the top-level object. */
  start: number;
  end: number;
  properties: JsonProperty[];
  /** The whole document parsed without error. */
  complete: boolean;
}

class JsonSyntaxError extends Error {}

export function outlineJsonObject(text: string): JsonObjectOutline | undefined {
  const reader = new Reader(text);
  reader.skip();
  if (text[reader.pos] !== '{') return undefined;
  const start = reader.pos;
  const properties: JsonProperty[] = [];
  try {
    reader.pos++;
    for (;;) {
      reader.skip();
      if (text[reader.pos] === '}') break;
      const keyStart = reader.pos;
      const key = reader.string();
      const keyEnd = reader.pos;
      reader.skip();
      reader.expect(':');
      reader.skip();
      const valueStart = reader.pos;
      const value = reader.value();
      properties.push({ key, keyStart, keyEnd, valueStart, valueEnd: reader.pos, value });
      reader.skip();
      if (text[reader.pos] === ',') reader.pos++;
      else if (text[reader.pos] !== '}') throw new JsonSyntaxError('expected , or }');
    }
    return { start, end: reader.pos, properties, complete: true };
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    return { start, end: text.length, properties, complete: false };
  }
}

class Reader {
  pos = 0;

  constructor(private readonly text: string) {}

  skip(): void {
    const t = this.text;
    for (;;) {
      while (this.pos < t.length && /\s/.test(t[this.pos])) this.pos++;
      if (t.startsWith('//', this.pos)) {
        const end = t.indexOf('\n', this.pos);
        this.pos = end < 0 ? t.length : end;
      } else if (t.startsWith('/*', this.pos)) {
        const end = t.indexOf('*/', this.pos + 2);
        this.pos = end < 0 ? t.length : end + 2;
      } else {
        return;
      }
    }
  }

  expect(c: string): void {
    if (this.text[this.pos] !== c) throw new JsonSyntaxError(`expected ${c}`);
    this.pos++;
  }

  string(): string {
    const t = this.text;
    if (t[this.pos] !== '"') throw new JsonSyntaxError('expected a string');
    const start = this.pos;
    this.pos++;
    while (this.pos < t.length && t[this.pos] !== '"') {
      if (t[this.pos] === '\\') this.pos++;
      if (t[this.pos] === '\n') throw new JsonSyntaxError('unterminated string');
      this.pos++;
    }
    if (this.pos >= t.length) throw new JsonSyntaxError('unterminated string');
    this.pos++;
    try {
      return JSON.parse(t.slice(start, this.pos)) as string;
    } catch {
      throw new JsonSyntaxError('invalid string');
    }
  }

  value(): unknown {
    const t = this.text;
    const c = t[this.pos];
    if (c === '"') return this.string();
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      const result: unknown[] | Record<string, unknown> = c === '{' ? {} : [];
      this.pos++;
      for (;;) {
        this.skip();
        if (t[this.pos] === close) {
          this.pos++;
          return result;
        }
        if (Array.isArray(result)) {
          result.push(this.value());
        } else {
          const key = this.string();
          this.skip();
          this.expect(':');
          this.skip();
          result[key] = this.value();
        }
        this.skip();
        if (t[this.pos] === ',') this.pos++;
        else if (t[this.pos] !== close) throw new JsonSyntaxError(`expected , or ${close}`);
      }
    }
    const literal = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(t.slice(this.pos, this.pos + 64));
    if (!literal) throw new JsonSyntaxError('unexpected character');
    this.pos += literal[0].length;
    return JSON.parse(literal[0]);
  }
}
