import fc from 'fast-check';
import { FUNCTION_ARITY, type Expr, type FunctionName, type RouteAst, type SinkSpec, type SourcePattern } from '../../src/routes/ast.js';
import { compileRoute, parseRoute, renderTopic } from '../../src/routes/index.js';
import { HOSTILE_KEYS, anyText, check, expectOutpostError, tokenSoup, type FuzzTarget } from './target.js';

/**
 * Fuzz targets of the route grammar (src/routes): arbitrary text and generated routes. Invariants
 * under test: parseRoute returns a tree or throws OUTPOST_E_ROUTE_SYNTAX whose column lies in the
 * text and never past the first offending character; printing a tree and parsing it back gives the
 * same tree; compiled conditions and topic rendering never throw, for any message body.
 */

const RESERVED = new Set(['FROM', 'WHERE', 'INTO', 'AND', 'OR', 'NOT', 'TRUE', 'FALSE', 'NULL']);
const FUNCTIONS = Object.keys(FUNCTION_ARITY) as FunctionName[];

/** Parses, checking the error contract; returns the tree or null. */
function parseChecked(text: string): RouteAst | null {
  try {
    return parseRoute(text);
  } catch (e) {
    const err = expectOutpostError(e, ['OUTPOST_E_ROUTE_SYNTAX']);
    const column = err.details['column'];
    check(typeof column === 'number' && Number.isInteger(column) && column >= 1 && column <= text.length + 1, `column ${String(column)} is outside 1..${text.length + 1}`);
    check(err.message.startsWith(`at column ${column}: `), `message does not start with its column: ${err.message}`);
    check(!/[\u0000-\u001f\u007f]/.test(err.message), 'message contains a control character (not single-line)');
    check(err.message.length <= 240, `message is ${err.message.length} characters long`);
    return null;
  }
}

// ---- generated routes -------------------------------------------------------------------------------

const identifier = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,7}$/);
const fieldName = fc.oneof({ weight: 4, arbitrary: identifier }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_KEYS, 'value', 'quality', 'device') });
const fieldPath = fc.array(fieldName, { minLength: 1, maxLength: 3 }).filter((p) => p.length > 1 || !RESERVED.has((p[0] as string).toUpperCase()));

const literal: fc.Arbitrary<Expr> = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => ({ kind: 'literal' as const, value, column: 0 })),
  fc.integer({ min: -1000, max: 1000 }).map((value) => ({ kind: 'literal' as const, value, column: 0 })),
  fc.string({ unit: 'binary', maxLength: 10 }).map((value) => ({ kind: 'literal' as const, value, column: 0 })),
  fc.constantFrom(true, false, null).map((value) => ({ kind: 'literal' as const, value, column: 0 })),
);

const exprArb: fc.Arbitrary<Expr> = fc.letrec<{ expr: Expr }>((tie) => ({
  expr: fc.oneof(
    { depthSize: 'small', maxDepth: 5, withCrossShrink: true },
    literal,
    fieldPath.map((path) => ({ kind: 'field' as const, path, column: 0 })),
    tie('expr').map((operand) => ({ kind: 'not' as const, operand, column: 0 })),
    // The parser folds `-<number>` into a literal, so a negation of a numeric literal is not a tree it makes.
    tie('expr')
      .filter((e) => !(e.kind === 'literal' && typeof e.value === 'number'))
      .map((operand) => ({ kind: 'negate' as const, operand, column: 0 })),
    fc.record({ kind: fc.constant('logical' as const), op: fc.constantFrom('AND' as const, 'OR' as const), left: tie('expr'), right: tie('expr'), column: fc.constant(0) }),
    fc.record({ kind: fc.constant('compare' as const), op: fc.constantFrom('=' as const, '!=' as const, '<' as const, '<=' as const, '>' as const, '>=' as const), left: tie('expr'), right: tie('expr'), column: fc.constant(0) }),
    fc.record({ kind: fc.constant('arith' as const), op: fc.constantFrom('+' as const, '-' as const, '*' as const, '/' as const, '%' as const), left: tie('expr'), right: tie('expr'), column: fc.constant(0) }),
    fc.constantFrom(...FUNCTIONS).chain((fn) => fc.array(tie('expr'), { minLength: FUNCTION_ARITY[fn], maxLength: FUNCTION_ARITY[fn] }).map((args) => ({ kind: 'call' as const, fn, args, column: 0 }))),
  ),
})).expr;

const segment = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,8}$/);
const sourceArb: fc.Arbitrary<SourcePattern> = fc
  .tuple(fc.array(fc.oneof(segment.map((value) => ({ kind: 'literal' as const, value })), identifier.map((name) => ({ kind: 'param' as const, name }))), { maxLength: 4 }), fc.boolean())
  .map(([segs, wildcard]) => {
    const names = new Set<string>();
    const segments = segs.filter((s) => s.kind === 'literal' || (!names.has(s.name) && names.add(s.name)));
    const all = wildcard || segments.length === 0 ? [...segments.map(segmentText), '*'] : segments.map(segmentText);
    return { text: `/${all.join('/')}`, segments, wildcard: wildcard || segments.length === 0 };
  });

function segmentText(s: SourcePattern['segments'][number]): string {
  return s.kind === 'literal' ? s.value : `{${s.name}}`;
}

const topicArb = fc
  .array(fc.oneof(fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }).map((t) => t.replace(/[{}+#\0]/g, 'x')), fieldPath.map((p) => `{${p.join('.')}}`)), { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join('/'));
const sinkArb: fc.Arbitrary<SinkSpec> = fc.oneof(fc.constant({ type: 'upstream' as const }), topicArb.map((topic) => ({ type: 'broker' as const, topic })));

function printNumber(n: number): string {
  return Object.is(n, -0) ? '-0' : String(n);
}

function printString(s: string, quote: "'" | '"'): string {
  let out = quote;
  for (const ch of s) {
    if (ch === '\\' || ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch.charCodeAt(0) < 0x20 || ch === '\u007f') out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + quote;
}

/** Prints a tree fully parenthesised, with random keyword case, so only the grammar decides how it reads back. */
function printExpr(e: Expr, kw: (w: string) => string): string {
  const p = (x: Expr) => `(${printExpr(x, kw)})`;
  switch (e.kind) {
    case 'literal':
      if (typeof e.value === 'number') return printNumber(e.value);
      if (typeof e.value === 'string') return printString(e.value, e.value.length % 2 === 0 ? "'" : '"');
      return kw(e.value === null ? 'NULL' : e.value ? 'TRUE' : 'FALSE');
    case 'field':
      return e.path.length % 2 === 0 ? `$body.${e.path.join('.')}` : e.path.join('.');
    case 'not':
      return `${kw('NOT')} ${p(e.operand)}`;
    case 'negate':
      return `-${p(e.operand)}`;
    case 'logical':
      return `${p(e.left)} ${kw(e.op)} ${p(e.right)}`;
    case 'compare':
    case 'arith':
      return `${p(e.left)} ${e.op === '!=' && e.left.kind === 'field' ? '<>' : e.op} ${p(e.right)}`;
    case 'call':
      return `${kw(e.fn)}(${e.args.map(p).join(', ')})`;
  }
}

function printRoute(ast: RouteAst, kw: (w: string) => string): string {
  const where = ast.where === null ? '' : ` ${kw('WHERE')} ${printExpr(ast.where, kw)}`;
  const sink = ast.sink.type === 'upstream' ? kw('$upstream') : `${kw('$broker')}(${printString(ast.sink.topic, '"')})`;
  return `${kw('FROM')} ${ast.source.text}${where}  ${kw('INTO')}\t${sink}`;
}

/** The tree without columns, for comparing a printed-and-parsed tree with the generated one. */
function stripColumns(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripColumns);
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : v;
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'column').map(([k, x]) => [k, stripColumns(x)]));
}

/** Every node's column points at its first character (operators: at the operator). */
function checkColumns(e: Expr, text: string): void {
  const at = text.slice(e.column - 1);
  switch (e.kind) {
    case 'literal':
      check(/^(-|\d|'|"|true|false|null)/i.test(at) || at.startsWith('('), `literal column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      break;
    case 'field':
      check(/^[$A-Za-z_]/.test(at), `field column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      break;
    case 'not':
      check(/^not/i.test(at), `NOT column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      return checkColumns(e.operand, text);
    case 'negate':
      check(at.startsWith('-'), `negation column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      return checkColumns(e.operand, text);
    case 'logical':
      check(at.toUpperCase().startsWith(e.op), `${e.op} column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      checkColumns(e.left, text);
      return checkColumns(e.right, text);
    case 'compare':
    case 'arith':
      check(at.startsWith(e.op) || (e.op === '!=' && at.startsWith('<>')), `${e.op} column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      checkColumns(e.left, text);
      return checkColumns(e.right, text);
    case 'call':
      check(at.toUpperCase().startsWith(e.fn), `${e.fn} column ${e.column} points at ${JSON.stringify(at.slice(0, 8))}`);
      return e.args.forEach((a) => checkColumns(a, text));
  }
}

const routeArb = fc.record({ source: sourceArb, where: fc.option(exprArb, { nil: null }), sink: sinkArb });
const keywordCase = fc.func(fc.boolean()).map((upper) => (w: string) => (upper(w) ? w.toUpperCase() : w.toLowerCase()));
const bodyArb = fc.oneof(
  fc.object({ key: fc.oneof(fieldName, fc.string({ maxLength: 4 })), maxDepth: 3, withNullPrototype: true }),
  fc.record({ value: fc.oneof(fc.double(), fc.string({ unit: 'binary' }), fc.boolean(), fc.constant(null)), quality: fc.constantFrom('good', 'bad'), device: fc.string({ unit: 'binary', maxLength: 6 }) }),
) as fc.Arbitrary<Record<string, unknown>>;

/** Characters that no route may hold outside a quoted string. */
const NEVER_VALID = ['@', '&', '|', '`', '~', '^', ';', '?', '[', ']', '\u0001', '\u00a7', '\u2028', '\ud800'];

const ROUTE_TOKENS = ['FROM ', 'WHERE ', ' INTO ', '$upstream', '$broker(', 'BrokeredEndpoint(', "'a/{device}'", ')', '(', ' AND ', ' OR ', 'NOT ', '=', '!=', '<>', '<=', '>=', '<', '>', '+', '-', '*', '/', '%', ',', 'value', '$body.', 'quality', "'good'", '"x"', '1', '2.5', '1e3', '1e', '.', 'IS_DEFINED', 'ABS', 'STARTS_WITH', 'true', 'null', '/readings/*', '/{device}', '/*/x', ' ', '\t', '\\', "'", '"', '{', '}', '$'];

export function routeTargets(): FuzzTarget[] {
  return [
    {
      name: 'routes.arbitrary-text',
      runs: 1500,
      property: () => fc.property(fc.oneof(anyText(200), tokenSoup(ROUTE_TOKENS, 40)), (text) => void parseChecked(text)),
    },
    {
      name: 'routes.round-trip',
      runs: 400,
      property: () =>
        fc.property(routeArb, keywordCase, (ast, kw) => {
          const text = printRoute(ast, kw);
          const parsed = parseChecked(text);
          check(parsed !== null, `a printed route does not parse: ${text}`);
          check(JSON.stringify(stripColumns(parsed)) === JSON.stringify(stripColumns(ast)), `parse(print(tree)) differs from the tree for ${text}`);
          if (parsed.where) checkColumns(parsed.where, text);
        }),
    },
    {
      name: 'routes.error-column',
      runs: 400,
      property: () =>
        // A character that is never valid outside a string, inserted anywhere: the route still parses (it landed
        // inside a string) or the error points at or before it, never past it.
        fc.property(routeArb, keywordCase, fc.nat(), fc.constantFrom(...NEVER_VALID), (ast, kw, at, ch) => {
          const valid = printRoute(ast, kw);
          const i = at % (valid.length + 1);
          const text = valid.slice(0, i) + ch + valid.slice(i);
          try {
            parseRoute(text);
          } catch (e) {
            const column = expectOutpostError(e, ['OUTPOST_E_ROUTE_SYNTAX']).details['column'] as number;
            check(column <= i + 1, `error at column ${column}, past the bad character at column ${i + 1}: ${text}`);
          }
        }),
    },
    {
      name: 'routes.evaluate',
      runs: 400,
      property: () =>
        fc.property(routeArb, keywordCase, fc.array(bodyArb, { minLength: 1, maxLength: 4 }), fc.constantFrom(...HOSTILE_KEYS, 'value', 'x'), (ast, kw, bodies, name) => {
          const route = compileRoute(printRoute(ast, kw));
          const defined = compileRoute(`FROM /* WHERE IS_DEFINED(${name}) INTO $upstream`);
          for (const body of bodies) {
            if (route.where) check(typeof route.where(body) === 'boolean', 'a condition returned a non-boolean');
            check(defined.where?.(body) === (Object.hasOwn(body, name) && body[name] !== undefined), `IS_DEFINED(${name}) disagrees with the body's own keys`);
            if (route.sink.type === 'broker') {
              const topic = renderTopic(route.sink.topic, body);
              check(!/[+#\0]/.test(topic), `rendered topic holds a wildcard or NUL: ${JSON.stringify(topic)}`);
              const levels = (t: string) => t.replace(/\{[^}]*\}/g, '').split('/').length;
              check(topic.split('/').length === levels(route.sink.topic), `a value added topic levels: ${JSON.stringify(topic)}`);
            }
          }
        }),
    },
  ];
}
