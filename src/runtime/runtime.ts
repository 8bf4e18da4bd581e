import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import type { PointCommonConfig } from '../../hal/schema-common.js';
import type { DeviceDriver, PointValue } from '../../hal/types.js';
import { ApiServer } from '../api/api-server.js';
import { ensureApiToken } from '../api/api-token.js';
import { CommandRegistry } from '../commands/command.js';
import { LocalBroker, type BrokerEndpoint } from '../broker/local-broker.js';
import type { DeviceConfig, OutpostConfig, UpstreamConfig } from '../config/schema.js';
import { indexPoints, type PointInfo } from '../config/semantic.js';
import { OutpostError, describeCause, isOutpostError } from '../errors/outpost-error.js';
import { HealthMonitor, type HealthCheck } from '../health/health-monitor.js';
import type { GcFunction } from '../health/gc-pacer.js';
import type { SystemProbe } from '../health/system-probe.js';
import { SYSTEM_ROUTE, type Message } from '../model/reading.js';
import { Pipeline, type PointSnapshot } from '../pipeline/pipeline.js';
import { unapplyScale } from '../pipeline/processors.js';
import { Router } from '../router/router.js';
import { compileRoute } from '../routes/index.js';
import { FileUpstream } from '../upstream/file-upstream.js';
import type { Upstream } from '../upstream/upstream.js';
import { collectMetrics } from './metrics-collector.js';

/** Converts a written value to the point's value type ("60" → 60, "true"/1 → true); anything else is refused. */
function coerce(value: PointValue, type: PointInfo['valueType'], point: string): PointValue {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new OutpostError('OUTPOST_E_HAL_VALUE', 'a written number must be finite', { details: { point, value: String(value) } });
  if (type === 'string') return String(value);
  if (type === 'number') {
    const n = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
    if (!Number.isFinite(n)) throw new OutpostError('OUTPOST_E_HAL_VALUE', 'point takes a finite number', { details: { point, value } });
    return n;
  }
  if (value === true || value === 1 || value === 'true' || value === '1') return true;
  if (value === false || value === 0 || value === 'false' || value === '0') return false;
  throw new OutpostError('OUTPOST_E_HAL_VALUE', 'point takes true or false', { details: { point, value } });
}

/** Creates the driver of a configured device (wired by services/: real transports or simulators). */
export interface DriverFactory {
  create(device: DeviceConfig, deps: { clock: Clock; logger: Logger; dataDir?: string }): Promise<DeviceDriver>;
}

/** Creates the upstream for `upstream.type`; the runtime handles `file` itself. */
export type UpstreamFactory = (
  config: UpstreamConfig,
  deps: { clock: Clock; logger: Logger; gatewayId: string; dataDir: string; commands: CommandRegistry; bootId: string },
) => Promise<Upstream>;

export interface RuntimeDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly drivers: DriverFactory;
  readonly systemProbe: SystemProbe;
  readonly version: string;
  readonly bootId?: string;
  readonly upstreamFactory?: UpstreamFactory;
  readonly timeUncertain?: () => boolean;
  /** V8's gc() (services/expose-gc.ts), paced by the local broker under floods; absent in tests that do not need it. */
  readonly gc?: GcFunction | null;
}

export interface RuntimeEndpoints {
  readonly api: { host: string; port: number } | null;
  readonly broker: BrokerEndpoint | null;
}

/**
 * The Outpost runtime: drivers → pipeline → routes → local broker and upstream, plus health,
 * metrics and the local API. Invariants: the configuration is frozen and read once; start either
 * completes or stops what it started and throws; stop applies the drivers' safe states before the
 * broker and upstream close, and is idempotent; every write (rules, broker, API, cloud commands)
 * goes through `writePoint`, which checks the point is writable and not held by an interlock (only
 * the pipeline's writer can write as a rule) and converts engineering units to raw.
 */
export class Runtime {
  readonly bootId: string;
  /** Commands accepted from the uplink and local applications; areas register theirs before start. */
  readonly commands = new CommandRegistry();
  private readonly pointInfo: Map<string, PointInfo>;
  private readonly pointConfig = new Map<string, PointCommonConfig>();
  private readonly drivers = new Map<string, { kind: string; driver: DeviceDriver; ready: Promise<void> }>();
  private readonly pipeline: Pipeline;
  private readonly router: Router;
  private readonly health: HealthMonitor;
  private broker: LocalBroker | null = null;
  private api: ApiServer | null = null;
  private upstream: Upstream | null = null;
  private readonly upstreamStats = { rejected_total: 0 };
  /** Writes that reached a driver, by path, and writes refused by an interlock. */
  private readonly writeStats = { writes_api_total: 0, writes_broker_total: 0, writes_command_total: 0, writes_rule_total: 0, writes_other_total: 0, writes_interlocked_total: 0, writes_overridden_total: 0 };
  /** When a refusal was last logged, and how many since: a full store refuses every reading, the log gets one line per 10 s. */
  private refusalLog = { at: -Infinity, since: 0 };
  private started = false;
  private readonly startedListeners: Array<() => void> = [];
  private readonly stoppingListeners: Array<() => void> = [];
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly config: Readonly<OutpostConfig>,
    private readonly deps: RuntimeDeps,
  ) {
    this.bootId = deps.bootId ?? randomUUID();
    this.pointInfo = indexPoints(config);
    for (const d of config.devices) for (const p of d.points) this.pointConfig.set(p.id, p);
    const log = (component: string) => deps.logger.child({ component });
    this.pipeline = new Pipeline(config, {
      clock: deps.clock,
      logger: log('pipeline'),
      bootId: this.bootId,
      // The one writer that writes as a rule: the pipeline names the rule in the origin (`rule:<id>`).
      writer: { write: (id, v, origin) => this.writePoint(id, v, origin, origin.startsWith('rule:') ? origin.slice(5) : null) },
      outputs: {
        reading: (r) => this.onMessage({ kind: 'reading', source: `/readings/${r.device}/${r.point}`, body: r }, `readings/${r.device}/${r.point}`),
        event: (e) => this.onMessage({ kind: 'event', source: `/events/${e.rule}`, body: e }, `events/${e.rule}`),
      },
      ...(deps.timeUncertain ? { timeUncertain: deps.timeUncertain } : {}),
    });
    this.router = new Router(config.routes, {
      upstream: (message, route) => this.toUpstream(message, route),
      broker: (topic, message) => void this.broker?.publish(topic, JSON.stringify(message.body)),
    }, log('router'));
    this.commands.register({
      name: 'points.write',
      parse: (params: unknown) => {
        const p = params as { point?: unknown; value?: unknown } | null;
        if (typeof p?.point !== 'string') throw new OutpostError('OUTPOST_E_COMMAND_PARAMS', 'points.write needs "point" (a point id)');
        if (typeof p.value !== 'number' && typeof p.value !== 'boolean' && typeof p.value !== 'string') {
          throw new OutpostError('OUTPOST_E_COMMAND_PARAMS', 'points.write needs "value" (number, boolean or string)');
        }
        return { point: p.point, value: p.value };
      },
      run: async (p: { point: string; value: PointValue }) => {
        await this.write(p.point, p.value, 'command');
        return { point: p.point, value: p.value };
      },
    });
    this.health = new HealthMonitor(deps.systemProbe, config.health, { clock: deps.clock, logger: log('health'), intervalMs: config.health.sampleIntervalMs });
  }

  async start(): Promise<RuntimeEndpoints> {
    const { config, deps } = this;
    const log = deps.logger.child({ component: 'runtime' });
    try {
      await this.health.start();
      this.upstream = await this.createUpstream(config.upstream);
      await this.upstream.start();
      let brokerAt: RuntimeEndpoints['broker'] = null;
      if (config.broker.enabled) {
        // Topics of `$broker(…)` routes belong to the gateway like `<prefix>/…`: clients cannot publish there.
        const routeTopics = config.routes.flatMap((r) => {
          const sink = compileRoute(r.route).sink;
          return sink.type === 'broker' ? [sink.topic] : [];
        });
        this.broker = new LocalBroker(config.broker, routeTopics, {
          logger: deps.logger.child({ component: 'broker' }),
          clock: deps.clock,
          commands: this.commands,
          gc: deps.gc ?? null,
          statusPayload: () => ({ gateway: config.gateway.id, bootId: this.bootId, version: deps.version }),
        });
        brokerAt = await this.broker.start();
      }
      let apiAt: RuntimeEndpoints['api'] = null;
      if (config.api.enabled) {
        const token = await ensureApiToken(config.gateway.dataDir);
        this.api = new ApiServer({ ...config.api, token }, this.apiBackend(), { logger: deps.logger.child({ component: 'api' }), monotonic: () => deps.clock.monotonic() });
        apiAt = await this.api.start();
      }
      this.pipeline.start();
      // Create every driver first, then start them together: a rule fired by the first sample of one
      // device may write to another device, and its write waits for that device to be started.
      const enabled = config.devices.filter((x) => x.enabled);
      const created: Array<{ id: string; driver: DeviceDriver; start: () => void; failed: (e: unknown) => void }> = [];
      for (const d of enabled) {
        const driver = await deps.drivers.create(d, {
          clock: deps.clock,
          logger: deps.logger.child({ component: 'driver', device: d.id, kind: d.kind }),
          dataDir: config.gateway.dataDir,
        });
        let start!: () => void;
        let failed!: (e: unknown) => void;
        const ready = new Promise<void>((resolve, reject) => {
          start = resolve;
          failed = reject;
        });
        ready.catch(() => undefined);
        this.drivers.set(d.id, { kind: d.kind, driver, ready });
        created.push({ id: d.id, driver, start, failed });
      }
      await Promise.all(
        created.map(async (c) => {
          try {
            await c.driver.start({ onSamples: (s) => this.pipeline.ingest(s) });
            c.start();
          } catch (e) {
            c.failed(e);
            throw e;
          }
        }),
      );
      this.started = true;
      log.info({ bootId: this.bootId, devices: this.drivers.size, api: apiAt, broker: brokerAt }, 'runtime started');
      for (const f of this.startedListeners.splice(0)) {
        try {
          f();
        } catch (e) {
          log.error({ err: describeCause(e) }, 'start listener failed');
        }
      }
      return { api: apiAt, broker: brokerAt };
    } catch (e) {
      log.error({ err: describeCause(e) }, 'runtime start failed; stopping what started');
      await this.stop();
      throw isOutpostError(e) ? e : new OutpostError('OUTPOST_E_RUNTIME_START', 'the runtime could not start', { cause: e });
    }
  }

  /** Calls `f` once the runtime has started (at once if it has); areas use it to begin work that needs the upstream. */
  onStarted(f: () => void): void {
    if (this.started) queueMicrotask(f);
    else this.startedListeners.push(f);
  }

  /** Calls `f` when stop begins (areas cancel their timers there). */
  onStopping(f: () => void): void {
    this.stoppingListeners.push(f);
  }

  /**
   * Reports a system event (e.g. `ota.rolled-back`) upstream on the reserved route `$system` (priority 0,
   * kept 7 days) and on the local broker under `system/<event>`. Resolves once the upstream durably
   * accepted it; rejects (OUTPOST_E_UPSTREAM_CLOSED) before start or after stop.
   */
  async reportSystemEvent(event: string, data: Record<string, unknown>): Promise<void> {
    const up = this.upstream;
    if (!this.started || !up || this.stopping) throw new OutpostError('OUTPOST_E_UPSTREAM_CLOSED', 'upstream is not running', { details: { event } });
    const message: Message = { kind: 'system', source: `/system/${event}`, body: { event, time: this.deps.clock.now(), bootId: this.bootId, data } };
    const b = this.config.broker;
    if (this.broker) void this.broker.publish(`${b.topicPrefix}/system/${event}`, JSON.stringify(message.body), false).catch(() => undefined);
    await up.enqueue({ route: SYSTEM_ROUTE, priority: 0, ttlSeconds: 7 * 86_400, enqueuedAt: this.deps.clock.now(), message });
  }

  /** Stops everything: drivers first (safe states applied), then pipeline, API, broker, upstream. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const log = this.deps.logger.child({ component: 'runtime' });
      for (const f of this.stoppingListeners.splice(0)) {
        try {
          f();
        } catch (e) {
          log.error({ err: describeCause(e) }, 'stop listener failed');
        }
      }
      for (const { driver } of this.drivers.values()) {
        await driver.stop().catch((e: unknown) => log.error({ err: describeCause(e), device: driver.deviceId }, 'driver stop failed'));
      }
      this.pipeline.stop();
      this.health.stop();
      await this.api?.stop();
      await this.broker?.stop();
      await this.upstream?.stop().catch((e: unknown) => log.error({ err: describeCause(e) }, 'upstream stop failed'));
      if (this.started) log.info({}, 'runtime stopped');
      this.started = false;
    })();
    return this.stopping;
  }

  /**
   * Writes a point in engineering units: the local broker, the API, cloud commands and other areas
   * call this. A write here never counts as a rule's, so a triggered rule's outputs refuse it
   * (OUTPOST_E_RUNTIME_INTERLOCKED) unless the rule allows overrides.
   */
  write(pointId: string, value: PointValue, origin: string): Promise<void> {
    return this.writePoint(pointId, value, origin, null);
  }

  private async writePoint(pointId: string, value: PointValue, origin: string, rule: string | null): Promise<void> {
    const info = this.pointInfo.get(pointId);
    if (!info) throw new OutpostError('OUTPOST_E_RUNTIME_UNKNOWN_POINT', 'no such point', { details: { point: pointId } });
    if (!info.writable) throw new OutpostError('OUTPOST_E_RUNTIME_NOT_WRITABLE', 'point is not writable', { details: { point: pointId } });
    const entry = this.drivers.get(info.device);
    if (!entry) throw new OutpostError('OUTPOST_E_HAL_NOT_CONNECTED', 'device of the point is not running', { details: { point: pointId, device: info.device } });
    const raw = unapplyScale(coerce(value, info.valueType, pointId), this.pointConfig.get(pointId)?.scale);
    const checkInterlock = () => {
      try {
        return this.pipeline.interlocks.check(pointId, rule);
      } catch (e) {
        this.writeStats.writes_interlocked_total++;
        this.deps.logger.warn({ component: 'runtime', point: pointId, origin, err: describeCause(e) }, 'write refused by an interlock');
        throw e;
      }
    };
    checkInterlock();
    await entry.ready;
    // Checked again right before the driver call (no await in between): a rule that triggered while this write waited holds the output now.
    const overridden = checkInterlock();
    await entry.driver.write(pointId, raw);
    const key = rule !== null ? 'writes_rule_total' : `writes_${origin}_total`;
    this.writeStats[key in this.writeStats ? (key as keyof typeof this.writeStats) : 'writes_other_total']++;
    if (overridden.length > 0) {
      this.writeStats.writes_overridden_total++;
      this.deps.logger.warn({ component: 'runtime', point: pointId, value, origin, heldBy: overridden.map((h) => h.rule) }, 'write overrode an interlock (allowOverride)');
    }
    this.deps.logger.debug({ component: 'runtime', point: pointId, value, origin }, 'point written');
  }

  points(): PointSnapshot[] {
    return this.pipeline.snapshot();
  }

  healthReport(): { ok: boolean; checks: HealthCheck[] } {
    const checks: HealthCheck[] = [...this.health.checks()];
    checks.push({ name: 'runtime', ok: this.started, critical: true });
    if (this.config.broker.enabled) checks.push({ name: 'broker', ok: this.broker !== null, critical: true });
    // A cloud link being down is normal on a flaky network (the store keeps the data): not critical, or the watchdog would restart the gateway.
    checks.push({ name: 'upstream', ok: this.upstream?.connected() ?? false, critical: this.config.upstream.type === 'file' });
    for (const { driver } of this.drivers.values()) {
      checks.push({ name: `device:${driver.deviceId}`, ok: driver.connected(), critical: false });
    }
    return { ok: checks.every((c) => c.ok || !c.critical), checks };
  }

  metrics(): string {
    const components = [
      { name: 'upstream', counters: () => ({ ...(this.upstream?.counters() ?? {}), ...this.upstreamStats }) },
      { name: 'runtime', counters: () => this.writeStats },
      ...(this.api ? [{ name: 'api', counters: () => (this.api as ApiServer).counters() }] : []),
      ...(this.broker ? [{ name: 'broker', counters: () => (this.broker as LocalBroker).counters() }] : []),
    ];
    return collectMetrics({
      version: this.deps.version,
      gatewayId: this.config.gateway.id,
      bootId: this.bootId,
      health: this.health,
      pipeline: this.pipeline,
      router: this.router,
      drivers: [...this.drivers.values()],
      components,
    });
  }

  /** The driver of a device (for tests, benchmarks and diagnostics). */
  driver(deviceId: string): DeviceDriver | undefined {
    return this.drivers.get(deviceId)?.driver;
  }

  private apiBackend() {
    return {
      health: () => this.healthReport(),
      metrics: () => this.metrics(),
      points: () => this.points(),
      point: (id: string) => this.pipeline.point(id),
      info: () => ({ gateway: this.config.gateway.id, version: this.deps.version, bootId: this.bootId, devices: this.drivers.size, points: this.pointInfo.size }),
      write: (id: string, v: PointValue, origin: string) => this.write(id, v, origin),
    };
  }

  private onMessage(message: Message, topicSuffix: string): void {
    const b = this.config.broker;
    if (this.broker && (message.kind === 'event' || b.publishReadings)) {
      void this.broker.publish(`${b.topicPrefix}/${topicSuffix}`, JSON.stringify(message.body), message.kind === 'reading' && b.retainReadings);
    }
    this.router.dispatch(message);
  }

  private toUpstream(message: Message, route: { id: string; priority: number; ttlSeconds: number }): void {
    const up = this.upstream;
    if (!up) return;
    up.enqueue({ route: route.id, priority: route.priority, ttlSeconds: route.ttlSeconds, enqueuedAt: this.deps.clock.now(), message }).catch((e: unknown) => {
      this.upstreamStats.rejected_total++;
      this.refusalLog.since++;
      const now = this.deps.clock.monotonic();
      if (now - this.refusalLog.at < 10_000) return;
      this.deps.logger.warn({ component: 'runtime', route: route.id, err: describeCause(e), refused: this.refusalLog.since }, 'upstream refused a record');
      this.refusalLog = { at: now, since: 0 };
    });
  }

  private async createUpstream(config: UpstreamConfig): Promise<Upstream> {
    const deps = {
      clock: this.deps.clock,
      logger: this.deps.logger.child({ component: 'upstream' }),
      gatewayId: this.config.gateway.id,
      dataDir: this.config.gateway.dataDir,
      commands: this.commands,
      bootId: this.bootId,
    };
    if (config.type === 'file') {
      const file = path.resolve(this.config.gateway.dataDir, config.path ?? path.join('upstream', 'outbox.ndjson'));
      return new FileUpstream(file, config.maxBytes, deps);
    }
    if (!this.deps.upstreamFactory) throw new OutpostError('OUTPOST_E_RUNTIME_START', 'no upstream implementation for this type', { details: { type: (config as { type: string }).type } });
    return this.deps.upstreamFactory(config, deps);
  }
}
