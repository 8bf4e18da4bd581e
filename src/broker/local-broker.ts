import { createServer, type AddressInfo, type Server } from 'node:net';
import { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { PointValue } from '../../hal/types.js';
import { OutpostError, describeCause, isOutpostError } from '../errors/outpost-error.js';

export interface LocalBrokerOptions {
  readonly host: string;
  readonly port: number;
  readonly topicPrefix: string;
  readonly allowWrites: boolean;
}

/** Executes a write requested by a local application. */
export interface CommandWriter {
  write(pointId: string, value: PointValue, origin: string): Promise<void>;
}

interface WriteCommand {
  readonly value: PointValue;
  readonly id?: string;
  readonly replyTo?: string;
}

/** Parses a write command payload: a JSON object `{value, id?, replyTo?}` or a bare JSON scalar. */
export function parseWriteCommand(payload: Buffer): WriteCommand {
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
  const value = o['value'];
  if (typeof value !== 'number' && typeof value !== 'boolean' && typeof value !== 'string') {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', 'command needs "value": a number, boolean or string');
  }
  if (o['id'] !== undefined && typeof o['id'] !== 'string') throw new OutpostError('OUTPOST_E_BROKER_COMMAND', '"id" must be a string');
  const replyTo = o['replyTo'];
  if (replyTo !== undefined && (typeof replyTo !== 'string' || replyTo === '' || /[+#\u0000]/.test(replyTo))) {
    throw new OutpostError('OUTPOST_E_BROKER_COMMAND', '"replyTo" must be a topic without wildcards or NUL characters');
  }
  return { value, ...(typeof o['id'] === 'string' ? { id: o['id'] } : {}), ...(typeof replyTo === 'string' ? { replyTo } : {}) };
}

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) on which local applications read readings and send
 * commands, as Azure IoT Edge's edgeHub does. Topic layout: docs/broker.md.
 * Invariants: only the gateway itself publishes under `<prefix>/` — clients may publish there only
 * on `<prefix>/commands/write/<point>`; every command gets exactly one reply; a malformed command
 * gets an error reply and never reaches a driver; `<prefix>/status` is retained (online, then offline at stop).
 */
export class LocalBroker {
  private aedes: Aedes | null = null;
  private server: Server | null = null;
  private readonly stats = { published_total: 0, commands_total: 0, command_errors_total: 0, denied_publishes_total: 0 };

  constructor(
    private readonly options: LocalBrokerOptions,
    private readonly deps: { logger: Logger; writer: CommandWriter; statusPayload: () => Record<string, unknown> },
  ) {}

  get prefix(): string {
    return this.options.topicPrefix;
  }

  async start(): Promise<{ host: string; port: number }> {
    const prefix = this.options.topicPrefix;
    const commandTopic = `${prefix}/commands/write/`;
    const aedes = await Aedes.createBroker({
      drainTimeout: 10_000,
      authorizePublish: (client, packet, cb) => {
        if (client === null) return cb(null);
        const t = packet.topic;
        const own = t === prefix || t.startsWith(`${prefix}/`);
        const command = t.startsWith(commandTopic) && t.length > commandTopic.length && !t.slice(commandTopic.length).includes('/');
        if (own && !command) {
          this.stats.denied_publishes_total++;
          return cb(new Error('topic reserved for the gateway'));
        }
        cb(null);
      },
    });
    this.aedes = aedes;
    aedes.on('clientError', (client, err) => this.deps.logger.debug({ client: client.id, err: err.message }, 'broker client error'));
    if (this.options.allowWrites) {
      await new Promise<void>((resolve) =>
        aedes.subscribe(
          `${commandTopic}+`,
          (packet, done) => {
            done();
            if (packet.topic.startsWith('$')) return;
            void this.onCommand(packet.topic.slice(commandTopic.length), Buffer.from(packet.payload as Buffer));
          },
          resolve,
        ),
      );
    }
    const server = createServer(aedes.handle);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new OutpostError('OUTPOST_E_RUNTIME_START', `local broker cannot listen on ${this.options.host}:${this.options.port}`, {
            cause: e,
            details: { code: e.code },
          }),
        ),
      );
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    await this.publish(`${prefix}/status`, JSON.stringify({ state: 'online', ...this.deps.statusPayload() }), true);
    return { host: addr.address, port: addr.port };
  }

  publish(topic: string, payload: string | Buffer, retain = false): Promise<void> {
    const aedes = this.aedes;
    if (!aedes || aedes.closed) return Promise.resolve();
    this.stats.published_total++;
    return new Promise((resolve) =>
      aedes.publish({ cmd: 'publish', topic, payload, qos: 0, retain, dup: false }, (err) => {
        if (err) this.deps.logger.warn({ topic, err: err.message }, 'local publish failed');
        resolve();
      }),
    );
  }

  clients(): number {
    return this.aedes?.connectedClients ?? 0;
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats, clients_current: this.clients() };
  }

  async stop(): Promise<void> {
    if (!this.aedes) return;
    await this.publish(`${this.options.topicPrefix}/status`, JSON.stringify({ state: 'offline', ...this.deps.statusPayload() }), true);
    const aedes = this.aedes;
    this.aedes = null;
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = null;
  }

  private async onCommand(point: string, payload: Buffer): Promise<void> {
    this.stats.commands_total++;
    let cmd: WriteCommand | null = null;
    let reply: Record<string, unknown>;
    try {
      cmd = parseWriteCommand(payload);
      await this.deps.writer.write(point, cmd.value, 'broker');
      reply = { point, ok: true, value: cmd.value };
    } catch (e) {
      this.stats.command_errors_total++;
      const err = isOutpostError(e) ? { code: e.code, message: e.message } : { code: 'OUTPOST_E_HAL_NOT_CONNECTED', message: 'write failed' };
      this.deps.logger.warn({ point, err: describeCause(e) }, 'broker write command failed');
      reply = { point, ok: false, error: err };
    }
    const topic = cmd?.replyTo ?? `${this.options.topicPrefix}/commands/result/${point}`;
    await this.publish(topic, JSON.stringify({ ...(cmd?.id !== undefined ? { id: cmd.id } : {}), ...reply }));
  }
}
