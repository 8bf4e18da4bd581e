import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import type { CommandRegistry } from '../commands/command.js';
import { OutpostError, describeCause, isOutpostError } from '../errors/outpost-error.js';
import { GcPacer, type GcFunction } from '../health/gc-pacer.js';
import { LogLimiter } from '../log/log-limiter.js';
import { BrokerAccess, type Identity } from './access.js';
import { PacketGuard } from './packet-guard.js';
import { RetainedBudget } from './retained-budget.js';
import type { BrokerConfigT } from './schema.js';
import { checkReplyTo, parseWriteCommand, type WriteCommand } from './write-command.js';

export interface LocalBrokerDeps {
  readonly logger: Logger;
  readonly clock: Clock;
  /** The runtime's command handlers: write commands run `points.write` (and its checks). */
  readonly commands: CommandRegistry;
  readonly statusPayload: () => Record<string, unknown>;
  /** V8's gc(), to collect dead payload buffers while a flood goes on (GcPacer); null or absent: V8 decides alone. */
  readonly gc?: GcFunction | null;
}

export interface BrokerEndpoint {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly host: string; readonly port: number };
}

/** Where refused publishes go when `onDenied: ignore`: a `$` topic nobody may subscribe to, with no payload. */
const DENIED_TOPIC = '$outpost/denied';
const EMPTY = Buffer.alloc(0);

/**
 * The embedded MQTT broker (aedes, MQTT 3.1.1) on which local applications read readings and send
 * commands, as Azure IoT Edge's edgeHub does. Topic layout and permissions: docs/broker.md; threats: docs/security-broker.md.
 * Invariants: every connection passes through a PacketGuard (packet size and rate limits) and is
 * counted against `maxConnections`; every client has an Identity before it may publish or
 * subscribe; only the gateway publishes on its own topics (`<prefix>/…`, `$broker` route topics) —
 * a client only on `<prefix>/commands/write/<point>`, when its ACL allows; every session is clean
 * (no offline queues); client retained messages stay within the retained budget; a command runs
 * through the `points.write` handler, gets exactly one reply, and at most `maxPendingCommands` run
 * at once; `<prefix>/status` is retained (online, then offline at stop).
 */
export class LocalBroker {
  private aedes: Aedes | null = null;
  private readonly servers: Server[] = [];
  private readonly access: BrokerAccess;
  private readonly retained: RetainedBudget;
  private readonly pacer: GcPacer;
  private readonly identities = new WeakMap<Client, Identity>();
  private readonly certificates = new WeakMap<PacketGuard, string | null>();
  /** Registered client of each client id, and the filters each client holds. */
  private readonly holders = new Map<string, Client>();
  private readonly filters = new WeakMap<Client, Set<string>>();
  private connections = 0;
  private pending = 0;
  private readonly quiet: LogLimiter;
  private readonly stats = {
    published_total: 0,
    commands_total: 0,
    command_errors_total: 0,
    denied_publishes_total: 0,
    denied_subscribes_total: 0,
    refused_connections_total: 0,
    auth_failures_total: 0,
    oversize_packets_total: 0,
    malformed_packets_total: 0,
    retained_refused_total: 0,
    throttled_total: 0,
  };

  constructor(
    private readonly config: BrokerConfigT,
    routeTopics: readonly string[],
    private readonly deps: LocalBrokerDeps,
  ) {
    // At most 8 logins wait for their scrypt: beyond, CONNACK 3 at once rather than a wait of many seconds.
    this.access = new BrokerAccess(config, routeTopics, Math.min(8, config.limits.maxConnections));
    this.retained = new RetainedBudget(config.limits.maxRetainedMessages, config.limits.maxRetainedBytes);
    this.pacer = new GcPacer(deps.gc ?? null, deps.clock);
    this.quiet = new LogLimiter(deps.clock);
  }

  get prefix(): string {
    return this.config.topicPrefix;
  }

  async start(): Promise<BrokerEndpoint> {
    const { limits } = this.config;
    const aedes = await Aedes.createBroker({
      drainTimeout: 10_000,
      connectTimeout: limits.connectTimeoutMs,
      concurrency: 64,
      queueLimit: 42,
      maxInflightInbound: limits.maxInflight,
      preConnect: (_client, packet, cb) => {
        // Persistent sessions would queue messages for absent clients without bound: every session is clean.
        packet.clean = true;
        cb(null, true);
      },
      authenticate: (client, username, password, cb) => void this.authenticate(client, username, password, cb),
      authorizePublish: (client, packet, cb) => this.authorizePublish(client, packet, cb),
      authorizeSubscribe: (client, sub, cb) => cb(null, this.authorizeSubscribe(client, sub)),
      published: (packet, client, cb) => {
        cb(null);
        if (client) this.onPublished(client, packet);
      },
    });
    this.aedes = aedes;
    aedes.on('clientError', (client, err) => this.deps.logger.debug({ client: client.id, err: err.message }, 'broker client error'));
    aedes.on('client', (client) => this.holders.set(client.id, client));
    aedes.on('clientDisconnect', (client) => {
      if (this.holders.get(client.id) === client) this.holders.delete(client.id);
    });
    aedes.on('unsubscribe', (topics, client) => {
      for (const t of topics) this.filters.get(client)?.delete(t);
    });
    aedes.on('connectionError', (_client, err) => this.deps.logger.debug({ err: err.message }, 'broker connection error'));
    const plain = createServer((socket) => this.accept(socket, null));
    const at = await this.listen(plain, this.config.host, this.config.port);
    let tlsAt: BrokerEndpoint['tls'];
    if (this.config.tls) tlsAt = await this.listen(await this.tlsServer(), this.config.tls.host ?? this.config.host, this.config.tls.port);
    await this.publish(`${this.prefix}/status`, JSON.stringify({ state: 'online', ...this.deps.statusPayload() }), true);
    return { ...at, ...(tlsAt ? { tls: tlsAt } : {}) };
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
    return { ...this.stats, clients_current: this.clients(), connections_current: this.connections, retained_messages: this.retained.count, retained_bytes: this.retained.bytes };
  }

  async stop(): Promise<void> {
    if (!this.aedes) return;
    await this.publish(`${this.prefix}/status`, JSON.stringify({ state: 'offline', ...this.deps.statusPayload() }), true);
    const aedes = this.aedes;
    this.aedes = null;
    this.pacer.stop();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await Promise.all(this.servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  private async tlsServer(): Promise<Server> {
    const t = this.config.tls as NonNullable<BrokerConfigT['tls']>;
    const read = async (field: string, file: string) => {
      try {
        return await readFile(file);
      } catch (e) {
        throw new OutpostError('OUTPOST_E_BROKER_CONFIG', `cannot read broker.tls.${field}`, { cause: e, details: { field: `broker.tls.${field}`, file } });
      }
    };
    const [cert, key, ca] = await Promise.all([read('cert', t.cert), read('key', t.key), t.ca === undefined ? undefined : read('ca', t.ca)]);
    const server = createTlsServer({
      cert,
      key,
      ...(ca ? { ca } : {}),
      requestCert: t.clientCerts !== 'off',
      rejectUnauthorized: t.clientCerts === 'required',
      handshakeTimeout: this.config.limits.connectTimeoutMs,
      minVersion: 'TLSv1.2',
    });
    server.on('secureConnection', (socket: TLSSocket) => {
      const cn = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
      this.accept(socket, typeof cn === 'string' ? cn : null);
    });
    server.on('tlsClientError', (err) => this.deps.logger.debug({ err: err.message }, 'broker TLS handshake failed'));
    return server;
  }

  private listen(server: Server, host: string, port: number): Promise<{ host: string; port: number }> {
    this.servers.push(server);
    // Count raw connections (before any TLS handshake): beyond the limit they are closed at once.
    server.on('connection', (socket: Socket) => {
      if (this.connections >= this.config.limits.maxConnections) {
        this.stats.refused_connections_total++;
        socket.destroy();
        return;
      }
      this.connections++;
      socket.once('close', () => this.connections--);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 30_000);
    });
    return new Promise((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new OutpostError('OUTPOST_E_RUNTIME_START', `local broker cannot listen on ${host}:${port}`, { cause: e, details: { code: e.code } })),
      );
      server.listen(port, host, () => {
        const a = server.address() as AddressInfo;
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  private accept(socket: Socket, certificateCn: string | null): void {
    const aedes = this.aedes;
    if (!aedes || socket.destroyed) return void socket.destroy();
    const guard = new PacketGuard(socket, this.config.limits, this.deps.clock, {
      violation: (kind, details) => {
        if (kind === 'packet-too-large') this.stats.oversize_packets_total++;
        else this.stats.malformed_packets_total++;
        const refused = this.quiet.hit('packet');
        if (refused !== null) this.deps.logger.warn({ kind, ...details, remote: socket.remoteAddress, refused }, 'broker client disconnected: packet refused');
      },
      bytes: (n) => this.pacer.account(n),
      throttled: () => this.stats.throttled_total++,
    });
    this.certificates.set(guard, certificateCn);
    aedes.handle(guard);
  }

  private async authenticate(client: Client, username: string | undefined, password: Buffer | undefined, cb: (err: AuthenticateError | null, ok: boolean | null) => void): Promise<void> {
    const certificateCn = this.certificates.get(client.conn as unknown as PacketGuard) ?? null;
    const r = await this.access.authenticate({ username, password, certificateCn });
    if ('refused' in r) {
      this.stats.auth_failures_total++;
      const refused = this.quiet.hit('login');
      if (refused !== null) this.deps.logger.warn({ client: client.id?.slice(0, 64), username: username?.slice(0, 64), reason: r.reason, refused }, 'broker login refused');
      const err = Object.assign(new Error(r.reason), { returnCode: r.refused }) as AuthenticateError;
      return cb(err, false);
    }
    // A client id in use may be taken over only by the same identity: an anonymous client cannot kick a logged-in application off.
    const holder = this.holders.get(client.id);
    const held = holder ? this.identities.get(holder) : undefined;
    if (held && held.username !== r.username) {
      this.stats.auth_failures_total++;
      return cb(Object.assign(new Error('client id in use by another user'), { returnCode: 2 }) as AuthenticateError, false);
    }
    this.identities.set(client, r);
    cb(null, true);
  }

  private authorizePublish(client: Client | null, packet: PublishPacket, cb: (err?: Error | null) => void): void {
    const who = client ? this.identities.get(client) : undefined;
    if (!client || !who) return cb(new Error('not authenticated'));
    const topic = packet.topic;
    const commandTopic = `${this.prefix}/commands/write/`;
    let reason: string | null = null;
    if (topic.startsWith('$')) reason = 'reserved $ topic';
    else if (this.access.isGatewayTopic(topic)) {
      const isCommand = topic.startsWith(commandTopic) && topic.length > commandTopic.length && !topic.slice(commandTopic.length).includes('/');
      if (!isCommand) reason = 'topic reserved for the gateway';
      else if (!this.config.allowWrites) reason = 'write commands are disabled';
      else if (packet.retain) reason = 'a command cannot be retained';
      else if (!who.acl.mayPublish(topic)) reason = 'not allowed by the ACL';
    } else if (!who.acl.mayPublish(topic)) reason = 'not allowed by the ACL';
    if (reason === null && packet.retain && !this.retained.admit(topic, packet.payload)) {
      this.stats.retained_refused_total++;
      reason = 'retained budget exhausted';
    }
    if (reason === null) return cb(null);
    this.stats.denied_publishes_total++;
    this.logDenied(client, who, topic, reason);
    if (this.config.onDenied === 'disconnect') return cb(new Error(reason));
    packet.topic = DENIED_TOPIC;
    packet.retain = false;
    packet.payload = EMPTY;
    cb(null);
  }

  private authorizeSubscribe(client: Client, sub: Subscription): Subscription | null {
    const who = this.identities.get(client);
    let held = this.filters.get(client);
    if (!held) this.filters.set(client, (held = new Set()));
    const full = !held.has(sub.topic) && held.size >= this.config.limits.maxSubscriptions;
    if (who && !full && who.acl.maySubscribe(sub.topic)) {
      held.add(sub.topic);
      return sub;
    }
    this.stats.denied_subscribes_total++;
    const refused = this.quiet.hit('subscribe');
    if (refused !== null) this.deps.logger.info({ client: client.id.slice(0, 64), username: who?.username ?? null, filter: sub.topic.slice(0, 256), full, refused }, 'broker subscription refused');
    return null;
  }

  private logDenied(client: Client, who: Identity, topic: string, reason: string): void {
    const refused = this.quiet.hit('publish');
    if (refused !== null) this.deps.logger.warn({ client: client.id.slice(0, 64), username: who.username, topic: topic.slice(0, 256), reason, refused }, 'broker publish refused');
  }

  private onPublished(client: Client, packet: PublishPacket): void {
    const commandTopic = `${this.prefix}/commands/write/`;
    if (!packet.topic.startsWith(commandTopic)) return;
    const who = this.identities.get(client);
    if (!who) return;
    void this.onCommand(who, packet.topic.slice(commandTopic.length), Buffer.from(packet.payload as Buffer));
  }

  private async onCommand(who: Identity, point: string, payload: Buffer): Promise<void> {
    this.stats.commands_total++;
    const { limits } = this.config;
    let cmd: WriteCommand | null = null;
    let reply: Record<string, unknown>;
    let counted = false;
    try {
      const parsed = parseWriteCommand(payload, limits.maxCommandBytes);
      cmd = { value: parsed.value, ...(parsed.id !== undefined ? { id: parsed.id } : {}) };
      // A refused replyTo is not used for the error reply either: it goes to the point's result topic.
      if (parsed.replyTo !== undefined) {
        checkReplyTo(parsed.replyTo, this.prefix, who.acl);
        cmd = parsed;
      }
      if (this.pending >= limits.maxPendingCommands) {
        throw new OutpostError('OUTPOST_E_BROKER_BUSY', 'too many write commands running; retry later', { details: { limit: limits.maxPendingCommands } });
      }
      this.pending++;
      counted = true;
      const handler = this.deps.commands.get('points.write');
      const params = handler.parse({ point, value: cmd.value });
      await handler.run(params, () => undefined, AbortSignal.timeout(60_000));
      reply = { point, ok: true, value: cmd.value };
    } catch (e) {
      this.stats.command_errors_total++;
      const err = isOutpostError(e) ? { code: e.code, message: e.message } : { code: 'OUTPOST_E_HAL_NOT_CONNECTED', message: 'write failed' };
      const failed = this.quiet.hit('command');
      if (failed !== null) this.deps.logger.warn({ point: point.slice(0, 128), username: who.username, err: describeCause(e), failed }, 'broker write command failed');
      reply = { point, ok: false, error: err };
    } finally {
      if (counted) this.pending--;
    }
    const topic = cmd?.replyTo ?? `${this.prefix}/commands/result/${point}`;
    await this.publish(topic, JSON.stringify({ ...(cmd?.id !== undefined ? { id: cmd.id } : {}), ...reply }));
  }
}
