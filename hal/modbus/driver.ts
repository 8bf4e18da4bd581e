import type { Logger } from 'pino';
import { OutpostError, describeCause, isOutpostError } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import { Counters } from '../counters.js';
import { Reconnector } from '../reconnector.js';
import { JobQueue } from '../job-queue.js';
import { qualityOfError } from '../quality.js';
import { GOOD, bad, uncertain, type DeviceDriver, type PointValue, type Sample, type SampleSink } from '../types.js';
import { decode, encode, isBitTable, registerCount } from './codec.js';
import { blockKey, planReads, splitBlock, type ReadBlock } from './planner.js';
import type { ModbusPort } from './port.js';
import type { ModbusDeviceConfig, ModbusPointConfig } from './schema.js';

export interface ModbusDriverDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly random?: () => number;
}

/**
 * Polls one Modbus device (a TCP connection or an RTU line) and writes to it.
 * Invariants: every request goes through one JobQueue (writes ahead of polls, `inFlight` deep for
 * TCP, 1 for RTU: one outstanding request per line, shared by all its unit ids); each poll group
 * runs at most one cycle at a time (an overrun is counted, not queued, and points whose last good
 * value is older than their interval are then reported uncertain('stale')); every configured point
 * gets a sample each cycle, bad with a reason when it cannot be read; a unit whose requests timed
 * out `deadUnit.afterTimeouts` times in a row is skipped for `deadUnit.skipMs` (its points bad
 * 'timeout', no request sent, no retries while it is failing) so it cannot stall its line; a
 * malformed answer is counted and leaves the line open; a lost connection is reopened with
 * exponential backoff, never by the caller.
 */
export class ModbusDriver implements DeviceDriver {
  readonly deviceId: string;
  private readonly queue: JobQueue;
  private readonly stats = new Counters([
    'requests_total',
    'request_errors_total',
    'timeouts_total',
    'exceptions_total',
    'writes_total',
    'write_errors_total',
    'reconnects_total',
    'cycle_overruns_total',
    'frame_errors_total',
    'skipped_requests_total',
    'dead_units_total',
  ]);
  /** Per unit id: consecutive timed-out requests and, while dead, until when it is skipped (monotonic ms). */
  private readonly units = new Map<number, { timeouts: number; skipUntil: number }>();
  /** Last good value of each point, for uncertain('stale') reports on overrun. */
  private readonly lastGood = new Map<string, { value: PointValue; at: number }>();
  private readonly link: Reconnector;
  private readonly timers: unknown[] = [];
  private readonly busy = new Set<string>();
  /** Merged blocks that answered exception 2 and are now read point by point. */
  private readonly splitKeys = new Set<string>();
  private readonly points = new Map<string, ModbusPointConfig>();
  private sink: SampleSink | null = null;
  private stopped = false;

  constructor(
    private readonly config: ModbusDeviceConfig,
    private readonly port: ModbusPort,
    private readonly deps: ModbusDriverDeps,
  ) {
    this.deviceId = config.id;
    const depth = config.connection.type === 'tcp' ? config.connection.inFlight : 1;
    this.queue = new JobQueue(depth);
    this.link = new Reconnector({
      open: () => port.connect(),
      isOpen: () => port.isOpen(),
      clock: deps.clock,
      logger: deps.logger,
      initialMs: 250,
      maxMs: config.reconnectMaxMs,
      ...(deps.random ? { random: deps.random } : {}),
      onFailure: () => this.stats.inc('reconnects_total'),
      messages: { opened: 'modbus connected', failed: 'modbus connect failed' },
      logFields: { device: config.id },
    });
    for (const p of config.points) this.points.set(p.id, p);
  }

  async start(sink: SampleSink): Promise<void> {
    this.sink = sink;
    this.stopped = false;
    this.link.start();
    // One connect attempt before the first cycle, so a reachable device starts good; the loop keeps trying otherwise.
    await this.link.ensure(true);
    const groups = new Map<string, { intervalMs: number; points: ModbusPointConfig[] }>();
    groups.set('default', { intervalMs: this.config.pollIntervalMs, points: [] });
    for (const g of this.config.pollGroups) groups.set(g.id, { intervalMs: g.intervalMs, points: [] });
    for (const p of this.config.points) groups.get(p.pollGroup ?? 'default')?.points.push(p);
    for (const [name, g] of groups) {
      if (g.points.length === 0) continue;
      const blocks = planReads(g.points, this.config);
      const cycle = () => void this.cycle(name, blocks);
      this.timers.push(this.deps.clock.setInterval(cycle, g.intervalMs));
      cycle();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.link.stop();
    for (const t of this.timers.splice(0)) this.deps.clock.clearInterval(t);
    await this.port.close().catch(() => undefined);
  }

  connected(): boolean {
    return this.port.isOpen();
  }

  counters(): Readonly<Record<string, number>> {
    return this.stats.snapshot();
  }

  /** Plan of the default and extra poll groups, for diagnostics and benchmarks. */
  plan(): ReadBlock[] {
    return planReads(this.config.points, this.config);
  }

  async write(pointId: string, value: PointValue): Promise<void> {
    const p = this.points.get(pointId);
    if (!p) throw new OutpostError('OUTPOST_E_HAL_UNKNOWN_POINT', 'no such point on this device', { details: { pointId, device: this.deviceId } });
    if (!p.writable || p.table === 'discrete' || p.table === 'input') {
      throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'point is not writable', { details: { pointId, table: p.table } });
    }
    try {
      encode(p, value); // OUTPOST_E_HAL_VALUE before anything is queued or sent
      if (!this.port.isOpen()) {
        void this.link.ensure();
        throw new OutpostError('OUTPOST_E_MODBUS_NOT_CONNECTED', 'modbus device is not connected', { details: { device: this.deviceId } });
      }
      this.stats.inc('writes_total');
      await this.queue.run(async () => {
        if (p.table === 'coil') return this.port.writeCoils(p.unitId, p.address, [encode(p, value)[0] === 1]);
        let current = 0;
        if (p.type === 'bit') current = (await this.request(p.unitId, () => this.port.read(p.unitId, 'holding', p.address, 1)))[0] ?? 0;
        return this.port.writeRegisters(p.unitId, p.address, encode(p, value, current));
      }, 'high');
    } catch (e) {
      this.stats.inc('write_errors_total');
      if (!isOutpostError(e, 'OUTPOST_E_HAL_VALUE') && !isOutpostError(e, 'OUTPOST_E_MODBUS_NOT_CONNECTED')) this.noteError(e);
      throw e;
    }
  }

  private async cycle(group: string, blocks: readonly ReadBlock[]): Promise<void> {
    if (this.stopped) return;
    if (this.busy.has(group)) {
      this.stats.inc('cycle_overruns_total');
      this.reportStale(blocks);
      return;
    }
    this.busy.add(group);
    try {
      const samples: Sample[] = [];
      if (!this.port.isOpen()) {
        void this.link.ensure();
        const now = this.deps.clock.now();
        for (const b of blocks) for (const p of b.points) samples.push({ pointId: p.id, value: null, quality: bad('not connected'), sourceTime: now });
      } else {
        const jobs = blocks.flatMap((b) => (this.splitKeys.has(blockKey(b)) ? splitBlock(b) : [b]));
        await Promise.all(jobs.map((b) => this.readBlock(b, samples)));
      }
      if (!this.stopped) this.sink?.onSamples(samples);
    } finally {
      this.busy.delete(group);
    }
  }

  private async readBlock(b: ReadBlock, out: Sample[]): Promise<void> {
    try {
      const words = await this.queue.run(() => {
        if (this.isSkipped(b.unitId)) {
          this.stats.inc('skipped_requests_total');
          return Promise.reject(new OutpostError('OUTPOST_E_MODBUS_TIMEOUT', 'modbus unit is skipped after timeouts', { details: { unitId: b.unitId, skipped: true } }));
        }
        return this.request(b.unitId, () => this.port.read(b.unitId, b.table, b.address, b.count));
      });
      const now = this.deps.clock.now();
      const mono = this.deps.clock.monotonic();
      for (const p of b.points) {
        const off = p.address - b.address;
        const slice = words.slice(off, off + registerCount(p.type, p.length));
        const value = decode(p, slice);
        this.lastGood.set(p.id, { value, at: mono });
        out.push({ pointId: p.id, value, quality: GOOD, sourceTime: now });
      }
    } catch (e) {
      if (b.points.length > 1 && isOutpostError(e, 'OUTPOST_E_MODBUS_EXCEPTION') && e.details['exception'] === 2) {
        this.splitKeys.add(blockKey(b));
        this.deps.logger.warn({ block: blockKey(b) }, 'merged read refused with illegal address; reading point by point');
        await Promise.all(splitBlock(b).map((s) => this.readBlock(s, out)));
        return;
      }
      const quality = qualityOfError(e);
      const now = this.deps.clock.now();
      for (const p of b.points) out.push({ pointId: p.id, value: null, quality, sourceTime: now });
    }
  }

  /**
   * Runs one request with the connection's retries on timeout, counting outcomes and tracking the
   * unit's health. A unit that is already failing gets no retries, so a dead unit costs one timeout
   * per request, not `retries + 1`.
   */
  private async request<T>(unitId: number, fn: () => Promise<T>): Promise<T> {
    const configured = this.config.connection.type === 'sim' ? 0 : this.config.connection.retries;
    const health = this.unitHealth(unitId);
    const retries = health.timeouts > 0 ? 0 : configured;
    for (let attempt = 0; ; attempt++) {
      this.stats.inc('requests_total');
      try {
        const result = await fn();
        health.timeouts = 0;
        health.skipUntil = 0;
        return result;
      } catch (e) {
        this.noteError(e);
        if (attempt < retries && (isOutpostError(e, 'OUTPOST_E_MODBUS_TIMEOUT') || isOutpostError(e, 'OUTPOST_E_MODBUS_FRAME'))) continue;
        if (isOutpostError(e, 'OUTPOST_E_MODBUS_TIMEOUT')) this.noteTimeout(unitId, health);
        else if (isOutpostError(e, 'OUTPOST_E_MODBUS_EXCEPTION')) health.timeouts = 0;
        throw e;
      }
    }
  }

  private unitHealth(unitId: number): { timeouts: number; skipUntil: number } {
    let h = this.units.get(unitId);
    if (!h) {
      h = { timeouts: 0, skipUntil: 0 };
      this.units.set(unitId, h);
    }
    return h;
  }

  private noteTimeout(unitId: number, health: { timeouts: number; skipUntil: number }): void {
    health.timeouts++;
    if (health.timeouts < this.config.deadUnit.afterTimeouts) return;
    if (health.skipUntil === 0) {
      this.stats.inc('dead_units_total');
      this.deps.logger.warn({ device: this.deviceId, unitId, skipMs: this.config.deadUnit.skipMs }, 'modbus unit stopped answering; skipping it');
    }
    health.skipUntil = this.deps.clock.monotonic() + this.config.deadUnit.skipMs;
  }

  /** True while a dead unit is being skipped (after `skipMs`, one request probes it again). */
  private isSkipped(unitId: number): boolean {
    const h = this.units.get(unitId);
    return h !== undefined && h.skipUntil > 0 && this.deps.clock.monotonic() < h.skipUntil;
  }

  /** Units currently skipped (diagnostics and tests). */
  deadUnits(): number[] {
    return [...this.units.keys()].filter((u) => this.isSkipped(u));
  }

  /** On an overrun: points whose last good value is older than the group interval are reported uncertain('stale'). */
  private reportStale(blocks: readonly ReadBlock[]): void {
    const mono = this.deps.clock.monotonic();
    const now = this.deps.clock.now();
    const interval = this.intervalOf(blocks[0]?.points[0]);
    const samples: Sample[] = [];
    for (const b of blocks) {
      for (const p of b.points) {
        const last = this.lastGood.get(p.id);
        if (last && mono - last.at > interval) samples.push({ pointId: p.id, value: last.value, quality: uncertain('stale'), sourceTime: now });
      }
    }
    if (samples.length > 0 && !this.stopped) this.sink?.onSamples(samples);
  }

  private intervalOf(p: ModbusPointConfig | undefined): number {
    const g = p?.pollGroup === undefined ? undefined : this.config.pollGroups.find((x) => x.id === p.pollGroup);
    return g?.intervalMs ?? this.config.pollIntervalMs;
  }

  private noteError(e: unknown): void {
    this.stats.inc('request_errors_total');
    if (isOutpostError(e, 'OUTPOST_E_MODBUS_TIMEOUT')) this.stats.inc('timeouts_total');
    else if (isOutpostError(e, 'OUTPOST_E_MODBUS_EXCEPTION')) this.stats.inc('exceptions_total');
    else if (isOutpostError(e, 'OUTPOST_E_MODBUS_FRAME')) this.stats.inc('frame_errors_total');
    else if (!isOutpostError(e, 'OUTPOST_E_HAL_VALUE')) void this.reconnect(e);
  }

  private async reconnect(cause: unknown): Promise<void> {
    if (this.link.active || this.stopped) return;
    this.deps.logger.warn({ err: describeCause(cause) }, 'modbus transport failed; reconnecting');
    await this.port.close().catch(() => undefined);
    await this.link.ensure();
  }

}

/** True when a point's type matches its table: `bool` for bit tables, register types otherwise. */
export function typeFitsTable(p: Pick<ModbusPointConfig, 'table' | 'type'>): boolean {
  return isBitTable(p.table) ? p.type === 'bool' : p.type !== 'bool';
}
