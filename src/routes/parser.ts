import { FUNCTION_ARITY } from './ast.js';
import type { CompareOp, Expr, FunctionName, RouteAst, SinkSpec } from './ast.js';
import { Lexer, type Token } from './lexer.js';
import { parseSourcePattern } from './source.js';
import { END_OF_ROUTE, quoteExcerpt, routeSyntaxError } from './syntax-error.js';
import { validateTopicTemplate } from './topic.js';

/** Deepest nesting of parentheses, NOT, unary minus and function arguments (bounds parser recursion). */
const MAX_NESTING = 64;
/** Deepest expression tree (long AND/OR chains included; bounds compile and evaluation recursion). */
const MAX_DEPTH = 1000;

const COMPARE_OPS: ReadonlyMap<string, CompareOp> = new Map<string, CompareOp>([
  ['=', '='],
  ['!=', '!='],
  ['<>', '!='],
  ['<', '<'],
  ['<=', '<='],
  ['>', '>'],
  ['>=', '>='],
]);
const RESERVED: ReadonlySet<string> = new Set(['FROM', 'WHERE', 'INTO', 'AND', 'OR', 'NOT', 'TRUE', 'FALSE', 'NULL']);
const BODY_PREFIX = '$BODY.';

function describeToken(tok: Token): string {
  if (tok.kind === 'eof') return END_OF_ROUTE;
  if (tok.kind === 'string') return `string ${quoteExcerpt(tok.text)}`;
  return quoteExcerpt(tok.text);
}

function isFunctionName(name: string): name is FunctionName {
  return Object.hasOwn(FUNCTION_ARITY, name);
}

/**
 * Recursive-descent parser for one route, used once.
 * Invariants: `tok` is the next unconsumed token and the lexer has read nothing beyond it (so the source path
 * can be scanned raw right after FROM); `prev` is the text of the last consumed token; `nesting` counts the
 * open recursive constructs and never exceeds MAX_NESTING; every node's tree depth is recorded in `depths`
 * and never exceeds MAX_DEPTH.
 */
class RouteParser {
  private readonly lexer: Lexer;
  private tok: Token;
  private prev = '';
  private nesting = 0;
  private readonly depths = new WeakMap<Expr, number>();

  constructor(text: string) {
    this.lexer = new Lexer(text);
    this.tok = this.lexer.next();
  }

  parse(): RouteAst {
    if (!this.isKeyword('FROM')) throw this.expected('FROM');
    const raw = this.lexer.scanSource();
    if (raw === null) throw routeSyntaxError(this.lexer.endColumn, 'a source path after FROM', END_OF_ROUTE);
    const source = parseSourcePattern(raw.text, raw.start);
    this.prev = raw.text;
    this.tok = this.lexer.next();
    let where: Expr | null = null;
    if (this.isKeyword('WHERE')) {
      this.advance();
      where = this.parseOr();
      if (!this.isKeyword('INTO')) throw this.expected('an operator or INTO <sink>');
    } else if (!this.isKeyword('INTO')) {
      throw this.expected('WHERE <condition> or INTO <sink>');
    }
    this.advance();
    const sink = this.parseSink();
    if (this.tok.kind !== 'eof') throw this.expected('end of route after the sink');
    return { source, where, sink };
  }

  // ---- tokens -------------------------------------------------------------------------------------------

  private advance(): void {
    this.prev = this.tok.text;
    this.tok = this.lexer.next();
  }

  private column(): number {
    return this.tok.start + 1;
  }

  private isKeyword(keyword: string): boolean {
    return this.tok.kind === 'word' && this.tok.text.toUpperCase() === keyword;
  }

  private isOp(op: string): boolean {
    return this.tok.kind === 'op' && this.tok.text === op;
  }

  private expected(what: string) {
    return routeSyntaxError(this.column(), what, describeToken(this.tok));
  }

  private enter(column: number): void {
    this.nesting++;
    if (this.nesting > MAX_NESTING) {
      throw routeSyntaxError(column, `at most ${MAX_NESTING} nested levels`, 'deeper nesting', 'condition is nested too deeply');
    }
  }

  private leave(): void {
    this.nesting--;
  }

  /** Records the depth of a new node (one more than its deepest child) and enforces MAX_DEPTH. */
  private node(expr: Expr, ...children: Expr[]): Expr {
    let depth = 1;
    for (const child of children) depth = Math.max(depth, (this.depths.get(child) ?? 1) + 1);
    if (depth > MAX_DEPTH) {
      throw routeSyntaxError(expr.column, `an expression at most ${MAX_DEPTH} levels deep`, 'a deeper one', 'condition is too long or nested too deeply');
    }
    this.depths.set(expr, depth);
    return expr;
  }

  // ---- sink ---------------------------------------------------------------------------------------------

  private parseSink(): SinkSpec {
    const name = this.tok;
    const upper = name.kind === 'word' ? name.text.toUpperCase() : '';
    if (upper === '$UPSTREAM') {
      this.advance();
      return { type: 'upstream' };
    }
    if (upper !== '$BROKER' && upper !== 'BROKEREDENDPOINT') throw this.expected('a sink: $upstream or $broker("topic")');
    this.advance();
    if (!this.isOp('(')) throw this.expected(`'(' after ${quoteExcerpt(name.text)}`);
    this.advance();
    const topic = this.tok;
    if (topic.kind !== 'string') throw this.expected('a quoted broker topic');
    validateTopicTemplate(topic.value, (i) => (topic.offsets[i] ?? topic.start) + 1);
    this.advance();
    if (!this.isOp(')')) throw this.expected("')' after the broker topic");
    this.advance();
    return { type: 'broker', topic: topic.value };
  }

  // ---- condition: OR < AND < NOT < comparison < additive < multiplicative < unary minus -------------------

  private parseOr(): Expr {
    this.enter(this.column());
    let left = this.parseAnd();
    while (this.isKeyword('OR')) {
      const column = this.column();
      this.advance();
      const right = this.parseAnd();
      left = this.node({ kind: 'logical', op: 'OR', left, right, column }, left, right);
    }
    this.leave();
    return left;
  }

  private parseAnd(): Expr {
    let left = this.parseNot();
    while (this.isKeyword('AND')) {
      const column = this.column();
      this.advance();
      const right = this.parseNot();
      left = this.node({ kind: 'logical', op: 'AND', left, right, column }, left, right);
    }
    return left;
  }

  private parseNot(): Expr {
    if (!this.isKeyword('NOT')) return this.parseComparison();
    const column = this.column();
    this.advance();
    this.enter(column);
    const operand = this.parseNot();
    this.leave();
    return this.node({ kind: 'not', operand, column }, operand);
  }

  private compareOp(): CompareOp | undefined {
    return this.tok.kind === 'op' ? COMPARE_OPS.get(this.tok.text) : undefined;
  }

  private parseComparison(): Expr {
    const left = this.parseAdditive();
    const op = this.compareOp();
    if (op === undefined) return left;
    const column = this.column();
    this.advance();
    const right = this.parseAdditive();
    if (this.compareOp() !== undefined) {
      throw routeSyntaxError(this.column(), 'AND or OR between comparisons', describeToken(this.tok), 'comparisons cannot be chained; combine them with AND');
    }
    return this.node({ kind: 'compare', op, left, right, column }, left, right);
  }

  private parseAdditive(): Expr {
    let left = this.parseMultiplicative();
    while (this.isOp('+') || this.isOp('-')) {
      const op = this.tok.text === '+' ? '+' : '-';
      const column = this.column();
      this.advance();
      const right = this.parseMultiplicative();
      left = this.node({ kind: 'arith', op, left, right, column }, left, right);
    }
    return left;
  }

  private parseMultiplicative(): Expr {
    let left = this.parseUnary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) {
      const op = this.tok.text === '*' ? '*' : this.tok.text === '/' ? '/' : '%';
      const column = this.column();
      this.advance();
      const right = this.parseUnary();
      left = this.node({ kind: 'arith', op, left, right, column }, left, right);
    }
    return left;
  }

  private parseUnary(): Expr {
    if (!this.isOp('-')) return this.parsePrimary();
    const column = this.column();
    this.advance();
    this.enter(column);
    const operand = this.parseUnary();
    this.leave();
    if (operand.kind === 'literal' && typeof operand.value === 'number') {
      return this.node({ kind: 'literal', value: -operand.value, column });
    }
    return this.node({ kind: 'negate', operand, column }, operand);
  }

  private parsePrimary(): Expr {
    const tok = this.tok;
    const column = this.column();
    if (tok.kind === 'number' || tok.kind === 'string') {
      this.advance();
      return this.node({ kind: 'literal', value: tok.value, column });
    }
    if (tok.kind === 'op' && tok.text === '(') {
      this.advance();
      const inner = this.parseOr();
      if (!this.isOp(')')) throw this.expected(`')' to close the '(' at column ${column}`);
      this.advance();
      return inner;
    }
    if (tok.kind !== 'word') throw this.expectedValue();
    const upper = tok.text.toUpperCase();
    if (upper === 'TRUE' || upper === 'FALSE' || upper === 'NULL') {
      this.advance();
      return this.node({ kind: 'literal', value: upper === 'NULL' ? null : upper === 'TRUE', column });
    }
    if (RESERVED.has(upper)) throw this.expectedValue();
    this.advance();
    if (this.isOp('(')) return this.parseCall(tok.text, column);
    return this.node({ kind: 'field', path: this.fieldPath(tok.text, column), column });
  }

  private expectedValue() {
    return this.expected(this.prev === '' ? 'a value' : `a value after ${quoteExcerpt(this.prev)}`);
  }

  private fieldPath(text: string, column: number): string[] {
    if (!text.startsWith('$')) return text.split('.');
    if (text.slice(0, BODY_PREFIX.length).toUpperCase() === BODY_PREFIX) return text.slice(BODY_PREFIX.length).split('.');
    if (text.toUpperCase() === '$BODY') {
      throw routeSyntaxError(column + text.length, "'.' and a field name after '$body'", describeToken(this.tok));
    }
    const name = quoteExcerpt(text.split('.')[0] ?? text);
    throw routeSyntaxError(column, 'a field name or $body.<field>', name, `unknown system property ${name}; use a field name or $body.<field>`);
  }

  private parseCall(name: string, column: number): Expr {
    const fn = name.toUpperCase();
    if (!isFunctionName(fn)) {
      const known = Object.keys(FUNCTION_ARITY).join(', ');
      throw routeSyntaxError(column, `one of the functions ${known}`, quoteExcerpt(name), `unknown function ${quoteExcerpt(name)}`);
    }
    const open = this.column();
    this.advance();
    const args: Expr[] = [];
    if (!this.isOp(')')) {
      for (;;) {
        args.push(this.parseOr());
        if (!this.isOp(',')) break;
        this.advance();
      }
    }
    if (!this.isOp(')')) throw this.expected(`',' or ')' to close the '(' at column ${open}`);
    const arity = FUNCTION_ARITY[fn];
    if (args.length !== arity) {
      const plural = arity === 1 ? 'argument' : 'arguments';
      throw routeSyntaxError(column, `${arity} ${plural}`, `${args.length}`, `function ${fn} takes ${arity} ${plural}, found ${args.length}`);
    }
    this.advance();
    return this.node({ kind: 'call', fn, args, column }, ...args);
  }
}

/** Parses route text `FROM <source> [WHERE <condition>] INTO <sink>`; throws OUTPOST_E_ROUTE_SYNTAX with the column. */
export function parseRoute(text: string): RouteAst {
  if (typeof text !== 'string') throw routeSyntaxError(1, 'route text', typeof text, 'route must be a string');
  return new RouteParser(text).parse();
}
