import { OutpostError } from '../errors/outpost-error.js';

/**
 * A command the gateway accepts from outside (the cloud uplink, local applications): `ota.install`,
 * `points.write`, `twin.update`… Each area registers its handlers; transports (MQTT uplink, local
 * broker) only parse envelopes, look the handler up and relay progress and the result.
 */
export interface CommandHandler<P = unknown, R = unknown> {
  readonly name: string;
  /** Validates and normalises the parameters; throws OutpostError (input: true) naming the problem. */
  parse(params: unknown): P;
  /** Runs the command; may report progress (0–100 plus a short state) any number of times before resolving. */
  run(params: P, progress: (update: { percent?: number; state: string; detail?: Record<string, unknown> }) => void, signal: AbortSignal): Promise<R>;
}

/** The command handlers of one process. Invariant: names are unique. */
export class CommandRegistry {
  private readonly handlers = new Map<string, CommandHandler>();

  register<P, R>(handler: CommandHandler<P, R>): void {
    if (this.handlers.has(handler.name)) throw new OutpostError('OUTPOST_E_COMMAND_DUPLICATE', 'command handler registered twice', { details: { name: handler.name } });
    this.handlers.set(handler.name, handler as CommandHandler);
  }

  get(name: string): CommandHandler {
    const h = this.handlers.get(name);
    if (!h) throw new OutpostError('OUTPOST_E_COMMAND_UNKNOWN', 'no such command', { details: { name, known: [...this.handlers.keys()] } });
    return h;
  }

  names(): string[] {
    return [...this.handlers.keys()];
  }
}
