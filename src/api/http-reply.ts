import { STATUS_CODES, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ErrorCode } from '../errors/catalog.js';
import { ERROR_CATALOG } from '../errors/catalog.js';
import { isOutpostError } from '../errors/outpost-error.js';

/**
 * How the local API answers: JSON bodies, the status of each error code, and raw answers on a
 * socket the HTTP parser gave up on. Invariant: nothing here throws; a response that cannot be
 * written is abandoned by destroying its socket.
 */

/** Headers on every answer: no caching, no content sniffing. */
export const BASE_HEADERS: Readonly<OutgoingHttpHeaders> = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

const STATUS: Partial<Record<ErrorCode, number>> = {
  OUTPOST_E_API_NOT_FOUND: 404,
  OUTPOST_E_RUNTIME_UNKNOWN_POINT: 404,
  OUTPOST_E_API_METHOD: 405,
  OUTPOST_E_API_TOO_LARGE: 413,
  OUTPOST_E_API_CONTENT_TYPE: 415,
  OUTPOST_E_API_TIMEOUT: 408,
  OUTPOST_E_API_HOST: 403,
  OUTPOST_E_API_ORIGIN: 403,
  OUTPOST_E_API_UNAUTHORIZED: 401,
  OUTPOST_E_RUNTIME_NOT_WRITABLE: 409,
  OUTPOST_E_HAL_READ_ONLY: 409,
  OUTPOST_E_RUNTIME_INTERLOCKED: 409,
};

/** An error reply: status, JSON body and extra headers (Allow, WWW-Authenticate). Unknown errors are 500 without detail. */
export function errorReply(e: unknown): { status: number; body: { error: Record<string, unknown> }; headers: OutgoingHttpHeaders } {
  if (!isOutpostError(e)) return { status: 500, body: { error: { code: 'OUTPOST_E_API_REQUEST', message: 'internal error' } }, headers: {} };
  const status = STATUS[e.code] ?? (ERROR_CATALOG[e.code].input ? 400 : 502);
  const headers: OutgoingHttpHeaders = {};
  const allow = e.details['allow'];
  if (Array.isArray(allow)) headers['allow'] = allow.join(', ');
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="outpost"';
  const details = e.details;
  return {
    status,
    body: { error: { code: e.code, message: e.message, ...(Object.keys(details).length > 0 ? { details } : {}) } },
    headers,
  };
}

/** Sends a JSON answer unless one was already started (then the connection is cut). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  try {
    if (res.headersSent || res.writableEnded) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    const data = JSON.stringify(body);
    res.writeHead(status, { ...BASE_HEADERS, ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(data) });
    res.end(data);
  } catch {
    res.destroy();
  }
}

/** Answers on a bare socket (the parser refused the request, or a CONNECT) and closes it. */
export function sendRaw(socket: Socket, status: number, code: ErrorCode, message: string): void {
  try {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const data = JSON.stringify({ error: { code, message } });
    const head = [
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
      'content-type: application/json; charset=utf-8',
      `content-length: ${Buffer.byteLength(data)}`,
      'cache-control: no-store',
      'connection: close',
    ];
    socket.end(`${head.join('\r\n')}\r\n\r\n${data}`, () => socket.destroy());
  } catch {
    socket.destroy();
  }
}
