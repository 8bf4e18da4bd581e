import type { PointValue } from '../../hal/types.js';
import { OutpostError } from '../errors/outpost-error.js';
import type { ClientAcl } from './acl.js';

export interface WriteCommand {
  readonly value: PointValue;
  readonly id?: string;
  readonly replyTo?: string;
}

const MAX_ID = 128;
const MAX_REPLY_TO = 256;

/**
 * Parses a write command payload: a JSON object `{value, id?, replyTo?}` or a bare JSON scalar.
 * Throws OUTPOST_E_BROKER_COMMAND naming the problem; never runs anything.
 */
export function parseWriteCommand(payload: Buffer, maxBytes: number): WriteCommand {
  if (payload.length > maxBytes) {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', `command is larger than ${maxBytes} bytes (broker.limits.maxCommandBytes)`, { details: { bytes: payload.length, limit: maxBytes } });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', 'command payload is not JSON', { cause: e });
  }
  if (typeof doc === 'number' || typeof doc === 'boolean' || typeof doc === 'string') return { value: doc };
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', 'command must be a JSON object {"value": …} or a JSON scalar');
  }
  const o = doc as Record<string, unknown>;
  const unknown = Object.keys(o).filter((k) => k !== 'value' && k !== 'id' && k !== 'replyTo');
  if (unknown.length > 0) throw new OutpostError('OUTPOST_E_BROKER_COMMAND', 'command has unknown fields (allowed: value, id, replyTo)', { details: { fields: unknown.slice(0, 8) } });
  const value = o['value'];
  if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string') {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', 'command needs "value": a number, boolean or string');
  }
  const id = o['id'];
  if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID)) {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', `"id" must be a string of 1 to ${MAX_ID} characters`);
  }
  const replyTo = o['replyTo'];
  if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTo === '' || replyTo.length > MAX_REPLY_TO || /[+#\0]/.test(replyTo))) {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', `"replyTo" must be a topic of at most ${MAX_REPLY_TO} characters without wildcards`, { details: typeof id === 'string' ? { id } : {} });
  }
  return { value, ...(typeof id === 'string' ? { id } : {}), ...(typeof replyTo === 'string' ? { replyTo } : {}) };
}

/** Reply namespace of a client: `<prefix>/replies/<username>/`, or `<prefix>/replies/_anonymous/` (no username can start with `_`). */
export function replyNamespace(prefix: string, username: string | null): string {
  return `${prefix}/replies/${username ?? '_anonymous'}/`;
}

/**
 * Checks a `replyTo` topic: it must lie in the sender's own reply namespace `<prefix>/replies/<username>/…`
 * (never a reading, event, status or command topic, nor a topic another application owns or waits on
 * for its own replies) and the sender must be allowed to read it. Throws OUTPOST_E_BROKER_REPLY_TO.
 */
export function checkReplyTo(replyTo: string, prefix: string, acl: ClientAcl): void {
  const ns = replyNamespace(prefix, acl.username);
  if (!replyTo.startsWith(ns) || replyTo.slice(ns.length).split('/').some((l) => l === '')) {
    throw new OutpostError('OUTPOST_E_BROKER_REPLY_TO', `"replyTo" must be a topic under ${ns}`, { details: { replyTo } });
  }
  if (!acl.mayRead(replyTo)) {
    throw new OutpostError('OUTPOST_E_BROKER_REPLY_TO', '"replyTo" is a topic this client may not subscribe to', { details: { replyTo } });
  }
}
