import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { Backoff } from '../../hal/backoff.js';
import type { Clock } from '../../hal/clock.js';
import { describeCause } from '../errors/outpost-error.js';
import type { DurableStore, Taken } from '../store/durable-store.js';
import type { Upstream, UpstreamRecord } from '../upstream/upstream.js';
import type { CommandDispatcher } from './commands.js';
import type { CredentialSource } from './credentials.js';
import type { OutMessage, PayloadProfile, ProfileSession } from './profile.js';
import { RateLimiter } from './rate-limiter.js';
import type { MqttUpstreamConfig } from './schema.js';

export interface UplinkDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly store: DurableStore;
  readonly profile: PayloadProfile;
  readonly credentials: CredentialSource;
  readonly commands: CommandDispatcher | null;
  readonly random?: () => number;
  /** Opens an MQTT connection (mqtt.connect by default). */
  readonly connect?: (url: string, options: IClientOptions) => MqttClient;
}

/** PUBACK reason codes that will not change by retrying the same message. */
const PERMANENT = new Set([0x87, 0x90, 0x95, 0x99, 0x9a]);

/**
 * The MQTT uplink: drains the durable store to a broker at QoS 1.
 * Invariants: a record leaves the store only when every message carrying it got a successful PUBACK
 * (or it expired, or went to quarantine); every connection is a fresh client (clean start) and its
 * callbacks are ignored once it closed — what was in flight is read again from the store; draining
 * starts as soon as the births/status are out, paced by the byte rate limit and bounded by `inflight`
 * and the broker's Receive Maximum; a refused batch is retried one record at a time, so one refused
 * record never blocks the others; reconnects back off exponentially with jitter.
 */
export class MqttUplink implements Upstream {
  private client: MqttClient | null = null;
  private gen = 0;
  private ready = false;
  private stopping = false;
  private inflight = 0;
  private maxInflight: number;
  private maxPacket = Infinity;
  private draining: Promise<void> | null = null;
  private drainAgain = false;
  private lingerTimer: unknown = null;
  private retryTimer: unknown = null;
  private reconnectTimer: unknown = null;
  private readonly backoff: Backoff;
  private readonly limiter: RateLimiter;
  private readonly stats = {
    connects_total: 0,
    connect_errors_total: 0,
    disconnects_total: 0,
    messages_sent_total: 0,
    bytes_sent_total: 0,
    records_sent_total: 0,
    refusals_total: 0,
    commands_received_total: 0,
  };
  private readonly routeBytes = new Map<string, number>();
  /** Batches awaiting PUBACK on the current connection. */
  private readonly inflightBatches = new Set<Taken[]>();
  /** A record suspected of killing the connection is in flight alone: nothing else is sent meanwhile. */
  private isolating = false;

  constructor(
    private readonly config: MqttUpstreamConfig,
    private readonly deps: UplinkDeps,
  ) {
    this.maxInflight = config.inflight;
    this.backoff = new Backoff(config.reconnect.initialMs, config.reconnect.maxMs, deps.random ?? Math.random);
    this.limiter = new RateLimiter(config.drainRateBytesPerSec, deps.clock);
  }

  async start(): Promise<void> {
    await this.deps.store.start();
    this.deps.store.onReadable(() => this.kick(false));
    void this.connect();
  }

  enqueue(record: UpstreamRecord): Promise<void> {
    return this.deps.store.enqueue(record);
  }

  connected(): boolean {
    return this.ready;
  }

  counters(): Readonly<Record<string, number>> {
    const out: Record<string, number> = { ...this.deps.store.counters(), ...this.stats, connected: this.ready ? 1 : 0, inflight: this.inflight };
    for (const [r, b] of this.routeBytes) out[`route_${r}_bytes_sent_total`] = b;
    return out;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const t of [this.lingerTimer, this.retryTimer, this.reconnectTimer]) if (t !== null) this.deps.clock.clearTimeout(t);
    this.deps.commands?.stop();
    const client = this.client;
    if (client && this.ready) {
      const bye = this.deps.profile.goodbye();
      if (bye) await Promise.race([this.publishRaw(client, bye), this.deps.clock.sleep(2000)]).catch(() => undefined);
    }
    this.ready = false;
    this.gen++;
    await this.draining;
    if (client) await new Promise<void>((resolve) => {
      const t = this.deps.clock.setTimeout(() => resolve(), 3000);
      client.end(false, {}, () => {
        this.deps.clock.clearTimeout(t);
        resolve();
      });
    });
    await this.deps.store.stop();
  }

  private async connect(): Promise<void> {
    this.reconnectTimer = null;
    if (this.stopping) return;
    const gen = ++this.gen;
    const log = this.deps.logger;
    const { config } = this;
    const { profile } = this.deps;
    let options: IClientOptions;
    try {
      await profile.prepareConnect();
      const creds = await this.deps.credentials.load();
      const will = profile.will();
      options = {
        protocolVersion: profile.protocolVersion,
        clientId: config.clientId ?? profile.clientId,
        clean: true,
        keepalive: config.keepaliveSeconds,
        reconnectPeriod: 0,
        connectTimeout: config.connectTimeoutMs,
        resubscribe: false,
        queueQoSZero: false,
        will: { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain },
        rejectUnauthorized: true,
        ...(creds.username !== undefined ? { username: creds.username } : {}),
        ...(creds.password !== undefined ? { password: creds.password } : {}),
        ...(creds.ca ? { ca: creds.ca } : {}),
        ...(creds.cert ? { cert: creds.cert } : {}),
        ...(creds.key ? { key: creds.key } : {}),
        ...(config.tls.servername ? { servername: config.tls.servername } : {}),
        // MQTT 5: the broker must not send us packets larger than a command may be (plus topic and properties).
        ...(profile.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 0, maximumPacketSize: config.commandLimits.maxBytes + 4096 } } : {}),
      };
    } catch (e) {
      this.stats.connect_errors_total++;
      log.error({ err: describeCause(e) }, 'uplink cannot prepare the connection');
      this.scheduleReconnect();
      return;
    }
    const client = (this.deps.connect ?? mqtt.connect)(config.url, options);
    this.client = client;
    client.on('connect', (connack) => void this.onConnect(gen, client, connack));
    client.on('message', (topic, payload, packet) => void this.onMessage(gen, topic, payload, packet));
    client.on('error', (e) => {
      if (gen !== this.gen) return;
      this.stats.connect_errors_total++;
      log.warn({ err: describeCause(e), url: config.url }, 'uplink connection error');
    });
    client.on('disconnect', (p) => log.warn({ reasonCode: p.reasonCode }, 'broker disconnected the uplink'));
    client.on('close', () => void this.onClose(gen, client));
  }

  private async onConnect(gen: number, client: MqttClient, connack: IConnackPacket): Promise<void> {
    if (gen !== this.gen) return;
    const log = this.deps.logger;
    const receiveMax = connack.properties?.receiveMaximum ?? 65535;
    this.maxInflight = Math.max(1, Math.min(this.config.inflight, receiveMax - 2));
    this.maxPacket = connack.properties?.maximumPacketSize ?? Infinity;
    try {
      await this.deps.profile.onConnected(this.session(client));
      if (this.config.commands && this.deps.commands) {
        const subs = this.deps.profile.subscriptions();
        if (subs.length > 0) await client.subscribeAsync(subs, { qos: 1 });
      }
    } catch (e) {
      log.warn({ err: describeCause(e) }, 'uplink session setup failed; reconnecting');
      client.end(true);
      return;
    }
    if (gen !== this.gen) return;
    this.backoff.reset();
    this.stats.connects_total++;
    this.ready = true;
    log.info({ url: this.config.url, profile: this.deps.profile.name, inflight: this.maxInflight, backlog: this.deps.store.liveRecords() }, 'uplink connected');
    this.kick(true);
  }

  private async onClose(gen: number, client: MqttClient): Promise<void> {
    client.removeAllListeners('connect');
    client.on('error', () => undefined);
    if (gen !== this.gen) return;
    const wasReady = this.ready;
    this.ready = false;
    this.gen++;
    this.inflight = 0;
    this.isolating = false;
    // A message that makes the broker drop the connection (e.g. a 3.1.1 broker over its packet limit, or
    // a cloud that disconnects on a policy violation) must not block the queue forever: count the loss.
    for (const b of this.inflightBatches) for (const t of b) this.deps.store.lostInFlight(t, b.length === 1);
    this.inflightBatches.clear();
    client.end(true);
    if (wasReady) {
      this.stats.disconnects_total++;
      this.deps.logger.warn({ url: this.config.url }, 'uplink disconnected');
    }
    await this.draining;
    await this.deps.store.rewind();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer !== null) return;
    const delay = this.backoff.next();
    this.deps.logger.debug({ delayMs: delay }, 'uplink reconnect scheduled');
    this.reconnectTimer = this.deps.clock.setTimeout(() => void this.connect(), delay);
  }

  private session(client: MqttClient): ProfileSession {
    return { publish: (m) => this.publishRaw(client, m), commands: this.config.commands ? this.deps.commands : null };
  }

  private publishRaw(client: MqttClient, m: OutMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      client.publish(m.topic, m.payload, { qos: 1, retain: m.retain ?? false, ...(m.properties ? { properties: m.properties } : {}) }, (err) => (err ? reject(err) : resolve()));
    });
  }

  private async onMessage(gen: number, topic: string, payload: Buffer, packet: IPublishPacket): Promise<void> {
    if (gen !== this.gen || !this.client) return;
    this.stats.commands_received_total++;
    try {
      await this.deps.profile.onMessage(topic, payload, packet, this.session(this.client));
    } catch (e) {
      this.deps.logger.warn({ err: describeCause(e), topic }, 'uplink message handling failed');
    }
  }

  /** New records or free in-flight slots: drain now, or after the batching latency when idle. */
  private kick(now: boolean): void {
    if (!this.ready) return;
    if (now || this.config.batch.maxLatencyMs === 0) {
      void this.drain();
      return;
    }
    if (this.inflight > 0) return; // the next PUBACK drains
    this.lingerTimer ??= this.deps.clock.setTimeout(() => {
      this.lingerTimer = null;
      void this.drain();
    }, this.config.batch.maxLatencyMs);
  }

  private drain(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return this.draining;
    }
    const run = async () => {
      await Promise.resolve(); // `draining` is assigned before the loop can finish
      try {
        do {
          this.drainAgain = false;
          while (this.ready && this.inflight < this.maxInflight && !this.isolating) {
            const gen = this.gen;
            const batch = await this.deps.store.take(this.config.batch.maxRecords, this.batchBytes());
            if (!batch) break;
            if (gen !== this.gen || !this.client) break;
            await this.send(batch, gen, this.client);
          }
        } while (this.drainAgain && this.ready);
      } catch (e) {
        this.deps.logger.error({ err: describeCause(e) }, 'uplink drain failed');
      } finally {
        this.draining = null;
      }
      this.armRetry();
    };
    this.draining = run();
    return this.draining;
  }

  /** Record bytes per batch: the configured batch size, within the message and packet limits (minus room for the envelope). */
  private batchBytes(): number {
    return Math.max(256, Math.min(this.config.batch.maxBytes, this.config.maxMessageBytes - 1024, this.maxPacket - 2048));
  }

  private armRetry(): void {
    const at = this.deps.store.nextRetryAt();
    if (at === null || this.retryTimer !== null || !this.ready) return;
    this.retryTimer = this.deps.clock.setTimeout(() => {
      this.retryTimer = null;
      void this.drain();
    }, Math.max(0, at - this.deps.clock.now()));
  }

  private async send(batch: Taken[], gen: number, client: MqttClient): Promise<void> {
    const { store } = this.deps;
    // A batch in flight during two lost connections is sent again with nothing else in flight; after a
    // third loss its records go one at a time, and one that loses the connection `maxAttempts` times on
    // its own is quarantined. A flapping link thus costs a few isolated sends, a poison record its place.
    let worst = 0;
    for (const t of batch) worst = Math.max(worst, store.lossesOf(t).any);
    const suspect = worst >= 2;
    if (worst >= 3 && batch.length > 1) {
      store.retryLater(batch, 0);
      return;
    }
    if (suspect && batch.length === 1) {
      const t = batch[0] as Taken;
      if (store.lossesOf(t).alone >= this.config.maxAttempts) {
        await store.toQuarantine(t, 'connection-lost', { attempts: store.lossesOf(t).alone });
        return;
      }
    }
    const msgs = this.deps.profile.encode(batch);
    const limit = Math.min(this.config.maxMessageBytes, this.maxPacket - 512);
    const big = msgs.find((m) => m.payload.length + m.topic.length > limit);
    if (big) {
      if (batch.length === 1) await store.toQuarantine(batch[0] as Taken, 'oversized', { bytes: big.payload.length, limit });
      else store.retryLater(batch, 0);
      return;
    }
    const bytes = msgs.reduce((n, m) => n + m.payload.length, 0);
    const wait = this.limiter.take(bytes);
    if (wait > 0) await this.deps.clock.sleep(wait);
    if (gen !== this.gen) return;
    let remaining = msgs.length;
    let refused: number | null = null;
    let lost = false;
    this.inflight += msgs.length;
    this.inflightBatches.add(batch);
    if (suspect) this.isolating = true;
    for (const m of msgs) {
      client.publish(m.topic, m.payload, { qos: 1, retain: false, ...(m.properties ? { properties: m.properties } : {}) }, (err) => {
        if (gen !== this.gen) return;
        this.inflight--;
        if (err) {
          const rc = (err as { code?: unknown }).code;
          if (typeof rc === 'number' && rc >= 0x80) refused = rc;
          else lost = true;
        }
        if (--remaining > 0) return;
        this.inflightBatches.delete(batch);
        if (suspect) this.isolating = false;
        if (!lost) void this.settle(batch, refused);
        this.kick(true);
      });
    }
    const route = (batch[0] as Taken).fields.route;
    this.stats.messages_sent_total += msgs.length;
    this.stats.bytes_sent_total += bytes;
    this.stats.records_sent_total += batch.length;
    this.routeBytes.set(route, (this.routeBytes.get(route) ?? 0) + bytes);
  }

  private async settle(batch: Taken[], refused: number | null): Promise<void> {
    const { store } = this.deps;
    if (refused === null) {
      store.ack(batch);
      return;
    }
    this.stats.refusals_total++;
    this.deps.logger.warn({ route: (batch[0] as Taken).fields.route, records: batch.length, reasonCode: refused }, 'broker refused a message');
    if (batch.length > 1) {
      store.retryLater(batch, 0);
      return;
    }
    const t = batch[0] as Taken;
    const n = store.failed(t);
    if (PERMANENT.has(refused) || n >= this.config.maxAttempts) await store.toQuarantine(t, 'refused', { reasonCode: refused, attempts: n });
    else store.retryLater([t], Math.min(60_000, 500 * 2 ** n));
  }
}
