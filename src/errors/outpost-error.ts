import { ERROR_CATALOG, type ErrorCode } from './catalog.js';

/**
 * The one error class of Outpost.
 * Invariants: `code` is a key of the catalog (stable, documented in docs/errors.md);
 * `message` is written by the thrower and never embeds another error's message;
 * the underlying error, if any, is kept in `cause`; `details` holds structured data for logs and API replies.
 */
export class OutpostError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OutpostError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** Exit code a CLI uses for this error: 2 for bad input (config, arguments, files), 1 otherwise. */
  get exitCode(): number {
    return ERROR_CATALOG[this.code].input ? 2 : 1;
  }

  toJSON(): { code: ErrorCode; message: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, details: { ...this.details } };
  }
}

export function isOutpostError(e: unknown, code?: ErrorCode): e is OutpostError {
  return e instanceof OutpostError && (code === undefined || e.code === code);
}

/** What a log line or a CLI shows of a thrown value and its causes: code, one-line message, details, the cause below it. */
export interface CauseDescription {
  readonly code?: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: CauseDescription;
}

/** Causes deeper than this are cut (a cause chain is never this long unless it loops). */
const MAX_CAUSE_DEPTH = 8;
/** Longest message kept per link: peer libraries (node-opcua) put whole diagnostics into messages. */
const MAX_CAUSE_MESSAGE = 600;
const SECRET_KEY = /pass(word|phrase)?|secret|token|private|authorization|^key$/i;

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_CAUSE_MESSAGE ? `${flat.slice(0, MAX_CAUSE_MESSAGE)}…` : flat;
}

function safeDetails(details: Readonly<Record<string, unknown>>): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) out[k] = SECRET_KEY.test(k) ? '[redacted]' : v;
  return Object.keys(out).length > 0 ? out : undefined;
}

function describeOne(e: unknown): { code?: string; message: string; details?: Record<string, unknown> } {
  if (e instanceof OutpostError) {
    const details = safeDetails(e.details);
    return details ? { code: e.code, message: oneLine(e.message), details } : { code: e.code, message: oneLine(e.message) };
  }
  if (e instanceof Error) {
    const raw = (e as NodeJS.ErrnoException).code;
    const code = typeof raw === 'string' || typeof raw === 'number' ? String(raw) : undefined;
    let message = e.message;
    // Node's connect() to a name with several addresses throws an AggregateError with an empty message.
    if (message === '' && e instanceof AggregateError) message = e.errors.map((x) => (x instanceof Error ? x.message : String(x))).join('; ');
    if (message === '') message = e.name;
    else if (e.name !== 'Error' && e.name !== 'OutpostError' && code === undefined) message = `${e.name}: ${message}`;
    return code === undefined ? { message: oneLine(message) } : { code, message: oneLine(message) };
  }
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') {
    const o = e as { code?: unknown; message: string };
    return typeof o.code === 'string' ? { code: o.code, message: oneLine(o.message) } : { message: oneLine(o.message) };
  }
  return { message: oneLine(String(e)) };
}

/**
 * A single-line description of any thrown value and, nested under `cause`, of what caused it
 * (bounded depth), for logs and for the CLI. Never used to build a new error's message.
 */
export function describeCause(e: unknown): CauseDescription {
  const chain: unknown[] = [];
  for (let cur: unknown = e; cur !== undefined && cur !== null && chain.length < MAX_CAUSE_DEPTH && !chain.includes(cur); cur = (cur as { cause?: unknown }).cause) {
    chain.push(cur);
    if (typeof cur !== 'object') break;
  }
  let below: CauseDescription | undefined;
  for (const link of chain.reverse()) {
    const d = describeOne(link);
    below = below ? { ...d, cause: below } : d;
  }
  return below ?? { message: String(e) };
}

/** `CODE: message ← CODE: message ← …`: the whole chain of a thrown value on one line (what the CLI prints). */
export function formatCauseChain(e: unknown): string {
  const parts: string[] = [];
  for (let d: CauseDescription | undefined = describeCause(e); d; d = d.cause) {
    parts.push(d.code === undefined || d.message.startsWith(d.code) ? d.message : `${d.code}: ${d.message}`);
  }
  return parts.join(' ← ');
}
