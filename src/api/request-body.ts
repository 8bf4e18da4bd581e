import type { IncomingMessage } from 'node:http';
import type { PointValue } from '../../hal/types.js';
import { OutpostError } from '../errors/outpost-error.js';

/**
 * Reading and validating request bodies of the local API. Invariants: never buffers more than
 * `limit` bytes (a declared Content-Length over the limit is refused before reading); every
 * refusal is an OutpostError with an input code (413 or 400), never another exception.
 */

/** Refuses (413) a request whose declared Content-Length is over `limit`, before anything is read. */
export function checkDeclaredLength(req: IncomingMessage, limit: number): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    throw new OutpostError('OUTPOST_E_API_TOO_LARGE', 'request body too large', { details: { limit, declared: Number(declared) } });
  }
}

/**
 * Reads the whole body, refusing more than `limit` bytes (413) as soon as it is exceeded. The stream
 * is never destroyed here (that would reset the connection before the answer is read): what is left
 * is for `settleUnreadBody`.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  checkDeclaredLength(req, limit);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (e: OutpostError | null) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      if (e) reject(e);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) finish(new OutpostError('OUTPOST_E_API_TOO_LARGE', 'request body too large', { details: { limit } }));
      else chunks.push(c);
    };
    const onEnd = () => finish(null);
    const onClose = () => finish(new OutpostError('OUTPOST_E_API_REQUEST', 'request body ended early (connection closed)'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
  });
}

/** How much of an unread body is read and thrown away after an early answer, so the client gets to read that answer. */
export const DRAIN_LIMIT = 4 * 1024 * 1024;

/**
 * After an answer sent before the body was read: keeps reading and discarding the rest of the body,
 * up to DRAIN_LIMIT bytes (then the connection is cut), so that the client reads the answer instead
 * of a connection reset ("lingering close"). Returns the headers the answer needs: `connection:
 * close` when the body is not worth draining (declared over the limit, or never asked for with
 * `Expect: 100-continue`).
 */
export function settleUnreadBody(req: IncomingMessage, drain: boolean): { connection?: string } {
  if (req.complete) return {};
  const declared = Number(req.headers['content-length'] ?? 0);
  if (!drain || declared > DRAIN_LIMIT) return { connection: 'close' };
  let drained = 0;
  req.on('data', (c: Buffer) => {
    drained += c.length;
    if (drained > DRAIN_LIMIT) req.socket.destroy();
  });
  req.resume();
  return {};
}

/**
 * The value of a write request: a JSON object with exactly one key `value` holding a finite number,
 * a boolean or a string. Anything else is refused (400) with a message naming the problem.
 */
export function parseWriteBody(body: Buffer): PointValue {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (e) {
    throw new OutpostError('OUTPOST_E_API_REQUEST', 'request body is not UTF-8 JSON', { cause: e });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new OutpostError('OUTPOST_E_API_REQUEST', 'body must be a JSON object {"value": …}');
  }
  const keys = Object.keys(doc);
  const extra = keys.filter((k) => k !== 'value');
  if (extra.length > 0) throw new OutpostError('OUTPOST_E_API_REQUEST', 'body has keys other than "value"', { details: { keys: extra.slice(0, 10).map((k) => k.slice(0, 64)) } });
  if (!keys.includes('value')) throw new OutpostError('OUTPOST_E_API_REQUEST', 'body needs "value"');
  const value = (doc as { value: unknown }).value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new OutpostError('OUTPOST_E_API_REQUEST', '"value" must be a finite number (1e999 and the like overflow)');
    return value;
  }
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  throw new OutpostError('OUTPOST_E_API_REQUEST', '"value" must be a number, boolean or string', { details: { type: value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value } });
}
