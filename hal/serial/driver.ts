import type { Logger } from 'pino';
import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import { Counters } from '../counters.js';
import { Reconnector } from '../reconnector.js';
import { JobQueue } from '../job-queue.js';
import { GOOD, bad, type DeviceDriver, type PointValue, type Quality, type Sample, type SampleSink } from '../types.js';
import { Framer, checkNmea } from './framer.js';
import type { SerialLink } from './port.js';
import type { SerialDeviceConfig, SerialPointConfig, SerialTransactionConfig } from './schema.js';

export interface SerialDriverDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly random?: () => number;
}

interface CompiledPoint {
  readonly config: SerialPointConfig;
  readonly match: RegExp;
}

interface Pending {
  readonly tx: SerialTransactionConfig;
  readonly expect: RegExp | null;
  readonly resolve: (frame: string) => void;
}

/** Parses one field into a point's type; null when it does not parse. */
export function parseValue(text: string, type: SerialPointConfig['type']): PointValue | null {
  const t = text.trim();
  if (type === 'string') return t;
  if (type === 'boolean') {
    if (/^(1|true|on|yes|a)$/i.test(t)) return true;
    if (/^(0|false|off|no|v)$/i.test(t)) return false;
    return null;
  }
  if (t === '') return null;
  if (type === 'integer') {
    // Beyond 2^53 a double no longer holds the integer exactly (and 400 digits make Infinity): not a value.
    const n = /^[+-]?\d+$/.test(t) ? Number.parseInt(t, 10) : /^0x[0-9a-f]+$/i.test(t) ? Number.parseInt(t.slice(2), 16) : Number.NaN;
    return Number.isSafeInteger(n) ? n : null;
  }
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/**
 * A line device on a serial port: frames the byte stream, checks checksums, maps frames to points,
 * and runs polled request/response transactions.
 * Invariants: a malformed frame (bad checksum, unparsable field, over-long) is counted and dropped,
 * never thrown; one transaction is outstanding on the port at a time (JobQueue depth 1), and a
 * transaction that gets no matching frame within its timeout reports its points bad('timeout');
 * when the port disappears every point is reported bad('not connected') and the port is reopened
 * with backoff, without a runtime restart.
 */
export class SerialDriver implements DeviceDriver {
  readonly deviceId: string;
  private readonly stats = new Counters([
    'frames_total',
    'checksum_errors_total',
    'parse_errors_total',
    'overflows_total',
    'reopens_total',
    'requests_total',
    'timeouts_total',
    'unmatched_frames_total',
    'cycle_overruns_total',
    'writes_total',
  ]);
  private readonly framer: Framer;
  private readonly unsolicited: CompiledPoint[];
  private readonly byTransaction = new Map<string, CompiledPoint[]>();
  private readonly reopen: Reconnector;
  private readonly queue = new JobQueue(1);
  private readonly busy = new Set<string>();
  private readonly timers: unknown[] = [];
  private pending: Pending | null = null;
  private sink: SampleSink | null = null;
  private stopped = false;
  /** Backoff delay owed before the next open attempt (0 after a success). */

  constructor(
    private readonly config: SerialDeviceConfig,
    private readonly link: SerialLink,
    private readonly deps: SerialDriverDeps,
  ) {
    this.deviceId = config.id;
    this.framer = new Framer(config.framing ?? { type: 'delimiter', delimiter: '\r\n', maxLength: 1024 });
    const compiled = config.points.map((p) => ({ config: p, match: new RegExp(p.match) }));
    this.unsolicited = compiled.filter((p) => p.config.transaction === undefined);
    for (const p of compiled) {
      if (p.config.transaction === undefined) continue;
      this.byTransaction.set(p.config.transaction, [...(this.byTransaction.get(p.config.transaction) ?? []), p]);
    }
    this.reopen = new Reconnector({
      open: () => link.open(),
      isOpen: () => link.isOpen(),
      clock: deps.clock,
      logger: deps.logger,
      initialMs: 500,
      maxMs: config.reopenMaxMs,
      ...(deps.random ? { random: deps.random } : {}),
      onFailure: () => this.stats.inc('reopens_total'),
      messages: { opened: 'serial port open', failed: 'serial open failed' },
      logFields: { device: config.id },
    });
    link.onData((chunk) => this.onChunk(chunk));
    link.onClose(() => this.onLost());
  }

  async start(sink: SampleSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    this.reopen.start();
    await this.reopen.ensure(true);
    if (!this.link.isOpen()) void this.reopen.ensure();
    for (const tx of this.config.transactions) {
      const run = () => void this.transaction(tx);
      this.timers.push(this.deps.clock.setInterval(run, tx.intervalMs));
      run();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.reopen.stop();
    for (const t of this.timers.splice(0)) this.deps.clock.clearInterval(t);
    await this.link.close().catch(() => undefined);
  }

  connected(): boolean {
    return this.link.isOpen();
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats.snapshot(), overflows_total: this.framer.overflows };
  }

  /** A line device's points are read-only; requests are configured as transactions. */
  async write(pointId: string, _value: PointValue): Promise<void> {
    throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'serial line points are read-only', { details: { pointId } });
  }

  private async transaction(tx: SerialTransactionConfig): Promise<void> {
    if (this.stopped) return;
    if (this.busy.has(tx.id)) {
      this.stats.inc('cycle_overruns_total');
      return;
    }
    this.busy.add(tx.id);
    const ids = (this.byTransaction.get(tx.id) ?? []).map((p) => p.config.id);
    try {
      await this.queue.run(async () => {
        if (this.stopped) return;
        if (!this.link.isOpen()) {
          this.emit(ids, bad('not connected'));
          return;
        }
        this.stats.inc('requests_total');
        const answered = await this.exchange(tx);
        if (!answered && !this.stopped) {
          this.stats.inc('timeouts_total');
          this.emit(ids, this.link.isOpen() ? bad('timeout') : bad('not connected'));
        }
      });
    } finally {
      this.busy.delete(tx.id);
    }
  }

  /** Sends the request and waits for its response frame; resolves false on timeout or write failure. */
  private exchange(tx: SerialTransactionConfig): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = this.deps.clock.setTimeout(() => finish(false), tx.timeoutMs);
      const finish = (ok: boolean) => {
        this.deps.clock.clearTimeout(timer);
        if (this.pending?.tx === tx) this.pending = null;
        resolve(ok);
      };
      this.pending = { tx, expect: tx.expect === undefined ? null : new RegExp(tx.expect), resolve: () => finish(true) };
      this.link.write(Buffer.from(tx.send, 'latin1')).catch((e: unknown) => {
        this.deps.logger.warn({ err: describeCause(e), transaction: tx.id }, 'serial request could not be sent');
        finish(false);
      });
    });
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
      const pending = this.pending;
      if (pending && (pending.expect === null || pending.expect.test(text))) {
        pending.resolve(text);
        this.extract(text, this.byTransaction.get(pending.tx.id) ?? [], samples, now);
        continue;
      }
      if (this.extract(text, this.unsolicited, samples, now) === 0) this.stats.inc('unmatched_frames_total');
    }
    if (samples.length > 0) this.sink?.onSamples(samples);
  }

  private extract(text: string, points: readonly CompiledPoint[], out: Sample[], now: number): number {
    let matched = 0;
    for (const p of points) {
      const m = p.match.exec(text);
      if (!m) continue;
      matched++;
      const raw = p.config.group !== undefined ? m[p.config.group] : p.config.field !== undefined ? text.split(',')[p.config.field] : m[0];
      const value = raw === undefined ? null : parseValue(raw, p.config.type);
      if (value === null) this.stats.inc('parse_errors_total');
      out.push({ pointId: p.config.id, value, quality: value === null ? bad('parse error') : GOOD, sourceTime: now });
    }
    return matched;
  }

  private emit(ids: readonly string[], quality: Quality): void {
    if (this.stopped || ids.length === 0) return;
    const now = this.deps.clock.now();
    this.sink?.onSamples(ids.map((pointId) => ({ pointId, value: null, quality, sourceTime: now })));
  }

  private onLost(): void {
    if (this.stopped) return;
    this.deps.logger.warn({ device: this.deviceId }, 'serial port closed; reopening');
    this.emit(this.config.points.map((p) => p.id), bad('not connected'));
    void this.reopen.ensure();
  }

}
