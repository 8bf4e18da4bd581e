import { Composer, LineCounter, Parser, isAlias, isMap, isScalar, isSeq, type Document, type Node, type ParsedNode } from 'yaml';
import type { ConfigProblem } from './error-format.js';
import { pathOfSegments } from './error-format.js';
import type { Origin } from './merge.js';
import { estimateDepth, firstControlChar, firstInvalidUtf8, lineOfByte } from './text-checks.js';

/** Deepest nesting a configuration may have (the schema needs 7; the YAML parser's cost grows with depth). */
export const MAX_DEPTH = 32;
/** Alias expansions allowed per file (the yaml library's maxAliasCount): stops "billion laughs". */
export const MAX_ALIAS_COUNT = 100;

/**
 * One file turned into a document: the value and its origins, or the problems that stopped it.
 * Problems without a code (OUTPOST_E_CONFIG_INVALID: numbers that are not finite) leave the value usable.
 */
export interface ParsedSource {
  readonly value?: Record<string, unknown>;
  readonly origin?: Origin;
  readonly problems: readonly ConfigProblem[];
}

type Problem = Omit<ConfigProblem, 'file'>;

const fail = (file: string, problems: readonly Problem[]): ParsedSource => ({ problems: problems.map((p) => ({ file, ...p })) });

/**
 * Turns the bytes of one configuration file (YAML or JSON) into a plain document, checking in this
 * order and stopping at the first kind that fails: UTF-8 text without control characters
 * (OUTPOST_E_CONFIG_ENCODING, with the byte offset), not empty (OUTPOST_E_CONFIG_EMPTY), nesting
 * depth, YAML syntax including duplicate keys and several documents (OUTPOST_E_CONFIG_PARSE, every
 * error with line, column and the parser's reason), alias expansion, a mapping at the top, and
 * finally numbers that are not finite (`.nan`, `.inf`, `1e400`: OUTPOST_E_CONFIG_INVALID, each with
 * its path and line). Pure: no I/O.
 */
export function parseSource(file: string, bytes: Uint8Array): ParsedSource {
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const hex = (bytes[bad] as number).toString(16).padStart(2, '0');
    return fail(file, [{ code: 'OUTPOST_E_CONFIG_ENCODING', line: lineOfByte(bytes, bad), path: '', message: `not UTF-8 text: invalid byte sequence at byte offset ${bad} (0x${hex})` }]);
  }
  let text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  if (text.startsWith('\ufeff')) text = text.slice(1);
  const ctl = firstControlChar(text);
  if (ctl >= 0) {
    const offset = Buffer.byteLength(text.slice(0, ctl), 'utf8');
    const cp = (text.codePointAt(ctl) as number).toString(16).toUpperCase().padStart(4, '0');
    return fail(file, [{ code: 'OUTPOST_E_CONFIG_ENCODING', line: lineOfByte(bytes, offset), path: '', message: `control character U+${cp} at offset ${offset}: binary data is not a configuration` }]);
  }
  if (text.trim() === '') return fail(file, [{ code: 'OUTPOST_E_CONFIG_EMPTY', path: '', message: 'the file is empty: a configuration file needs at least one setting' }]);

  const lines = new LineCounter();
  const at = (offset: number) => {
    const p = lines.linePos(offset);
    return { line: p.line, col: p.col };
  };
  const depth = estimateDepth(text, MAX_DEPTH);
  if (depth.depth > MAX_DEPTH) {
    // The line counter is filled by the parser; count lines directly for this early stop.
    const line = text.slice(0, depth.offset).split('\n').length;
    return fail(file, [{ code: 'OUTPOST_E_CONFIG_PARSE', line, path: '', message: `nested deeper than ${MAX_DEPTH} levels` }]);
  }

  const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  const docs = Array.from(new Composer({ uniqueKeys: true, prettyErrors: false }).compose(tokens, true, text.length));
  const doc = docs[0] as Document.Parsed;
  const parseProblems: Problem[] = [...doc.errors, ...doc.warnings].map((e) => ({
    code: 'OUTPOST_E_CONFIG_PARSE' as const,
    ...at(e.pos[0]),
    path: '',
    message: 'not valid YAML or JSON',
    reason: `${e.code}: ${e.message}`,
  }));
  if (docs.length > 1) {
    const second = docs[1] as Document.Parsed;
    parseProblems.push({ code: 'OUTPOST_E_CONFIG_PARSE', ...at(second.range[0]), path: '', message: 'a second YAML document (after ---): a configuration file holds one' });
  }
  if (parseProblems.length > 0) return fail(file, parseProblems);
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    return fail(file, [{ code: 'OUTPOST_E_CONFIG_EMPTY', path: '', message: 'the file holds no settings (only comments or null)' }]);
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const alias = firstAlias(doc.contents);
    return fail(file, [
      {
        code: 'OUTPOST_E_CONFIG_PARSE',
        ...(alias?.range ? at(alias.range[0]) : {}),
        path: '',
        message: `aliases expand to too many values (more than the limit of ${MAX_ALIAS_COUNT} per file)`,
        reason: e instanceof Error ? e.message : String(e),
      },
    ]);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail(file, [{ ...at(doc.contents.range[0]), path: '', message: `the top level must be a mapping of sections, not ${Array.isArray(value) ? 'a list' : 'a single value'}` }]);
  }
  const nonFinite: Problem[] = [];
  const origin = walk(doc.contents, [], file, at, nonFinite);
  // The document stays usable: its other problems are reported in the same pass (see loadConfig).
  return { value: value as Record<string, unknown>, origin, problems: nonFinite.map((p) => ({ file, ...p })) };
}

function keyOf(key: unknown): string {
  if (isScalar(key)) return String(key.value);
  return String((key as Node | null)?.toJSON?.() ?? key);
}

/** Builds the origin tree of a node and collects non-finite numbers (depth is bounded by MAX_DEPTH). */
function walk(node: ParsedNode | null, segs: string[], file: string, at: (o: number) => { line: number; col: number }, nonFinite: Problem[], pos?: number): Origin {
  const here = { file, ...at(pos ?? node?.range[0] ?? 0) };
  if (isMap(node)) {
    const children = new Map<string, Origin>();
    for (const pair of node.items) {
      const k = keyOf(pair.key);
      const keyNode = pair.key as ParsedNode | null;
      children.set(k, walk(pair.value as ParsedNode | null, [...segs, k], file, at, nonFinite, keyNode?.range[0] ?? (pair.value as ParsedNode | null)?.range[0]));
    }
    return { ...here, children };
  }
  if (isSeq(node)) {
    const children = new Map<string, Origin>();
    node.items.forEach((item, i) => children.set(String(i), walk(item as ParsedNode, [...segs, String(i)], file, at, nonFinite)));
    return { ...here, children };
  }
  if (isScalar(node) && typeof node.value === 'number' && !Number.isFinite(node.value)) {
    const source = typeof node.source === 'string' ? node.source : String(node.value);
    nonFinite.push({ ...at(node.range[0]), path: pathOfSegments(segs), message: `${source} is not a finite number (NaN and infinities are refused everywhere)` });
  }
  return here;
}

/** The alias nearest the start of the document (where an expansion attack begins), bounded in nodes visited. */
function firstAlias(node: ParsedNode | null): ParsedNode | null {
  const stack: Array<ParsedNode | null> = [node];
  let first: ParsedNode | null = null;
  for (let guard = 0; stack.length > 0 && guard < 1_000_000; guard++) {
    const n = stack.pop() ?? null;
    if (isAlias(n)) {
      if (first === null || n.range[0] < first.range[0]) first = n;
    } else if (isMap(n)) for (const p of n.items) stack.push(p.value as ParsedNode | null, p.key as ParsedNode | null);
    else if (isSeq(n)) for (const i of n.items) stack.push(i as ParsedNode);
  }
  return first;
}
