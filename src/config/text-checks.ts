import { Lexer } from 'yaml';

/**
 * Cheap, linear checks run on a configuration file before the YAML parser sees it: the parser's
 * cost grows with nesting depth (a 2 MiB file of `[[[[…` takes seconds and a GiB), so depth is
 * estimated from the lexer's tokens first, and bytes that are not UTF-8 text are refused with
 * their offset instead of being replaced by U+FFFD.
 */

/** Byte offset of the first byte that is not part of a well-formed UTF-8 sequence, or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const b = bytes[i] as number;
    if (b < 0x80) {
      i += 1;
      continue;
    }
    let need: number;
    let min: number;
    if (b >= 0xc2 && b <= 0xdf) {
      need = 1;
      min = 0x80;
    } else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      min = 0x800;
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      min = 0x10000;
    } else {
      return i;
    }
    let cp = b & (0xff >> (need + 2));
    for (let k = 1; k <= need; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (c & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates and code points beyond U+10FFFF are not UTF-8.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return i;
    i += need + 1;
  }
  return -1;
}

/** Index of the first character YAML does not allow in a document (C0 controls but tab, LF, CR; DEL; C1 but NEL), or -1. */
export function firstControlChar(text: string): number {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  const m = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u0080-\u0084\u0086-\u009f\ufffe\uffff]/.exec(text);
  return m ? m.index : -1;
}

/** 1-based line of a byte offset (counts LF bytes before it). */
export function lineOfByte(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < bytes.length; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

/**
 * An upper estimate of the nesting depth of a YAML text, from the lexer's tokens (linear time):
 * flow brackets open and close levels; in block context each line adds one level per deeper
 * indentation than its enclosing lines, plus one per `-`, `?` or `:` indicator on the line.
 * Returns the estimate and the character offset where it was reached.
 */
export function estimateDepth(text: string, stopAbove: number): { depth: number; offset: number } {
  let flow = 0;
  const indents: number[] = [];
  let lineStart = true;
  let lineIndent = 0;
  let indicators = 0;
  let offset = 0;
  let best = { depth: 0, offset: 0 };
  const seen = (depth: number) => {
    if (depth > best.depth) best = { depth, offset };
  };
  for (const token of new Lexer().lex(text)) {
    const t = token.charCodeAt(0);
    if (token === '\n' || token === '\r\n') {
      lineStart = true;
      lineIndent = 0;
      indicators = 0;
    } else if (lineStart && /^ +$/.test(token)) {
      lineIndent = token.length;
    } else if (token.startsWith('#') || token === ' ' || /^[ \t]+$/.test(token)) {
      // comments and spaces inside a line do not nest
    } else {
      if (lineStart && flow === 0) {
        while (indents.length > 0 && (indents[indents.length - 1] as number) >= lineIndent) indents.pop();
        indents.push(lineIndent);
        lineStart = false;
      }
      lineStart = false;
      if (token === '[' || token === '{') {
        flow++;
        seen(indents.length + indicators + flow);
      } else if (token === ']' || token === '}') {
        flow = Math.max(0, flow - 1);
      } else if (flow === 0 && (token === '-' || token === '?' || token === ':')) {
        indicators++;
        seen(indents.length + indicators);
      } else if (t !== 0x02 && t !== 0x18 && t !== 0x1f) {
        seen(indents.length + indicators + flow);
      }
    }
    // The lexer's mode markers (document, scalar, flow end) are not characters of the source.
    if (!(token.length === 1 && (t === 0x02 || t === 0x1f || t === 0x18))) offset += token.length;
    if (best.depth > stopAbove) break;
  }
  return best;
}
