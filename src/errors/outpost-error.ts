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

/** A short, single-line description of any thrown value, for logs (never used to build a new message). */
export function describeCause(e: unknown): { code?: string; message: string } {
  if (e instanceof OutpostError) return { code: e.code, message: e.message };
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === undefined ? { message: e.message } : { code, message: e.message };
  }
  return { message: String(e) };
}
