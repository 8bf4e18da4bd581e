import { describeChar, END_OF_ROUTE, routeSyntaxError } from './syntax-error.js';

/**
 * A token of route text. `start`/`end` are 0-based offsets into the text (end exclusive); `text` is the raw slice.
 * Words include keywords, function names and (possibly dotted, possibly `$`-prefixed) field names: `value`, `a.b`, `$body.value`.
 */
export type Token =
  | { readonly kind: 'word'; readonly text: string; readonly start: number; readonly end: number }
  | { readonly kind: 'number'; readonly text: string; readonly value: number; readonly start: number; readonly end: number }
  | {
      readonly kind: 'string';
      readonly text: string;
      readonly value: string;
      /** 0-based source offset of each character of `value` (so errors inside a string point at the right column). */
      readonly offsets: readonly number[];
      readonly start: number;
      readonly end: number;
    }
  | { readonly kind: 'op'; readonly text: string; readonly start: number; readonly end: number }
  | { readonly kind: 'eof'; readonly text: ''; readonly start: number; readonly end: number };

/** A raw source path as it appears after FROM: a run of non-whitespace characters. */
export interface RawSource {
  readonly text: string;
  readonly start: number;
}

const TWO_CHAR_OPS: ReadonlySet<string> = new Set(['<=', '>=', '<>', '!=']);
const ONE_CHAR_OPS: ReadonlySet<string> = new Set(['=', '<', '>', '+', '-', '*', '/', '%', '(', ')', ',']);
const SIMPLE_ESCAPES: ReadonlyMap<string, string> = new Map([
  ['\\', '\\'],
  ["'", "'"],
  ['"', '"'],
  ['/', '/'],
  ['n', '\n'],
  ['r', '\r'],
  ['t', '\t'],
  ['0', '\0'],
]);

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v' || ch === '\u00a0';
}

function isWordStart(ch: string): boolean {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch === '_';
}

function isDigit(ch: string): boolean {
  return ch >= '0' && ch <= '9';
}

function isWordChar(ch: string): boolean {
  return isWordStart(ch) || isDigit(ch);
}

/**
 * On-demand tokenizer for route text.
 * Invariants: `pos` only moves forward and never passes the end of the text; tokens are produced in text order,
 * one per `next()` call, so the parser can switch to raw source scanning (`scanSource`) between two tokens;
 * every error is an OUTPOST_E_ROUTE_SYNTAX with the 1-based column of the offending character.
 */
export class Lexer {
  private pos = 0;

  constructor(private readonly text: string) {}

  /** 1-based column just past the last character: where "end of route" is reported. */
  get endColumn(): number {
    return this.text.length + 1;
  }

  /** Skips whitespace and returns the following run of non-whitespace characters, or null at the end of the text. */
  scanSource(): RawSource | null {
    this.skipSpace();
    const start = this.pos;
    while (this.pos < this.text.length && !isSpace(this.charAt(this.pos))) this.pos++;
    return start === this.pos ? null : { text: this.text.slice(start, this.pos), start };
  }

  next(): Token {
    this.skipSpace();
    const start = this.pos;
    if (start >= this.text.length) return { kind: 'eof', text: '', start, end: start };
    const ch = this.charAt(start);
    if (isWordStart(ch) || ch === '$') return this.word(start);
    if (isDigit(ch)) return this.number(start);
    if (ch === "'" || ch === '"') return this.string(start, ch);
    const two = this.text.slice(start, start + 2);
    if (TWO_CHAR_OPS.has(two)) {
      this.pos += 2;
      return { kind: 'op', text: two, start, end: this.pos };
    }
    if (ONE_CHAR_OPS.has(ch)) {
      this.pos += 1;
      return { kind: 'op', text: ch, start, end: this.pos };
    }
    throw routeSyntaxError(start + 1, 'an operator, value or keyword', describeChar(ch), `unexpected character ${describeChar(ch)}`);
  }

  private charAt(i: number): string {
    return this.text.charAt(i);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && isSpace(this.charAt(this.pos))) this.pos++;
  }

  private found(i: number): string {
    return i >= this.text.length ? END_OF_ROUTE : describeChar(this.charAt(i));
  }

  private word(start: number): Token {
    let i = start;
    if (this.charAt(i) === '$') {
      i++;
      if (!isWordStart(this.charAt(i))) throw routeSyntaxError(i + 1, "a name after '$'", this.found(i));
    }
    while (isWordChar(this.charAt(i))) i++;
    while (this.charAt(i) === '.') {
      i++;
      if (!isWordStart(this.charAt(i))) throw routeSyntaxError(i + 1, "a field name after '.'", this.found(i));
      while (isWordChar(this.charAt(i))) i++;
    }
    this.pos = i;
    return { kind: 'word', text: this.text.slice(start, i), start, end: i };
  }

  private number(start: number): Token {
    let i = start;
    while (isDigit(this.charAt(i))) i++;
    if (this.charAt(i) === '.') {
      i++;
      if (!isDigit(this.charAt(i))) throw routeSyntaxError(i + 1, "a digit after '.'", this.found(i));
      while (isDigit(this.charAt(i))) i++;
    }
    if (this.charAt(i) === 'e' || this.charAt(i) === 'E') {
      i++;
      if (this.charAt(i) === '+' || this.charAt(i) === '-') i++;
      if (!isDigit(this.charAt(i))) throw routeSyntaxError(i + 1, 'exponent digits', this.found(i));
      while (isDigit(this.charAt(i))) i++;
    }
    if (isWordStart(this.charAt(i)) || this.charAt(i) === '$' || this.charAt(i) === '.') {
      throw routeSyntaxError(i + 1, 'an operator after a number', this.found(i), `unexpected character ${this.found(i)} after a number`);
    }
    const text = this.text.slice(start, i);
    const value = Number(text);
    if (!Number.isFinite(value)) throw routeSyntaxError(start + 1, 'a finite number', `'${text}'`, 'number out of range');
    this.pos = i;
    return { kind: 'number', text, value, start, end: i };
  }

  private string(start: number, quote: string): Token {
    let i = start + 1;
    let value = '';
    const offsets: number[] = [];
    for (;;) {
      if (i >= this.text.length || this.charAt(i) === '\n' || this.charAt(i) === '\r') {
        throw routeSyntaxError(start + 1, `a closing ${quote}`, i >= this.text.length ? END_OF_ROUTE : 'end of line', 'unterminated string');
      }
      const ch = this.charAt(i);
      if (ch === quote) break;
      if (ch !== '\\') {
        value += ch;
        offsets.push(i);
        i++;
        continue;
      }
      if (i + 1 >= this.text.length) {
        i++; // a lone backslash at the end: reported as an unterminated string on the next turn
        continue;
      }
      const esc = this.charAt(i + 1);
      const simple = SIMPLE_ESCAPES.get(esc);
      if (simple !== undefined) {
        value += simple;
        offsets.push(i);
        i += 2;
      } else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(this.text.slice(i + 2, i + 6))) {
        value += String.fromCharCode(parseInt(this.text.slice(i + 2, i + 6), 16));
        offsets.push(i);
        i += 6;
      } else {
        const what = describeChar(esc) === `'${esc}'` ? `'\\${esc}'` : `'\\' followed by ${describeChar(esc)}`;
        throw routeSyntaxError(i + 1, "an escape (\\\\, \\', \\\", \\/, \\n, \\r, \\t, \\0 or \\uXXXX)", what, `invalid escape ${what} in string`);
      }
    }
    this.pos = i + 1;
    return { kind: 'string', text: this.text.slice(start, this.pos), value, offsets, start, end: this.pos };
  }
}
