import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import { describeCause } from '../errors/outpost-error.js';
import type { SystemProbe, SystemSnapshot } from './system-probe.js';

export interface HealthLimits {
  readonly maxEventLoopLagMs: number;
  readonly maxRssMiB: number;
}

/** One named check for /healthz. */
export interface HealthCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail?: string;
  /** A failing non-critical check (a sensor offline) is reported but does not make the gateway unhealthy. */
  readonly critical: boolean;
}

export interface ProcessSnapshot {
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  readonly eventLoopLagP50Ms: number;
  readonly eventLoopLagP99Ms: number;
  readonly eventLoopLagMaxMs: number;
  readonly uptimeSeconds: number;
}

/**
 * Samples host metrics (through the injected SystemProbe) and process metrics (RSS, heap,
 * event-loop delay) every interval. Invariants: at most one system sample runs at a time; a failing
 * probe keeps the previous snapshot and is logged, never thrown; the event-loop histogram covers
 * the last interval only.
 */
export class HealthMonitor {
  private system: SystemSnapshot | null = null;
  private lag: { p50: number; p99: number; max: number } = { p50: 0, p99: 0, max: 0 };
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  private timer: unknown = null;
  private sampling = false;
  private readonly startedAt: number;

  constructor(
    private readonly probe: SystemProbe,
    private readonly limits: HealthLimits,
    private readonly deps: { clock: Clock; logger: Logger; intervalMs: number },
  ) {
    this.startedAt = deps.clock.monotonic();
  }

  async start(): Promise<void> {
    this.histogram.enable();
    await this.sample();
    this.timer = this.deps.clock.setInterval(() => void this.sample(), this.deps.intervalMs);
  }

  stop(): void {
    if (this.timer !== null) this.deps.clock.clearInterval(this.timer);
    this.timer = null;
    this.histogram.disable();
  }

  systemSnapshot(): SystemSnapshot | null {
    return this.system;
  }

  processSnapshot(): ProcessSnapshot {
    const mem = process.memoryUsage();
    return {
      rssBytes: mem.rss,
      heapUsedBytes: mem.heapUsed,
      eventLoopLagP50Ms: this.lag.p50,
      eventLoopLagP99Ms: this.lag.p99,
      eventLoopLagMaxMs: this.lag.max,
      uptimeSeconds: (this.deps.clock.monotonic() - this.startedAt) / 1000,
    };
  }

  /** Checks of the process itself; the runtime adds its own (drivers, broker, upstream). */
  checks(): HealthCheck[] {
    const p = this.processSnapshot();
    const rssMiB = p.rssBytes / 1048576;
    return [
      { name: 'event-loop', ok: p.eventLoopLagP99Ms <= this.limits.maxEventLoopLagMs, detail: `p99 ${p.eventLoopLagP99Ms.toFixed(1)} ms`, critical: true },
      { name: 'memory', ok: rssMiB <= this.limits.maxRssMiB, detail: `rss ${rssMiB.toFixed(0)} MiB`, critical: true },
    ];
  }

  private async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const h = this.histogram;
      if (h.count > 0) this.lag = { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6 };
      h.reset();
      this.system = await this.probe.sample();
    } catch (e) {
      this.deps.logger.warn({ err: describeCause(e) }, 'system metrics sample failed');
    } finally {
      this.sampling = false;
    }
  }
}
