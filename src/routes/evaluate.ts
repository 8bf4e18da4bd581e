import type { ArithOp, CompareOp, Expr, FunctionName } from './ast.js';
import { readField } from './topic.js';

/** A compiled expression: computes a value from a message body. Never throws for any body. */
type Evaluator = (body: Record<string, unknown>) => unknown;

/**
 * Comparison semantics: anything involving undefined is false; null equals only null (`x = null`, `x != null`),
 * any ordering with null is false; values of different types are never equal nor unequal (false);
 * numbers and strings are ordered, booleans only support `=` / `!=`; NaN and objects compare false.
 */
export function compareValues(op: CompareOp, left: unknown, right: unknown): boolean {
  if (left === undefined || right === undefined) return false;
  if (left === null || right === null) {
    if (op === '=') return left === right;
    if (op === '!=') return left !== right;
    return false;
  }
  const type = typeof left;
  if (type !== typeof right) return false;
  if (type === 'number') {
    if (Number.isNaN(left) || Number.isNaN(right)) return false;
  } else if (type === 'boolean') {
    if (op !== '=' && op !== '!=') return false;
  } else if (type !== 'string') {
    return false;
  }
  const l = left as number | string | boolean;
  const r = right as number | string | boolean;
  switch (op) {
    case '=':
      return l === r;
    case '!=':
      return l !== r;
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    case '>=':
      return l >= r;
  }
}

/** Arithmetic on two numbers; undefined when an operand is not a number or the result is not finite (e.g. `x / 0`). */
export function arithmetic(op: ArithOp, left: unknown, right: unknown): number | undefined {
  if (typeof left !== 'number' || typeof right !== 'number') return undefined;
  let result: number;
  switch (op) {
    case '+':
      result = left + right;
      break;
    case '-':
      result = left - right;
      break;
    case '*':
      result = left * right;
      break;
    case '/':
      result = left / right;
      break;
    case '%':
      result = left % right;
      break;
  }
  return Number.isFinite(result) ? result : undefined;
}

function stringTest(a: unknown, b: unknown, test: (s: string, t: string) => boolean): boolean | undefined {
  return typeof a === 'string' && typeof b === 'string' ? test(a, b) : undefined;
}

/** Built-in functions. String functions on non-strings and ABS on a non-number yield undefined. */
export function callFunction(fn: FunctionName, args: readonly unknown[]): unknown {
  const [a, b] = args;
  switch (fn) {
    case 'IS_DEFINED':
      return a !== undefined;
    case 'STARTS_WITH':
      return stringTest(a, b, (s, t) => s.startsWith(t));
    case 'ENDS_WITH':
      return stringTest(a, b, (s, t) => s.endsWith(t));
    case 'CONTAINS':
      return stringTest(a, b, (s, t) => s.includes(t));
    case 'ABS':
      return typeof a === 'number' ? Math.abs(a) : undefined;
    case 'LOWER':
      return typeof a === 'string' ? a.toLowerCase() : undefined;
    case 'UPPER':
      return typeof a === 'string' ? a.toUpperCase() : undefined;
  }
}

function compileExpr(expr: Expr): Evaluator {
  switch (expr.kind) {
    case 'literal': {
      const value = expr.value;
      return () => value;
    }
    case 'field': {
      const path = expr.path;
      if (path.length === 1) {
        const key = path[0] as string;
        return (body) => (Object.hasOwn(body, key) ? body[key] : undefined);
      }
      return (body) => readField(body, path);
    }
    case 'not': {
      const operand = compileExpr(expr.operand);
      return (body) => operand(body) !== true;
    }
    case 'negate': {
      const operand = compileExpr(expr.operand);
      return (body) => {
        const v = operand(body);
        return typeof v === 'number' ? -v : undefined;
      };
    }
    case 'logical': {
      const left = compileExpr(expr.left);
      const right = compileExpr(expr.right);
      return expr.op === 'AND'
        ? (body) => left(body) === true && right(body) === true
        : (body) => left(body) === true || right(body) === true;
    }
    case 'compare': {
      const { op } = expr;
      const left = compileExpr(expr.left);
      const right = compileExpr(expr.right);
      return (body) => compareValues(op, left(body), right(body));
    }
    case 'arith': {
      const { op } = expr;
      const left = compileExpr(expr.left);
      const right = compileExpr(expr.right);
      return (body) => arithmetic(op, left(body), right(body));
    }
    case 'call': {
      const { fn } = expr;
      const args = expr.args.map(compileExpr);
      if (args.length === 1) {
        const only = args[0] as Evaluator;
        return (body) => callFunction(fn, [only(body)]);
      }
      return (body) => callFunction(fn, args.map((arg) => arg(body)));
    }
  }
}

/**
 * Compiles a WHERE condition into a predicate: a tree of closures built once, no code generation.
 * The predicate is true only when the condition evaluates to the boolean `true`; it never throws
 * (a body that is not a plain object, or a throwing getter, makes it false).
 */
export function compileCondition(expr: Expr): (body: Record<string, unknown>) => boolean {
  const evaluate = compileExpr(expr);
  return (body) => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return false;
    try {
      return evaluate(body) === true;
    } catch {
      return false;
    }
  };
}
