import type { Logger } from 'pino';
import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import { Backoff } from '../backoff.js';
import type { Clock } from '../clock.js';
import { Counters } from '../counters.js';
import { GOOD, bad, type DeviceDriver, type PointValue, type Sample, type SampleSink } from '../types.js';
import { Framer, checkNmea } from './framer.js';
import type { SerialLink } from './port.js';
import type { SerialDeviceConfig, SerialPointConfig } from './schema.js';

export interface SerialDriverDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly random?: () => number;
}

interface CompiledPoint {
  readonly config: SerialPointConfig;
  readonly match: RegExp;
}

function parseValue(text: string, type: SerialPointConfig['type']): PointValue | null {
  const t = text.trim();
  if (type === 'string') return t;
  if (type === 'boolean') {
    if (/^(1|true|on|yes|a)$/i.test(t)) return true;
    if (/^(0|false|off|no|v)$/i.test(t)) return false;
    return null;
  }
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/**
 * A line device on a serial port: frames the byte stream, checks checksums, and maps frames to points.
 * Invariants: a malformed frame (bad checksum, unparsable field) is counted and dropped, never
 * thrown; when the port disappears every point is reported bad('not connected') and the port is
 * reopened with backoff.
 */
export class SerialDriver implements DeviceDriver {
  readonly deviceId: string;
  private readonly stats = new Counters(['frames_total', 'checksum_errors_total', 'parse_errors_total', 'overflows_total', 'reopens_total', 'writes_total']);
  private readonly framer: Framer;
  private readonly compiled: CompiledPoint[];
  private readonly backoff: Backoff;
  private sink: SampleSink | null = null;
  private stopped = false;
  private opening: Promise<void> | null = null;

  constructor(
    private readonly config: SerialDeviceConfig,
    private readonly link: SerialLink,
    private readonly deps: SerialDriverDeps,
  ) {
    this.deviceId = config.id;
    this.framer = new Framer(config.framing ?? { type: 'delimiter', delimiter: '\r\n', maxLength: 1024 });
    this.compiled = config.points.map((p) => ({ config: p, match: new RegExp(p.match) }));
    this.backoff = new Backoff(500, 30_000, deps.random);
    link.onData((chunk) => this.onChunk(chunk));
    link.onClose(() => this.onLost());
  }

  async start(sink: SampleSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    void this.openLoop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.link.close().catch(() => undefined);
  }

  connected(): boolean {
    return this.link.isOpen();
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats.snapshot(), overflows_total: this.framer.overflows };
  }

  /** Sends raw text to the device (a line device's points are read-only; commands go through here). */
  async write(pointId: string, _value: PointValue): Promise<void> {
    throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'serial line points are read-only', { details: { pointId } });
  }

  private onChunk(chunk: Buffer): void {
    if (this.stopped) return;
    const samples: Sample[] = [];
    const now = this.deps.clock.now();
    for (const frame of this.framer.push(chunk)) {
      this.stats.inc('frames_total');
      let text = frame.toString('latin1');
      if (this.config.checksum === 'nmea') {
        const ok = checkNmea(text);
        if (ok === null) {
          this.stats.inc('checksum_errors_total');
          continue;
        }
        text = ok;
      }
      for (const p of this.compiled) {
        const m = p.match.exec(text);
        if (!m) continue;
        const raw = p.config.group !== undefined ? m[p.config.group] : p.config.field !== undefined ? text.split(',')[p.config.field] : m[0];
        const value = raw === undefined ? null : parseValue(raw, p.config.type);
        if (value === null) this.stats.inc('parse_errors_total');
        samples.push({ pointId: p.config.id, value, quality: value === null ? bad('parse error') : GOOD, sourceTime: now });
      }
    }
    if (samples.length > 0) this.sink?.onSamples(samples);
  }

  private onLost(): void {
    if (this.stopped) return;
    this.deps.logger.warn({ device: this.deviceId }, 'serial port closed; reopening');
    const now = this.deps.clock.now();
    this.sink?.onSamples(this.config.points.map((p) => ({ pointId: p.id, value: null, quality: bad('not connected'), sourceTime: now })));
    void this.openLoop();
  }

  private openLoop(): Promise<void> {
    this.opening ??= (async () => {
      while (!this.stopped && !this.link.isOpen()) {
        try {
          await this.link.open();
          this.backoff.reset();
        } catch (e) {
          this.stats.inc('reopens_total');
          const delay = this.backoff.next();
          this.deps.logger.warn({ err: describeCause(e), retryInMs: delay }, 'serial open failed');
          await this.deps.clock.sleep(delay);
        }
      }
    })().finally(() => {
      this.opening = null;
    });
    return this.opening;
  }
}
