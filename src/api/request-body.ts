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

/** Reads the whole body, refusing more than `limit` bytes (413). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  checkDeclaredLength(req, limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    const chunk = c as Buffer;
    size += chunk.length;
    if (size > limit) throw new OutpostError('OUTPOST_E_API_TOO_LARGE', 'request body too large', { details: { limit } });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
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
