import type { Logger } from 'pino';
import { OutpostError, describeCause, isOutpostError } from '../../src/errors/outpost-error.js';
import { Backoff } from '../backoff.js';
import type { Clock } from '../clock.js';
import { Counters } from '../counters.js';
import { qualityOfError } from '../quality.js';
import { GOOD, bad, uncertain, type DeviceDriver, type PointValue, type Quality, type Sample, type SampleSink } from '../types.js';
import type { OpcuaDataValue, OpcuaPort, OpcuaSubscriptionHandle } from './port.js';
import type { OpcuaDeviceConfig, OpcuaPointConfig } from './schema.js';

export interface OpcuaDriverDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly random?: () => number;
}

/** Maps an OPC UA status code name to a sample quality. */
export function qualityOfStatus(status: string): Quality {
  if (status.startsWith('Good')) return GOOD;
  if (status.startsWith('Uncertain')) return uncertain(status);
  return bad(status);
}

/**
 * Acquires one OPC UA server's points: subscriptions first, read polling when configured or when
 * the server refuses subscriptions.
 * Invariants: after any session loss every point is reported bad('not connected') once, the
 * session is reopened with backoff and subscriptions are re-created without a runtime restart;
 * at most one connect loop runs at a time; a bad status code from the server maps to a bad
 * sample with the status name, an Uncertain one to uncertain.
 */
export class OpcuaDriver implements DeviceDriver {
  readonly deviceId: string;
  private readonly stats = new Counters([
    'notifications_total',
    'reads_total',
    'read_errors_total',
    'writes_total',
    'write_errors_total',
    'reconnects_total',
    'subscribe_fallbacks_total',
  ]);
  private polling = false;
  private stopSignal = new AbortController();
  private readonly byNode = new Map<string, OpcuaPointConfig[]>();
  private readonly points = new Map<string, OpcuaPointConfig>();
  private readonly backoff: Backoff;
  private sink: SampleSink | null = null;
  private subscription: OpcuaSubscriptionHandle | null = null;
  private pollTimer: unknown = null;
  private loop: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly config: OpcuaDeviceConfig,
    private readonly port: OpcuaPort,
    private readonly deps: OpcuaDriverDeps,
  ) {
    this.deviceId = config.id;
    this.backoff = new Backoff(500, config.reconnectMaxMs, deps.random);
    for (const p of config.points) {
      this.points.set(p.id, p);
      this.byNode.set(p.nodeId, [...(this.byNode.get(p.nodeId) ?? []), p]);
    }
    port.onDisconnect(() => this.lost());
  }

  async start(sink: SampleSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    this.stopSignal = new AbortController();
    void this.connectLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopSignal.abort();
    if (this.pollTimer !== null) this.deps.clock.clearInterval(this.pollTimer);
    this.pollTimer = null;
    await this.subscription?.close().catch(() => undefined);
    this.subscription = null;
    await this.port.close().catch(() => undefined);
  }

  connected(): boolean {
    return this.port.isOpen();
  }

  counters(): Readonly<Record<string, number>> {
    return this.stats.snapshot();
  }

  async write(pointId: string, value: PointValue): Promise<void> {
    const p = this.points.get(pointId);
    if (!p) throw new OutpostError('OUTPOST_E_HAL_UNKNOWN_POINT', 'no such point on this device', { details: { pointId, device: this.deviceId } });
    if (!p.writable) throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'point is not writable', { details: { pointId } });
    this.stats.inc('writes_total');
    try {
      await this.port.write(p.nodeId, value);
    } catch (e) {
      this.stats.inc('write_errors_total');
      throw e;
    }
  }

  private lost(): void {
    if (this.stopped) return;
    this.subscription = null;
    this.emitAll(bad('not connected'));
    void this.connectLoop();
  }

  /** Polling as the fallback when the server refuses subscriptions (or when `mode: poll`). */
  private startPolling(): Promise<void> {
    if (this.pollTimer === null) this.pollTimer = this.deps.clock.setInterval(() => void this.poll(), this.config.pollIntervalMs);
    return this.poll();
  }

  private connectLoop(): Promise<void> {
    this.loop ??= (async () => {
      while (!this.stopped) {
        try {
          if (!this.port.isOpen()) await this.port.connect();
          await this.acquire();
          this.backoff.reset();
          return;
        } catch (e) {
          this.stats.inc('reconnects_total');
          this.emitAll(qualityOfError(e));
          const delay = this.backoff.next();
          this.deps.logger.warn({ err: describeCause(e), retryInMs: delay }, 'opc ua session failed');
          await this.port.close().catch(() => undefined);
          await this.deps.clock.sleep(delay, this.stopSignal.signal);
        }
      }
    })().finally(() => {
      this.loop = null;
    });
    return this.loop;
  }

  private async acquire(): Promise<void> {
    if (this.config.mode === 'poll' || this.polling) return this.startPolling();
    const items = [...this.byNode.keys()].map((nodeId) => {
      const p = this.byNode.get(nodeId)?.[0] as OpcuaPointConfig;
      return {
        nodeId,
        samplingIntervalMs: p.samplingIntervalMs ?? this.config.samplingIntervalMs,
        queueSize: p.queueSize,
        ...(p.serverDeadband ? { deadband: p.serverDeadband } : {}),
      };
    });
    try {
      this.subscription = await this.port.subscribe(this.config.publishingIntervalMs, items, (nodeId, dv) => {
        this.stats.inc('notifications_total');
        this.emitNode(nodeId, dv);
      });
    } catch (e) {
      if (!isOutpostError(e, 'OUTPOST_E_OPCUA_STATUS') || !this.port.isOpen()) throw e;
      // The server refuses subscriptions (no Subscription service, too many items…): read instead.
      this.stats.inc('subscribe_fallbacks_total');
      this.polling = true;
      this.deps.logger.warn({ device: this.deviceId, err: describeCause(e) }, 'opc ua subscription refused; polling instead');
      return this.startPolling();
    }
    this.deps.logger.info({ device: this.deviceId, items: items.length }, 'opc ua subscription created');
  }

  private async poll(): Promise<void> {
    if (!this.port.isOpen()) return;
    const nodes = [...this.byNode.keys()];
    this.stats.inc('reads_total');
    try {
      const values = await this.port.read(nodes);
      const samples = nodes.flatMap((n, i) => this.samplesFor(n, values[i] as OpcuaDataValue));
      this.sink?.onSamples(samples);
    } catch (e) {
      this.stats.inc('read_errors_total');
      this.emitAll(qualityOfError(e));
    }
  }

  private samplesFor(nodeId: string, dv: OpcuaDataValue): Sample[] {
    const quality = qualityOfStatus(dv.status);
    const sourceTime = dv.sourceTime ?? this.deps.clock.now();
    return (this.byNode.get(nodeId) ?? []).map((p) => ({ pointId: p.id, value: quality.status === 'bad' ? null : dv.value, quality, sourceTime }));
  }

  private emitNode(nodeId: string, dv: OpcuaDataValue): void {
    if (!this.stopped) this.sink?.onSamples(this.samplesFor(nodeId, dv));
  }

  private emitAll(quality: Quality): void {
    if (this.stopped || !this.sink) return;
    const now = this.deps.clock.now();
    this.sink.onSamples(this.config.points.map((p) => ({ pointId: p.id, value: null, quality, sourceTime: now })));
  }
}
