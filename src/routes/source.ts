import type { SourcePattern, SourceSegment } from './ast.js';
import { describeChar, quoteExcerpt, routeSyntaxError } from './syntax-error.js';

const SEGMENT = /^[A-Za-z0-9_.:-]+$/;
const SEGMENT_CHAR = /[A-Za-z0-9_.:-]/;
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses a source path as written after FROM. `offset` is the 0-based position of `text` in the route, for columns.
 * Rules: starts with '/'; segments are `[A-Za-z0-9_.:-]+` or a `{name}` placeholder (any one segment);
 * `*` may only be the whole last segment and matches one or more remaining segments.
 */
export function parseSourcePattern(text: string, offset: number): SourcePattern {
  const col = (i: number): number => offset + i + 1;
  if (!text.startsWith('/')) {
    throw routeSyntaxError(col(0), "'/'", quoteExcerpt(text), "source must start with '/'");
  }
  const segments: SourceSegment[] = [];
  const names = new Set<string>();
  let wildcard = false;
  let i = 1;
  for (;;) {
    const start = i;
    while (i < text.length && text.charAt(i) !== '/') i++;
    const segment = text.slice(start, i);
    const atEnd = i >= text.length;
    if (segment === '') {
      const found = atEnd ? 'end of source' : "'/'";
      throw routeSyntaxError(col(start), "a segment after '/'", found, `expected a segment after '/', found ${found}`);
    }
    if (segment.includes('*')) {
      const star = start + segment.indexOf('*');
      if (segment !== '*') {
        // An invalid character before the '*' is the first problem: report it, not the '*'.
        const bad = segment.search(/[^A-Za-z0-9_.:*-]/);
        if (bad >= 0 && start + bad < star) {
          const ch = describeChar(segment.charAt(bad));
          throw routeSyntaxError(col(start + bad), 'a letter, digit or one of _ . : -', ch, `invalid character ${ch} in source path`);
        }
        throw routeSyntaxError(col(star), "'*' as a whole segment", quoteExcerpt(segment), "'*' must be a whole segment, not part of one");
      }
      if (!atEnd) {
        throw routeSyntaxError(col(star), "'*' as the last segment", "'/' after '*'", "'*' is only allowed as the last source segment");
      }
      wildcard = true;
    } else if (segment.startsWith('{')) {
      const name = segment.endsWith('}') ? segment.slice(1, -1) : '';
      if (!PARAM_NAME.test(name)) {
        throw routeSyntaxError(col(start), 'a placeholder like {device}', quoteExcerpt(segment), `invalid placeholder segment ${quoteExcerpt(segment)}`);
      }
      if (names.has(name)) {
        throw routeSyntaxError(col(start), 'distinct placeholder names', quoteExcerpt(segment), `duplicate placeholder '{${name}}'`);
      }
      names.add(name);
      segments.push({ kind: 'param', name });
    } else if (SEGMENT.test(segment)) {
      segments.push({ kind: 'literal', value: segment });
    } else {
      let bad = start;
      while (SEGMENT_CHAR.test(text.charAt(bad))) bad++;
      const ch = describeChar(text.charAt(bad));
      throw routeSyntaxError(col(bad), 'a letter, digit or one of _ . : -', ch, `invalid character ${ch} in source path`);
    }
    if (atEnd) break;
    i++;
  }
  return { text, segments, wildcard };
}

/**
 * Builds the matcher of a source pattern. A message path (`/readings/{device}/{point}`, `/events/{rule}`)
 * matches when it starts with '/', has no empty segment, and its segments match the pattern's one by one
 * (case-sensitive); a trailing `*` takes one or more further segments. Never throws.
 */
export function sourceMatcher(pattern: SourcePattern): (path: string) => boolean {
  const { segments, wildcard } = pattern;
  const n = segments.length;
  return (path: string): boolean => {
    if (typeof path !== 'string' || path.charAt(0) !== '/') return false;
    const parts = path.slice(1).split('/');
    if (wildcard ? parts.length <= n : parts.length !== n) return false;
    for (let k = 0; k < parts.length; k++) {
      const part = parts[k] as string;
      if (part === '') return false;
      const seg = segments[k];
      if (seg !== undefined && seg.kind === 'literal' && seg.value !== part) return false;
    }
    return true;
  };
}
