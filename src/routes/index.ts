import type { RouteAst, SinkSpec, SourcePattern } from './ast.js';
import { compileCondition } from './evaluate.js';
import { parseRoute } from './parser.js';
import { sourceMatcher } from './source.js';

export type {
  ArithOp,
  CompareOp,
  Expr,
  FunctionName,
  LiteralValue,
  LogicalOp,
  RouteAst,
  SinkSpec,
  SourcePattern,
  SourceSegment,
} from './ast.js';
export { parseRoute } from './parser.js';
export { renderTopic } from './topic.js';

/**
 * A route ready for the message path: parsed and compiled once, then applied to every message.
 * `matchesSource` tests a message source path (`/readings/{device}/{point}`, `/events/{rule}`);
 * `where` is null when the route has no WHERE clause; both never throw.
 * For a broker sink, publish under `renderTopic(sink.topic, body)`.
 */
export interface CompiledRoute {
  readonly text: string;
  readonly source: SourcePattern;
  matchesSource(path: string): boolean;
  readonly where: ((body: Record<string, unknown>) => boolean) | null;
  readonly sink: SinkSpec;
}

/** Parses and compiles a route; throws OUTPOST_E_ROUTE_SYNTAX (message `at column N: …`) on bad text. */
export function compileRoute(text: string): CompiledRoute {
  const ast: RouteAst = parseRoute(text);
  return Object.freeze({
    text,
    source: ast.source,
    matchesSource: sourceMatcher(ast.source),
    where: ast.where === null ? null : compileCondition(ast.where),
    sink: ast.sink,
  });
}
