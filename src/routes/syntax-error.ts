import { OutpostError } from '../errors/outpost-error.js';

/** Longest excerpt of route text quoted in a message (keeps messages short and single-line). */
const MAX_EXCERPT = 24;

/**
 * Builds the one error of the route grammar. The message reads `at column C: <what>`, is single-line and
 * never contains the whole route text (the caller adds context such as `routes[2].route`).
 * `what` defaults to `expected <expected>, found <found>`.
 */
export function routeSyntaxError(column: number, expected: string, found: string, what?: string): OutpostError {
  const text = what ?? `expected ${expected}, found ${found}`;
  return new OutpostError('OUTPOST_E_ROUTE_SYNTAX', `at column ${column}: ${text}`, {
    details: { column, expected, found },
  });
}

/** A quoted, single-line, bounded excerpt of route text for a message: `'abc'`. */
export function quoteExcerpt(text: string): string {
  const clipped = text.length > MAX_EXCERPT ? `${text.slice(0, MAX_EXCERPT)}…` : text;
  return `'${clipped.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}'`;
}

/** How a single character is named in a message: `'&'`, `' '`, or `U+00A0` for invisible ones. */
export function describeChar(ch: string): string {
  const code = ch.codePointAt(0) ?? 0;
  return code >= 0x20 && code < 0x7f ? `'${ch}'` : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
}

export const END_OF_ROUTE = 'end of route';
