import { createServer, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { PointValue } from '../../hal/types.js';
import { OutpostError, describeCause } from '../errors/outpost-error.js';
import type { HealthCheck } from '../health/health-monitor.js';
import type { PointSnapshot } from '../pipeline/pipeline.js';
import { errorReply, sendJson, sendRaw, BASE_HEADERS } from './http-reply.js';
import { LogThrottle } from './log-throttle.js';
import { checkDeclaredLength, parseWriteBody, readBody, settleUnreadBody } from './request-body.js';
import { bearerToken, hostAllowed, isJsonContentType, isLoopbackAddress, originAllowed, tokenRequired, tokensEqual } from './request-policy.js';
import { matchRoute, parseTarget, ROUTE_METHODS, type RouteMatch } from './request-target.js';
import type { ApiConfigType } from './schema.js';

/** What the API serves; implemented by the runtime. */
export interface ApiBackend {
  health(): { ok: boolean; checks: HealthCheck[] };
  metrics(): string;
  points(): PointSnapshot[];
  point(id: string): PointSnapshot | undefined;
  info(): Record<string, unknown>;
  write(pointId: string, value: PointValue, origin: string): Promise<void>;
}

/** The `api:` configuration plus the bearer token read from the data directory. */
export type ApiServerOptions = Omit<ApiConfigType, 'enabled'> & { readonly token: string };

/** JSON form of a point snapshot: quality flattened to `quality` + `reason`, as readings are; `heldBy` when an interlock holds it. */
export function pointJson(p: PointSnapshot): Record<string, unknown> {
  return {
    point: p.point,
    device: p.device,
    value: p.value,
    quality: p.quality.status,
    ...(p.quality.status !== 'good' ? { reason: p.quality.reason } : {}),
    sourceTime: p.sourceTime,
    seq: p.seq,
    ...(p.units ? { units: p.units } : {}),
    ...(p.heldBy ? { heldBy: p.heldBy } : {}),
  };
}

/**
 * The local HTTP API: GET/HEAD /healthz, /metrics, /api/info, /api/points, /api/points/<id>;
 * POST /api/points/<id>/write with `{"value": …}` (docs/api.md, docs/security-api.md).
 * Invariants: no request, however malformed, reaches an uncaught exception: every handler runs
 * inside one guard that answers a JSON error `{error: {code, message, details?}}` (never a stack)
 * and logs it (throttled); parser-level errors are answered on the socket; /api requests pass the
 * Host and Origin checks, writes also the bearer token (unless `requireToken: false` on loopback)
 * and a JSON content type; bodies are bounded by `maxBodyBytes`, requests by `requestTimeoutMs`,
 * connections by `maxConnections`. /healthz and /metrics need no token.
 */
export class ApiServer {
  private server: Server | null = null;
  /** Bound to a non-loopback address: every /api request needs the token. */
  private readsNeedToken = false;
  private readonly inFlight = new WeakMap<Socket, ServerResponse>();
  /** Requests sent with `Expect: 100-continue`: they get 100 Continue only once every check passed. */
  private readonly expecting = new WeakSet<IncomingMessage>();
  private readonly continued = new WeakSet<IncomingMessage>();
  private readonly throttle: LogThrottle;
  private connections = 0;
  private readonly stats = { requests_total: 0, refused_total: 0, errors_total: 0, client_errors_total: 0, dropped_connections_total: 0 };

  constructor(
    private readonly options: ApiServerOptions,
    private readonly backend: ApiBackend,
    private readonly deps: { logger: Logger; monotonic: () => number },
  ) {
    this.throttle = new LogThrottle(deps.monotonic);
  }

  async start(): Promise<{ host: string; port: number }> {
    const o = this.options;
    const server = createServer(
      // requireHostHeader off: a request without Host reaches the guard and gets its JSON refusal (OUTPOST_E_API_HOST on /api).
      { requestTimeout: o.requestTimeoutMs, headersTimeout: o.requestTimeoutMs, connectionsCheckingInterval: 1000, keepAliveTimeout: 5000, maxHeaderSize: 16 * 1024, requireHostHeader: false },
      (req, res) => this.onRequest(req, res),
    );
    server.maxConnections = o.maxConnections;
    // Backstop for sockets the request timeout does not cover; later than it, so a stalled request still gets its 408.
    server.timeout = o.requestTimeoutMs + 5000;
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket));
    server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      this.stats.refused_total++;
      sendRaw(socket, 405, 'OUTPOST_E_API_METHOD', 'CONNECT is not supported');
    });
    server.on('drop', () => this.stats.dropped_connections_total++);
    server.on('connection', (socket: Socket) => {
      this.connections++;
      socket.once('close', () => this.connections--);
    });
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      this.expecting.add(req);
      this.onRequest(req, res);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new OutpostError('OUTPOST_E_RUNTIME_START', `local API cannot listen on ${o.host}:${o.port}`, { cause: e, details: { code: e.code } })),
      );
      server.listen(o.port, o.host, () => resolve());
    });
    server.on('error', (e) => this.deps.logger.error({ err: describeCause(e) }, 'api server error'));
    const a = server.address() as AddressInfo;
    this.readsNeedToken = !isLoopbackAddress(a.address);
    if (this.readsNeedToken) {
      this.deps.logger.warn({ host: a.address, port: a.port }, 'local API bound to a non-loopback address: every /api request needs the bearer token; prefer a firewall or loopback');
    } else if (!o.requireToken) {
      this.deps.logger.warn({ host: a.address, port: a.port }, 'local API writes need no token (api.requireToken: false): any local process can write outputs');
    }
    return { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats, connections_current: this.connections };
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests_total++;
    const socket = req.socket;
    this.inFlight.set(socket, res);
    res.once('close', () => this.inFlight.get(socket) === res && this.inFlight.delete(socket));
    res.on('error', (e) => this.deps.logger.debug({ err: describeCause(e) }, 'api response error'));
    req.on('error', () => undefined);
    this.handle(req, res)
      .catch((e: unknown) => this.fail(req, res, e))
      .catch(() => res.destroy());
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = parseTarget(req.url);
    const route = matchRoute(target.segments);
    if (!route) throw new OutpostError('OUTPOST_E_API_NOT_FOUND', 'no such route', { details: { path: target.path.slice(0, 200) } });
    const method = req.method ?? '';
    const allow = ROUTE_METHODS[route.name];
    if (!allow.includes(method)) throw new OutpostError('OUTPOST_E_API_METHOD', `${route.name === 'write' ? 'writes take POST' : 'this route takes GET or HEAD'}`, { details: { method: method.slice(0, 20), allow } });
    const cors = route.name === 'healthz' || route.name === 'metrics' ? {} : this.checkCaller(req, route, method);
    if (method === 'OPTIONS') return this.preflight(res, allow, cors);
    switch (route.name) {
      case 'healthz': {
        const h = this.backend.health();
        return sendJson(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unhealthy', checks: h.checks });
      }
      case 'metrics': {
        const text = this.backend.metrics();
        res.writeHead(200, { ...BASE_HEADERS, 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'info':
        return sendJson(res, 200, this.backend.info(), cors);
      case 'points':
        return sendJson(res, 200, { points: this.backend.points().map(pointJson) }, cors);
      case 'point': {
        const p = this.backend.point(route.point as string);
        if (!p) throw new OutpostError('OUTPOST_E_RUNTIME_UNKNOWN_POINT', 'no such point', { details: { point: (route.point as string).slice(0, 64) } });
        return sendJson(res, 200, pointJson(p), cors);
      }
      case 'write': {
        if (!isJsonContentType(req.headers['content-type'])) {
          throw new OutpostError('OUTPOST_E_API_CONTENT_TYPE', 'writes must be sent as Content-Type: application/json', { details: { contentType: (req.headers['content-type'] ?? '').slice(0, 100) } });
        }
        checkDeclaredLength(req, this.options.maxBodyBytes);
        if (this.expecting.has(req)) {
          this.continued.add(req);
          res.writeContinue();
        }
        const value = parseWriteBody(await readBody(req, this.options.maxBodyBytes));
        const id = route.point as string;
        await this.backend.write(id, value, 'api');
        return sendJson(res, 200, { point: id, ok: true, value }, cors);
      }
    }
  }

  /**
   * Host (DNS rebinding), Origin (CSRF) and bearer token checks of an /api request; returns the CORS
   * headers of an allowed Origin. Preflights need no token: browsers send none.
   */
  private checkCaller(req: IncomingMessage, route: RouteMatch, method: string): OutgoingHttpHeaders {
    const o = this.options;
    const host = req.headers.host;
    if (!hostAllowed(host, req.socket.localAddress, o.allowedHosts)) {
      throw new OutpostError('OUTPOST_E_API_HOST', 'Host header does not name this gateway (add the name to api.allowedHosts)', { details: { host: (host ?? '').slice(0, 100) } });
    }
    const origin = req.headers.origin;
    if (!originAllowed(origin, o.allowedOrigins)) {
      throw new OutpostError('OUTPOST_E_API_ORIGIN', 'requests from this browser origin are not allowed (api.allowedOrigins)', { details: { origin: (origin ?? '').slice(0, 100) } });
    }
    const cors: OutgoingHttpHeaders = origin !== undefined ? { 'access-control-allow-origin': origin, vary: 'Origin' } : {};
    if (method === 'OPTIONS') return cors;
    if (tokenRequired(route.name === 'write' ? 'write' : 'read', { requireToken: o.requireToken, loopbackBind: !this.readsNeedToken })) {
      const presented = bearerToken(req.headers.authorization);
      if (presented === null || !tokensEqual(presented, o.token)) {
        throw new OutpostError('OUTPOST_E_API_UNAUTHORIZED', presented === null ? 'this request needs Authorization: Bearer <token>' : 'the bearer token is not this gateway\'s', {
          details: { tokenFile: '<gateway.dataDir>/api-token' },
        });
      }
    }
    return cors;
  }

  private preflight(res: ServerResponse, allow: readonly string[], cors: OutgoingHttpHeaders): void {
    const headers: OutgoingHttpHeaders = { ...BASE_HEADERS, allow: allow.join(', '), 'content-length': 0, ...cors };
    if (cors['access-control-allow-origin'] !== undefined) {
      Object.assign(headers, { 'access-control-allow-methods': allow.join(', '), 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '600' });
    }
    res.writeHead(204, headers);
    res.end();
  }

  /** The guard: every error of a request ends here, is answered as JSON and logged (throttled). */
  private fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const reply = errorReply(e);
    if (reply.status >= 500) this.stats.errors_total++;
    else this.stats.refused_total++;
    const admit = this.throttle.admit();
    if (admit.log) {
      const fields = { status: reply.status, method: (req.method ?? '').slice(0, 20), path: (req.url ?? '').slice(0, 200), remote: req.socket.remoteAddress, err: describeCause(e), ...(admit.suppressed > 0 ? { suppressed: admit.suppressed } : {}) };
      if (reply.status >= 500) this.deps.logger.error(fields, 'api request failed');
      else this.deps.logger.warn(fields, 'api request refused');
    }
    // A body left unread (refused early, too large) is drained within bounds, unless the client was never asked to send it.
    const headers = { ...reply.headers, ...settleUnreadBody(req, !this.expecting.has(req) || this.continued.has(req)) };
    sendJson(res, reply.status, reply.body, headers);
  }

  /** Requests the HTTP parser refused (bad request line or method, huge headers, timeouts). */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    this.stats.client_errors_total++;
    const code = err.code ?? '';
    // A client that hangs up mid-request is counted, not logged.
    if (code !== 'ECONNRESET' && code !== 'EPIPE' && code !== 'HPE_INVALID_EOF_STATE') {
      const admit = this.throttle.admit();
      if (admit.log) this.deps.logger.warn({ code, remote: socket.remoteAddress, ...(admit.suppressed > 0 ? { suppressed: admit.suppressed } : {}) }, 'api connection refused by the HTTP parser');
    }
    const [status, ecode, message] =
      code === 'HPE_HEADER_OVERFLOW'
        ? ([431, 'OUTPOST_E_API_TOO_LARGE', 'request headers too large'] as const)
        : code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? ([408, 'OUTPOST_E_API_TIMEOUT', 'request not received in time (api.requestTimeoutMs)'] as const)
          : code === 'HPE_INVALID_METHOD'
            ? ([501, 'OUTPOST_E_API_METHOD', 'unknown method'] as const)
            : ([400, 'OUTPOST_E_API_REQUEST', 'malformed HTTP request'] as const);
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      socket.destroy();
      return;
    }
    const res = this.inFlight.get(socket);
    if (!res) return sendRaw(socket, status, ecode, message);
    if (res.req.complete) {
      // The error is about bytes after a complete request (e.g. a body sent without a length): that request still gets its answer, then the connection closes.
      if (!res.headersSent) res.setHeader('connection', 'close');
      res.once('finish', () => socket.destroy());
      return;
    }
    if (!res.headersSent && !res.writableEnded) sendJson(res, status, { error: { code: ecode, message } }, { connection: 'close' });
    else socket.destroy();
  }
}
