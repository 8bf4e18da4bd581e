import { Type, type Static } from '@sinclair/typebox';
import AjvModule from 'ajv';
import type { Logger } from 'pino';
import type { CommandRegistry } from '../commands/command.js';
import { OutpostError, describeCause, isOutpostError } from '../errors/outpost-error.js';

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

/**
 * Validates cloud commands and runs them through the runtime's CommandRegistry, relaying progress.
 * Invariants: `handle` never throws and always ends with exactly one `ok` or `error` reply for a
 * request it could read; at most `maxConcurrent` commands run at once (others get an error reply);
 * a reply that cannot be sent is logged, never fatal.
 */
export class CommandDispatcher {
  private readonly check = new Ajv({ allErrors: true, strict: false }).compile(CommandEnvelope);
  private running = 0;
  private readonly abort = new AbortController();

  constructor(
    private readonly registry: CommandRegistry,
    private readonly logger: Logger,
    private readonly maxConcurrent = 4,
  ) {}

  /** Parses a JSON envelope; throws OutpostError (OUTPOST_E_UPLINK_COMMAND) naming the problem. */
  parse(payload: Buffer | string): CommandRequest {
    let doc: unknown;
    try {
      doc = JSON.parse(payload.toString());
    } catch (e) {
      throw new OutpostError('OUTPOST_E_UPLINK_COMMAND', 'command is not valid JSON', { cause: e });
    }
    if (!this.check(doc)) {
      const problems = (this.check.errors ?? []).map((er) => `${er.instancePath || '/'} ${er.message ?? 'is invalid'}${er.params && 'additionalProperty' in er.params ? ` (${String(er.params['additionalProperty'])})` : ''}`);
      throw new OutpostError('OUTPOST_E_UPLINK_COMMAND', `command envelope invalid: ${problems.join('; ')}`, { details: { problems } });
    }
    return doc as CommandRequest;
  }

  /** Reads a raw request and runs it; every outcome becomes a reply. */
  async handleRaw(payload: Buffer, send: (reply: CommandReply) => void): Promise<void> {
    let req: CommandRequest;
    try {
      req = this.parse(payload);
    } catch (e) {
      this.logger.warn({ err: describeCause(e) }, 'bad command refused');
      send({ id: guessId(payload), status: 'error', error: errorBody(e) });
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
    if (this.running >= this.maxConcurrent) {
      reply({ status: 'error', error: { code: 'OUTPOST_E_UPLINK_COMMAND', message: 'too many commands running; retry later' } });
      return;
    }
    this.running++;
    try {
      const handler = this.registry.get(req.name);
      const params = handler.parse(req.params);
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
