import type { Logger } from 'pino';
import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import { Counters } from '../counters.js';
import { qualityOfError } from '../quality.js';
import { GOOD, type DeviceDriver, type PointValue, type Sample, type SampleSink } from '../types.js';
import type { GpioLine, GpioPort } from './port.js';
import type { GpioDeviceConfig, GpioPointConfig } from './schema.js';

export interface GpioDriverDeps {
  readonly clock: Clock;
  readonly logger: Logger;
}

interface OpenLine {
  readonly config: GpioPointConfig;
  readonly line: GpioLine;
  debounce: unknown;
}

function toBool(value: PointValue): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (/^(1|true|on|high)$/i.test(value)) return true;
  if (/^(0|false|off|low)$/i.test(value)) return false;
  throw new OutpostError('OUTPOST_E_HAL_VALUE', 'value is not a boolean level', { details: { value } });
}

/**
 * Inputs and outputs of one GPIO controller.
 * Invariants: outputs are driven to their safe state when opened and again at stop; an input edge
 * produces a sample only after the level held for `debounceMs`; every line is re-read every
 * `pollIntervalMs`, so a missed edge is corrected; a write produces a sample of the new level at once.
 */
export class GpioDriver implements DeviceDriver {
  readonly deviceId: string;
  private readonly stats = new Counters(['edges_total', 'debounced_total', 'writes_total', 'write_errors_total', 'read_errors_total']);
  private readonly lines = new Map<string, OpenLine>();
  private sink: SampleSink | null = null;
  private timer: unknown = null;
  private stopped = false;

  constructor(
    private readonly config: GpioDeviceConfig,
    private readonly port: GpioPort,
    private readonly deps: GpioDriverDeps,
  ) {
    this.deviceId = config.id;
  }

  async start(sink: SampleSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    for (const p of this.config.points) {
      const line = await this.port.open(p.pin, {
        direction: p.direction,
        edge: p.direction === 'in' ? p.edge : 'none',
        activeLow: p.activeLow,
        ...(p.direction === 'out' ? { initial: p.safeState ?? false } : {}),
      });
      const open: OpenLine = { config: p, line, debounce: null };
      this.lines.set(p.id, open);
      if (p.direction === 'in' && p.edge !== 'none') line.watch((v) => this.onEdge(open, v));
    }
    this.timer = this.deps.clock.setInterval(() => void this.poll(), this.config.pollIntervalMs);
    await this.poll();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) this.deps.clock.clearInterval(this.timer);
    for (const l of this.lines.values()) {
      if (l.debounce !== null) this.deps.clock.clearTimeout(l.debounce);
      if (l.config.direction === 'out') {
        await l.line.write(l.config.safeState ?? false).catch((e: unknown) => {
          this.deps.logger.error({ err: describeCause(e), point: l.config.id }, 'could not apply safe state');
        });
      }
      await l.line.close().catch(() => undefined);
    }
    this.lines.clear();
    await this.port.close();
  }

  connected(): boolean {
    return !this.stopped && this.lines.size > 0;
  }

  counters(): Readonly<Record<string, number>> {
    return this.stats.snapshot();
  }

  async write(pointId: string, value: PointValue): Promise<void> {
    const l = this.lines.get(pointId);
    if (!l) throw new OutpostError('OUTPOST_E_HAL_UNKNOWN_POINT', 'no such point on this device', { details: { pointId, device: this.deviceId } });
    if (l.config.direction !== 'out' || !l.config.writable) {
      throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'point is not a writable output', { details: { pointId } });
    }
    const level = toBool(value);
    this.stats.inc('writes_total');
    try {
      await l.line.write(level);
    } catch (e) {
      this.stats.inc('write_errors_total');
      throw e;
    }
    this.emit([{ pointId, value: level, quality: GOOD, sourceTime: this.deps.clock.now() }]);
  }

  private onEdge(l: OpenLine, value: boolean): void {
    this.stats.inc('edges_total');
    if (l.config.debounceMs === 0) {
      this.emit([{ pointId: l.config.id, value, quality: GOOD, sourceTime: this.deps.clock.now() }]);
      return;
    }
    if (l.debounce !== null) {
      this.stats.inc('debounced_total');
      this.deps.clock.clearTimeout(l.debounce);
    }
    l.debounce = this.deps.clock.setTimeout(() => {
      l.debounce = null;
      void this.readOne(l).then((s) => this.emit([s]));
    }, l.config.debounceMs);
  }

  private async readOne(l: OpenLine): Promise<Sample> {
    try {
      return { pointId: l.config.id, value: await l.line.read(), quality: GOOD, sourceTime: this.deps.clock.now() };
    } catch (e) {
      this.stats.inc('read_errors_total');
      return { pointId: l.config.id, value: null, quality: qualityOfError(e), sourceTime: this.deps.clock.now() };
    }
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    const samples = await Promise.all([...this.lines.values()].filter((l) => l.debounce === null).map((l) => this.readOne(l)));
    this.emit(samples);
  }

  private emit(samples: Sample[]): void {
    if (!this.stopped && samples.length > 0) this.sink?.onSamples(samples);
  }
}
