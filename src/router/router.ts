import type { Logger } from 'pino';
import type { RouteConfig } from '../config/schema.js';
import type { Message } from '../model/reading.js';
import { compileRoute, renderTopic, type CompiledRoute } from '../routes/index.js';

/** What the router delivers to. */
export interface RouteSinks {
  /** A message for the upstream, with the winning route's id, priority and TTL. */
  upstream(message: Message, route: { id: string; priority: number; ttlSeconds: number }): void;
  /** A message for a local broker topic. */
  broker(topic: string, message: Message, route: string): void;
}

interface ActiveRoute {
  readonly config: RouteConfig;
  readonly compiled: CompiledRoute;
  matched: number;
}

/**
 * Applies the configured routes to every message.
 * Invariants: routes are compiled once; a message reaches the upstream at most once even when
 * several routes send it there (the highest priority — lowest number — wins, then the longest
 * TTL), as edgeHub does; each broker route publishes its own topic.
 */
export class Router {
  private readonly routes: ActiveRoute[];

  constructor(
    routes: readonly RouteConfig[],
    private readonly sinks: RouteSinks,
    private readonly logger: Logger,
  ) {
    this.routes = routes.map((r) => ({ config: r, compiled: compileRoute(r.route), matched: 0 }));
  }

  dispatch(message: Message): void {
    let up: RouteConfig | null = null;
    const body = message.body as unknown as Record<string, unknown>;
    for (const r of this.routes) {
      if (!r.compiled.matchesSource(message.source)) continue;
      if (r.compiled.where !== null && !r.compiled.where(body)) continue;
      r.matched++;
      const sink = r.compiled.sink;
      if (sink.type === 'upstream') {
        if (up === null || r.config.priority < up.priority || (r.config.priority === up.priority && r.config.ttlSeconds > up.ttlSeconds)) {
          up = r.config;
        }
      } else {
        this.sinks.broker(renderTopic(sink.topic, body), message, r.config.id);
      }
    }
    if (up !== null) this.sinks.upstream(message, { id: up.id, priority: up.priority, ttlSeconds: up.ttlSeconds });
  }

  /** Messages matched per route, for /metrics. */
  counts(): Array<{ route: string; sink: string; matched: number }> {
    return this.routes.map((r) => ({ route: r.config.id, sink: r.compiled.sink.type, matched: r.matched }));
  }

  describe(): void {
    for (const r of this.routes) this.logger.debug({ route: r.config.id, text: r.config.route }, 'route active');
  }
}
