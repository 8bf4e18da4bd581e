/**
 * Syntax tree of a route: `FROM <source> [WHERE <condition>] INTO <sink>`.
 * Every expression node carries the 1-based column of its first character (operators: the operator's column),
 * so tools can point at the part of a route they report on.
 */

/** One segment of a source pattern: a literal name, or a `{name}` placeholder matching any one segment. */
export type SourceSegment =
  | { readonly kind: 'literal'; readonly value: string }
  | { readonly kind: 'param'; readonly name: string };

/**
 * A parsed source path such as `/readings/{device}/*`. `segments` excludes the trailing `*`;
 * `wildcard` is true when the pattern ends with `*` (one or more further segments).
 */
export interface SourcePattern {
  readonly text: string;
  readonly segments: readonly SourceSegment[];
  readonly wildcard: boolean;
}

/** Where matching messages go: the cloud uplink, or the local broker under a topic template with `{field}` placeholders. */
export type SinkSpec = { readonly type: 'upstream' } | { readonly type: 'broker'; readonly topic: string };

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>=';
export type ArithOp = '+' | '-' | '*' | '/' | '%';
export type LogicalOp = 'AND' | 'OR';
export type FunctionName = 'IS_DEFINED' | 'STARTS_WITH' | 'ENDS_WITH' | 'CONTAINS' | 'ABS' | 'LOWER' | 'UPPER';

/** Number of arguments of each built-in function (names are matched case-insensitively). */
export const FUNCTION_ARITY: Readonly<Record<FunctionName, number>> = Object.freeze({
  IS_DEFINED: 1,
  STARTS_WITH: 2,
  ENDS_WITH: 2,
  CONTAINS: 2,
  ABS: 1,
  LOWER: 1,
  UPPER: 1,
});

export type LiteralValue = number | string | boolean | null;

export type Expr =
  | { readonly kind: 'literal'; readonly value: LiteralValue; readonly column: number }
  /** A body field; `path` has one entry per dotted part (`$body.` already stripped). */
  | { readonly kind: 'field'; readonly path: readonly string[]; readonly column: number }
  | { readonly kind: 'not'; readonly operand: Expr; readonly column: number }
  | { readonly kind: 'negate'; readonly operand: Expr; readonly column: number }
  | { readonly kind: 'logical'; readonly op: LogicalOp; readonly left: Expr; readonly right: Expr; readonly column: number }
  | { readonly kind: 'compare'; readonly op: CompareOp; readonly left: Expr; readonly right: Expr; readonly column: number }
  | { readonly kind: 'arith'; readonly op: ArithOp; readonly left: Expr; readonly right: Expr; readonly column: number }
  | { readonly kind: 'call'; readonly fn: FunctionName; readonly args: readonly Expr[]; readonly column: number };

export interface RouteAst {
  readonly source: SourcePattern;
  /** The WHERE condition, or null when the route has none (every message from the source matches). */
  readonly where: Expr | null;
  readonly sink: SinkSpec;
}
