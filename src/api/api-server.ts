import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { PointValue } from '../../hal/types.js';
import { OutpostError, isOutpostError } from '../errors/outpost-error.js';
import type { HealthCheck } from '../health/health-monitor.js';
import type { PointSnapshot } from '../pipeline/pipeline.js';

/** What the API serves; implemented by the runtime. */
export interface ApiBackend {
  health(): { ok: boolean; checks: HealthCheck[] };
  metrics(): string;
  points(): PointSnapshot[];
  info(): Record<string, unknown>;
  write(pointId: string, value: PointValue, origin: string): Promise<void>;
}

const MAX_BODY = 64 * 1024;

/** JSON form of a point snapshot: quality flattened to `quality` + `reason`, as readings are. */
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
  };
}

/**
 * The local HTTP API: GET /healthz, /metrics, /api/info, /api/points, /api/points/<id>;
 * POST /api/points/<id>/write with `{"value": …}`. Bound to loopback by default.
 * Invariants: every response is JSON except /metrics (Prometheus text); errors answer
 * `{error: {code, message}}` with 400/404/409/500 and never leak a stack.
 */
export class ApiServer {
  private server: Server | null = null;

  constructor(
    private readonly options: { host: string; port: number },
    private readonly backend: ApiBackend,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new OutpostError('OUTPOST_E_RUNTIME_START', `local API cannot listen on ${this.options.host}:${this.options.port}`, { cause: e, details: { code: e.code } })),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const a = server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    try {
      if (req.method === 'GET' && url.pathname === '/healthz') {
        const h = this.backend.health();
        return send(res, h.ok ? 200 : 503, { status: h.ok ? 'ok' : 'unhealthy', checks: h.checks });
      }
      if (req.method === 'GET' && url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(this.backend.metrics());
        return;
      }
      if (req.method === 'GET' && url.pathname === '/api/info') return send(res, 200, this.backend.info());
      if (parts[0] === 'api' && parts[1] === 'points') {
        if (req.method === 'GET' && parts.length === 2) return send(res, 200, { points: this.backend.points().map(pointJson) });
        const id = parts[2] as string;
        if (req.method === 'GET' && parts.length === 3) {
          const p = this.backend.points().find((x) => x.point === id);
          if (!p) throw new OutpostError('OUTPOST_E_RUNTIME_UNKNOWN_POINT', 'no such point', { details: { point: id } });
          return send(res, 200, pointJson(p));
        }
        if (req.method === 'POST' && parts.length === 4 && parts[3] === 'write') {
          const body = await readJson(req);
          const value = (body as Record<string, unknown> | null)?.['value'];
          if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string') {
            throw new OutpostError('OUTPOST_E_API_REQUEST', 'body must be {"value": number | boolean | string}');
          }
          await this.backend.write(id, value, 'api');
          return send(res, 200, { point: id, ok: true, value });
        }
      }
      send(res, 404, { error: { code: 'OUTPOST_E_API_REQUEST', message: `no route for ${req.method ?? 'GET'} ${url.pathname}` } });
    } catch (e) {
      const status = !isOutpostError(e)
        ? 500
        : e.code === 'OUTPOST_E_RUNTIME_UNKNOWN_POINT'
          ? 404
          : e.code === 'OUTPOST_E_RUNTIME_NOT_WRITABLE' || e.code === 'OUTPOST_E_HAL_READ_ONLY'
            ? 409
            : e.exitCode === 2
              ? 400
              : 502;
      if (status >= 500) this.logger.error({ err: isOutpostError(e) ? e.toJSON() : String(e), path: url.pathname }, 'api request failed');
      send(res, status, { error: isOutpostError(e) ? { code: e.code, message: e.message } : { code: 'OUTPOST_E_API_REQUEST', message: 'internal error' } });
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new OutpostError('OUTPOST_E_API_REQUEST', 'request body too large', { details: { limit: MAX_BODY } });
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new OutpostError('OUTPOST_E_API_REQUEST', 'request body is not JSON', { cause: e });
  }
}
