import { Type, type Static } from '@sinclair/typebox';
import AjvModule from 'ajv';
import type { Logger } from 'pino';
import { systemClock, type Clock } from '../../hal/clock.js';
import type { CommandRegistry } from '../commands/command.js';
import { OutpostError, describeCause, isOutpostError } from '../errors/outpost-error.js';
import { LogLimiter } from '../log/log-limiter.js';
import { RateLimiter } from './rate-limiter.js';

const Ajv = AjvModule.default;

/** A command from the cloud (JSON), e.g. `{"id":"42","name":"points.write","params":{"point":"v1","value":3}}`. */
export const CommandEnvelope = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, description: 'Correlation id, echoed in every reply.' }),
    name: Type.String({ pattern: '^[a-z][A-Za-z0-9_.-]{0,63}$' }),
    params: Type.Optional(Type.Unknown()),
  },
  { additionalProperties: false },
);
export type CommandRequest = Static<typeof CommandEnvelope>;

/** What goes back: `accepted`, then any number of `progress`, then `ok` or `error`. */
export interface CommandReply {
  readonly id: string | null;
  readonly name?: string;
  readonly status: 'accepted' | 'progress' | 'ok' | 'error';
  readonly percent?: number;
  readonly state?: string;
  readonly detail?: Record<string, unknown>;
  readonly result?: unknown;
  readonly error?: { readonly code: string; readonly message: string; readonly details?: Record<string, unknown> };
}

/** Bounds on what one dispatcher accepts (`upstream.commandLimits` for the uplink). */
export interface CommandLimits {
  /** A larger request (the whole envelope) is refused before it is parsed. */
  readonly maxBytes: number;
  /** Deeper JSON nesting is refused (`{"a":{"b":…}}` has depth 2). */
  readonly maxDepth: number;
  /** Commands running at once; further ones are refused with OUTPOST_E_UPLINK_COMMAND_BUSY. */
  readonly maxConcurrent: number;
  /** Commands started per second (burst: twice that); 0 for no cap. Beyond: OUTPOST_E_UPLINK_COMMAND_BUSY. */
  readonly ratePerSec: number;
  /** How many accepted command ids are remembered; a repeated one is refused with OUTPOST_E_UPLINK_COMMAND_DUPLICATE. */
  readonly rememberIds: number;
}

export const DEFAULT_COMMAND_LIMITS: CommandLimits = { maxBytes: 64 * 1024, maxDepth: 32, maxConcurrent: 4, ratePerSec: 10, rememberIds: 1024 };

/**
 * Validates cloud commands and runs them through the runtime's CommandRegistry, relaying progress.
 * Invariants: `handle*` and `run` never throw and end with exactly one `ok` or `error` reply for a
 * request they could read; a request larger than `maxBytes` or nested deeper than `maxDepth` is refused
 * before any handler sees it; at most `maxConcurrent` commands run at once and at most `ratePerSec`
 * start per second (others get an error reply and do not run); an id accepted once is never run again
 * while among the last `rememberIds` accepted; refusals are logged at most once per 10 s (with a count),
 * so a flood cannot flood the journal; a reply that cannot be sent is logged, never fatal.
 */
export class CommandDispatcher {
  private readonly check = new Ajv({ allErrors: true, strict: false }).compile(CommandEnvelope);
  private running = 0;
  private readonly abort = new AbortController();
  readonly limits: CommandLimits;
  private readonly rate: RateLimiter;
  private readonly seen = new Set<string>();
  private readonly quiet: LogLimiter;

  constructor(
    private readonly registry: CommandRegistry,
    private readonly logger: Logger,
    limits: number | Partial<CommandLimits> = {},
    clock: Clock = systemClock,
  ) {
    this.limits = { ...DEFAULT_COMMAND_LIMITS, ...(typeof limits === 'number' ? { maxConcurrent: limits } : limits) };
    this.rate = new RateLimiter(this.limits.ratePerSec, clock, this.limits.ratePerSec * 2);
    this.quiet = new LogLimiter(clock);
  }

  /** Parses a JSON envelope; throws OutpostError (OUTPOST_E_UPLINK_COMMAND) naming the problem. */
  parse(payload: Buffer | string): CommandRequest {
    return this.validate(this.readJson(payload, 'command'));
  }

  /**
   * Builds a request from a transport's own envelope (an Azure direct method: name and id in the
   * topic, parameters as the payload) with the same size, depth and shape checks as `parse`.
   */
  parseMethod(id: string, name: string, payload: Buffer): CommandRequest {
    const params = payload.length === 0 ? undefined : this.readJson(payload, 'method payload');
    return this.validate({ id, name, ...(params === undefined || params === null ? {} : { params }) });
  }

  /** Reads a raw request and runs it; every outcome becomes a reply. */
  async handleRaw(payload: Buffer, send: (reply: CommandReply) => void): Promise<void> {
    let req: CommandRequest;
    try {
      req = this.parse(payload);
    } catch (e) {
      this.refused(e, {});
      send({ id: payload.length <= this.limits.maxBytes ? guessId(payload) : null, status: 'error', error: errorBody(e) });
      return;
    }
    await this.run(req, send);
  }

  /** Runs a validated request (transports with their own envelope, e.g. Azure direct methods, call this). */
  async run(req: CommandRequest, send: (reply: CommandReply) => void): Promise<void> {
    const reply = (r: Omit<CommandReply, 'id' | 'name'>) => {
      try {
        send({ id: req.id, name: req.name, ...r });
      } catch (e) {
        this.logger.warn({ err: describeCause(e), id: req.id }, 'command reply not sent');
      }
    };
    const refusal = this.admit(req);
    if (refusal) {
      this.refused(refusal, { id: req.id, name: req.name });
      reply({ status: 'error', error: errorBody(refusal) });
      return;
    }
    this.running++;
    try {
      const handler = this.registry.get(req.name);
      const params = handler.parse(req.params);
      this.remember(req.id);
      reply({ status: 'accepted' });
      const result = await handler.run(params, (u) => reply({ status: 'progress', ...u }), this.abort.signal);
      reply({ status: 'ok', result: result ?? null });
      this.logger.info({ id: req.id, name: req.name }, 'command done');
    } catch (e) {
      this.logger.warn({ id: req.id, name: req.name, err: describeCause(e) }, 'command failed');
      reply({ status: 'error', error: errorBody(e) });
    } finally {
      this.running--;
    }
  }

  /** Aborts running commands (their handlers see the signal). */
  stop(): void {
    this.abort.abort();
  }

  private readJson(payload: Buffer | string, what: string): unknown {
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (bytes > this.limits.maxBytes) {
      throw new OutpostError('OUTPOST_E_UPLINK_COMMAND', `${what} is larger than ${this.limits.maxBytes} bytes`, { details: { bytes, limit: this.limits.maxBytes } });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString());
    } catch (e) {
      throw new OutpostError('OUTPOST_E_UPLINK_COMMAND', `${what} is not valid JSON`, { cause: e });
    }
    if (depthExceeds(doc, this.limits.maxDepth)) {
      throw new OutpostError('OUTPOST_E_UPLINK_COMMAND', `${what} is nested deeper than ${this.limits.maxDepth} levels`, { details: { limit: this.limits.maxDepth } });
    }
    return doc;
  }

  private validate(doc: unknown): CommandRequest {
    if (!this.check(doc)) {
      const problems = (this.check.errors ?? []).slice(0, 8).map((er) => `${er.instancePath || '/'} ${er.message ?? 'is invalid'}${er.params && 'additionalProperty' in er.params ? ` (${String(er.params['additionalProperty']).slice(0, 64)})` : ''}`);
      throw new OutpostError('OUTPOST_E_UPLINK_COMMAND', `command envelope invalid: ${problems.join('; ')}`, { details: { problems } });
    }
    return doc as CommandRequest;
  }

  /** Why a request may not start now (null: it may). Charges the rate limit only for requests that pass the other checks. */
  private admit(req: CommandRequest): OutpostError | null {
    if (this.seen.has(req.id)) return new OutpostError('OUTPOST_E_UPLINK_COMMAND_DUPLICATE', 'a command with this id was already accepted', { details: { id: req.id } });
    if (this.running >= this.limits.maxConcurrent) {
      return new OutpostError('OUTPOST_E_UPLINK_COMMAND_BUSY', 'too many commands running; retry later', { details: { limit: this.limits.maxConcurrent } });
    }
    if (this.rate.take(1) > 0) {
      this.rate.take(-1);
      return new OutpostError('OUTPOST_E_UPLINK_COMMAND_BUSY', 'too many commands per second; retry later', { details: { ratePerSec: this.limits.ratePerSec } });
    }
    return null;
  }

  private remember(id: string): void {
    this.seen.add(id);
    if (this.seen.size > this.limits.rememberIds) this.seen.delete(this.seen.values().next().value as string);
  }

  private refused(e: unknown, fields: Record<string, unknown>): void {
    const refused = this.quiet.hit('refused');
    if (refused !== null) this.logger.warn({ ...fields, err: describeCause(e), refused }, 'command refused');
  }
}

/** Whether a parsed JSON value nests deeper than `max` (iterative: no recursion on hostile input). */
export function depthExceeds(doc: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[doc, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
    }
  }
  return false;
}

function errorBody(e: unknown): NonNullable<CommandReply['error']> {
  if (isOutpostError(e)) return { code: e.code, message: e.message, details: { ...e.details } };
  return { code: 'OUTPOST_E_UPLINK_COMMAND', message: 'command failed', details: { cause: describeCause(e).message } };
}

function guessId(payload: Buffer): string | null {
  try {
    const d = JSON.parse(payload.toString()) as { id?: unknown };
    return typeof d?.id === 'string' ? d.id.slice(0, 128) : null;
  } catch {
    return null;
  }
}
