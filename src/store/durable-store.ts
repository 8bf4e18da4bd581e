import { mkdir, statfs, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import { OutpostError, describeCause } from '../errors/outpost-error.js';
import type { UpstreamRecord } from '../upstream/upstream.js';
import { admitAll, type Pending } from './admission.js';
import { DeliveryState } from './delivery-state.js';
import { Queue, type Outstanding, type Segment } from './queue.js';
import { Quarantine } from './quarantine.js';
import { encodeRecord, type RecordFields } from './record-codec.js';
import { readCheckpoint, recoverQueues, syncDir, writeCheckpoint, type Checkpoint } from './recovery.js';
import { DEFAULT_WEIGHTS, PriorityScheduler } from './scheduler.js';
import { StoreCounters } from './store-counters.js';

export type OnFull = 'reject-new' | 'drop-oldest' | 'drop-lowest-priority';

export interface StoreOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly segmentBytes: number;
  readonly minFreeBytes: number;
  readonly fsyncIntervalMs: number;
  readonly onFull: OnFull;
  readonly maxRecordBytes: number;
  readonly routes: ReadonlyArray<{ readonly route: string; readonly maxBytes?: number; readonly onFull?: OnFull }>;
  readonly weights?: readonly number[];
  readonly quarantineMaxBytes: number;
  readonly checkpointIntervalMs?: number;
  /** Records waiting for the disk beyond this are refused at once (back-pressure). */
  readonly maxPendingBytes?: number;
}

export interface StoreDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Free bytes on the filesystem of `dir` (injected by tests); statfs by default. */
  readonly freeBytes?: (dir: string) => Promise<number>;
}

/** A record handed out for sending. */
export interface Taken {
  readonly fields: RecordFields;
  readonly size: number;
  readonly queue: Queue;
  readonly out: Outstanding;
}

/** A group commit starts before the end of its window once this much waits. */
const FLUSH_EARLY_BYTES = 512 * 1024;

const statfsFree = async (dir: string) => {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
};

/**
 * The durable store-and-forward log: one FIFO queue per (route, priority), segment files under `dir`.
 * Invariants: `enqueue` resolves only after the record's bytes were fdatasync'ed (group commit at most
 * `fsyncIntervalMs` after the first record waits, sooner once 512 KiB wait); the bytes on disk never exceed `maxBytes`, a route never exceeds its bound and
 * free disk never goes below `minFreeBytes` because of the store — when a bound would be crossed the
 * route's on-full policy rejects the new record or deletes whole old segments (every lost record is
 * counted by reason); one flush, drop, checkpoint or deletion runs at a time (`lock`); a record leaves
 * its queue only through `ack`, `quarantine` or TTL expiry.
 */
export class DurableStore {
  private readonly queues = new Map<string, Queue>();
  private readonly pending = new Map<Queue, Pending[]>();
  private pendingBytes = 0;
  private nextSeq = 1;
  private lock: Promise<unknown> = Promise.resolve();
  private flushTimer: unknown = null;
  private flushQueued = false;
  private maintainTimer: unknown = null;
  private closed = true;
  private dirty = false;
  private readonly scheduler: PriorityScheduler;
  private readonly delivery = new DeliveryState<Taken>();
  private readonly carry = new Map<Queue, Taken>();
  private readonly routeCfg: Map<string, { maxBytes?: number; onFull?: OnFull }>;
  readonly stats = new StoreCounters();
  readonly quarantine: Quarantine;
  private readableListener: () => void = () => undefined;

  constructor(
    private readonly opts: StoreOptions,
    private readonly deps: StoreDeps,
  ) {
    this.scheduler = new PriorityScheduler(opts.weights ?? DEFAULT_WEIGHTS);
    this.routeCfg = new Map(opts.routes.map((r) => [r.route, r]));
    this.quarantine = new Quarantine(path.join(opts.dir, 'quarantine.ndjson'), opts.quarantineMaxBytes);
  }

  async start(): Promise<void> {
    const log = this.deps.logger;
    try {
      await mkdir(this.opts.dir, { recursive: true });
      const cp = await readCheckpoint(this.opts.dir, log);
      const { queues, report } = await recoverQueues(this.opts.dir, cp, this.opts.maxRecordBytes + 1024, log);
      for (const q of queues) this.queues.set(q.key, q);
      this.nextSeq = Math.max(cp?.nextSeq ?? 1, report.maxSeq + 1);
      this.stats.add('torn_records_total', report.tornRecords);
      this.stats.add('corrupt_regions_total', report.corruptRegions);
      this.stats.add('bad_segments_total', report.badSegments);
      await this.quarantine.open();
      log.info({ dir: this.opts.dir, queues: queues.length, records: this.liveRecords(), bytes: this.diskBytes(), ...report }, 'store opened');
    } catch (e) {
      throw new OutpostError('OUTPOST_E_STORE_OPEN', 'cannot open the store directory', { cause: e, details: { dir: this.opts.dir } });
    }
    this.closed = false;
    this.maintainTimer = this.deps.clock.setInterval(() => void this.locked(() => this.maintain()).catch(() => undefined), this.opts.checkpointIntervalMs ?? 1000);
  }

  /** Accepts a record; resolves once it is on disk. Rejects (OutpostError) when refused by a bound. */
  enqueue(record: UpstreamRecord): Promise<void> {
    if (this.closed) return Promise.reject(new OutpostError('OUTPOST_E_STORE_CLOSED', 'store is not running'));
    const seq = this.nextSeq++;
    const buf = encodeRecord({ seq, enqueuedAt: record.enqueuedAt, ttlSeconds: record.ttlSeconds, priority: record.priority, route: record.route, message: JSON.stringify(record.message) });
    this.stats.inc('enqueued_total');
    if (buf.length > this.opts.maxRecordBytes) {
      this.stats.drop(record.route, 'too_large');
      return Promise.reject(new OutpostError('OUTPOST_E_STORE_TOO_LARGE', 'record larger than store.maxRecordBytes', { details: { route: record.route, bytes: buf.length, max: this.opts.maxRecordBytes } }));
    }
    if (this.pendingBytes + buf.length > (this.opts.maxPendingBytes ?? 8 * 1024 * 1024)) {
      this.stats.drop(record.route, 'busy');
      return Promise.reject(new OutpostError('OUTPOST_E_STORE_BUSY', 'too many records wait for the disk', { details: { route: record.route } }));
    }
    const q = this.queueFor(record.route, record.priority);
    return new Promise<void>((resolve, reject) => {
      const list = this.pending.get(q) ?? [];
      list.push({ buf, seq, resolve, reject });
      this.pending.set(q, list);
      this.pendingBytes += buf.length;
      if (this.pendingBytes >= FLUSH_EARLY_BYTES && !this.flushQueued) {
        // Enough waits to make a write worthwhile: commit now rather than at the end of the window.
        this.flushQueued = true;
        void this.locked(() => {
          this.flushQueued = false;
          return this.flush();
        });
        return;
      }
      this.flushTimer ??= this.deps.clock.setTimeout(() => {
        this.flushTimer = null;
        void this.locked(() => this.flush());
      }, this.opts.fsyncIntervalMs);
    });
  }

  /** Called whenever new records become readable (after a flush) or records come back for sending. */
  onReadable(listener: () => void): void {
    this.readableListener = listener;
  }

  /**
   * The next batch to send: records of one queue, chosen by weighted priority share, oldest queue
   * first within a class. Records past their TTL are skipped and counted. A record held back for
   * a single retry (after a refusal) comes alone. Null when nothing is ready.
   */
  async take(maxRecords: number, maxBytes: number): Promise<Taken[] | null> {
    const now = this.deps.clock.now();
    const held = this.delivery.nextRetry(now);
    if (held) return [held];
    const busy = new Set<number>();
    for (const q of this.queues.values()) if (this.carry.has(q) || q.hasUnread()) busy.add(q.priority);
    const p = this.scheduler.pick(busy);
    if (p === null) return null;
    let q: Queue | null = null;
    for (const c of this.queues.values()) {
      if (c.priority === p && (this.carry.has(c) || c.hasUnread()) && (!q || c.headSeq() < q.headSeq())) q = c;
    }
    if (!q) return null;
    const out: Taken[] = [];
    let bytes = 0;
    while (out.length < maxRecords) {
      let t = this.carry.get(q);
      if (t) this.carry.delete(q);
      else {
        const r = await q.read((seg, from, to) => this.onCorrupt(seg, from, to));
        if (!r) break;
        t = { fields: r.fields, size: r.size, queue: q, out: r.out };
      }
      if (now > t.fields.enqueuedAt + t.fields.ttlSeconds * 1000) {
        this.stats.drop(t.fields.route, 'expired');
        q.settle(t.out);
        this.dirty = true;
        continue;
      }
      if (out.length > 0 && bytes + t.fields.message.length > maxBytes) {
        this.carry.set(q, t);
        break;
      }
      bytes += t.fields.message.length;
      out.push(t);
    }
    if (out.length === 0) return null;
    this.scheduler.charge(p, out.length);
    return out;
  }

  /** The records were delivered (PUBACK). */
  ack(batch: readonly Taken[]): void {
    for (const t of batch) {
      t.queue.settle(t.out);
      this.delivery.forget(t);
    }
    this.stats.add('delivered_total', batch.length);
    this.dirty = true;
  }

  /** Counts a refusal of the record; returns how many it has had. */
  failed(t: Taken): number {
    return this.delivery.refused(t);
  }

  /** The connection was lost while this record was in flight (`alone`: in a message of its own). */
  lostInFlight(t: Taken, alone: boolean): void {
    this.delivery.lost(t, alone);
  }

  /** How often the connection was lost with this record in flight. */
  lossesOf(t: Taken): { any: number; alone: number } {
    return this.delivery.lossesOf(t);
  }

  /** Sends these records again later, one per batch, not before `delayMs`. */
  retryLater(records: readonly Taken[], delayMs: number): void {
    this.delivery.retryLater(records, this.deps.clock.now() + delayMs);
  }

  /** When the next held-back record may be retried (ms since the epoch), or null. */
  nextRetryAt(): number | null {
    return this.delivery.nextRetryAt();
  }

  /** Moves a record to the quarantine file and out of its queue. */
  async toQuarantine(t: Taken, reason: string, detail: Record<string, unknown> = {}): Promise<void> {
    try {
      await this.quarantine.add({ reason, ...detail, route: t.fields.route, priority: t.fields.priority, storeSeq: t.fields.seq, enqueuedAt: t.fields.enqueuedAt, message: JSON.parse(t.fields.message.toString('utf8')) as unknown });
    } catch (e) {
      this.deps.logger.error({ err: describeCause(e) }, 'quarantine write failed; record dropped');
    }
    this.stats.drop(t.fields.route, 'quarantined');
    this.deps.logger.warn({ route: t.fields.route, storeSeq: t.fields.seq, reason }, 'record quarantined');
    t.queue.settle(t.out);
    this.delivery.forget(t);
    this.dirty = true;
  }

  /** The connection was lost: whatever was handed out and not acked will be read again. */
  async rewind(): Promise<void> {
    this.delivery.clearRetries();
    this.carry.clear();
    for (const q of this.queues.values()) await q.rewind();
  }

  diskBytes(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.diskBytes();
    return n;
  }

  liveRecords(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.liveRecords();
    return n;
  }

  counters(): Record<string, number> {
    const byRoute = new Map<string, number>();
    for (const q of this.queues.values()) byRoute.set(q.route, (byRoute.get(q.route) ?? 0) + q.diskBytes());
    return { ...this.stats.snapshot(byRoute), store_bytes: this.diskBytes(), store_records: this.liveRecords(), store_pending_bytes: this.pendingBytes, quarantine_bytes: this.quarantine.bytes() };
  }

  /** Flushes what waits, writes the checkpoint and closes the files. */
  async stop(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.flushTimer !== null) this.deps.clock.clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.maintainTimer !== null) this.deps.clock.clearInterval(this.maintainTimer);
    await this.locked(() => this.flush());
    await this.locked(() => this.maintain());
    for (const q of this.queues.values()) await q.close();
    await this.quarantine.close();
  }

  /** Runs a flush now (tests, benchmarks). */
  flushNow(): Promise<void> {
    return this.locked(() => this.flush());
  }

  /** Writes the checkpoint and deletes delivered segments now (tests, benchmarks). */
  maintainNow(): Promise<void> {
    return this.locked(() => this.maintain());
  }

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private queueFor(route: string, priority: number): Queue {
    const key = `${priority}:${route}`;
    let q = this.queues.get(key);
    if (!q) {
      q = new Queue(key, route, priority, path.join(this.opts.dir, Queue.dirName(route, priority)), this.opts.maxRecordBytes + 1024);
      this.queues.set(key, q);
    }
    return q;
  }

  private onCorrupt(seg: Segment, from: number, to: number): void {
    this.stats.inc('corrupt_regions_total');
    this.deps.logger.warn({ file: seg.file, from, to }, 'store: corrupt record skipped');
  }

  private routeBytes(route: string): number {
    let n = 0;
    for (const q of this.queues.values()) if (q.route === route) n += q.diskBytes();
    return n;
  }

  /** Group commit: admits what waits against the bounds, appends it, fdatasyncs, then resolves. */
  private async flush(): Promise<void> {
    if (this.flushTimer !== null) {
      this.deps.clock.clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.pending.size === 0) return;
    const batches = [...this.pending.entries()].sort((a, b) => a[0].priority - b[0].priority);
    this.pending.clear();
    this.pendingBytes = 0;
    let free = Infinity;
    if (this.opts.minFreeBytes > 0) free = await (this.deps.freeBytes ?? statfsFree)(this.opts.dir).catch(() => Infinity);
    const admitted = await admitAll(batches, { free, ...this.admissionContext() });
    const written: Array<{ q: Queue; items: Pending[]; seg: Segment; fh: FileHandle }> = [];
    const fail = (items: readonly Pending[], e: unknown) => {
      for (const it of items) it.reject(new OutpostError('OUTPOST_E_STORE_WRITE', 'could not write the store', { cause: e, details: { dir: this.opts.dir } }));
    };
    for (const [q, items] of admitted) {
      if (items.length === 0) continue;
      try {
        const { fh, segment, created } = await q.append(items.map((i) => i.buf), (items[0] as Pending).seq, this.opts.segmentBytes);
        if (created) await syncDir(q.dir).catch(() => undefined);
        written.push({ q, items, seg: segment, fh });
      } catch (e) {
        this.stats.inc('write_errors_total');
        for (const it of items) this.stats.drop(q.route, 'write_error');
        this.deps.logger.error({ err: describeCause(e), queue: q.key }, 'store write failed; records refused');
        fail(items, e);
      }
    }
    await Promise.all(written.map(async (w) => {
      try {
        await w.fh.datasync();
        this.stats.inc('fsyncs_total');
        w.q.markDurable(w.seg, w.items.length);
        this.stats.add('persisted_total', w.items.length);
        this.deps.logger.debug({ queue: w.q.key, route: w.q.route, firstSeq: (w.items[0] as Pending).seq, lastSeq: (w.items[w.items.length - 1] as Pending).seq, count: w.items.length }, 'records persisted');
        for (const it of w.items) it.resolve();
      } catch (e) {
        this.stats.inc('write_errors_total');
        await w.q.rollback(w.seg);
        for (const _ of w.items) this.stats.drop(w.q.route, 'write_error');
        this.deps.logger.error({ err: describeCause(e), queue: w.q.key }, 'store sync failed; records refused');
        fail(w.items, e);
      }
    }));
    if (written.length > 0) this.readableListener();
  }

  private admissionContext() {
    return {
      queues: this.queues,
      maxBytes: this.opts.maxBytes,
      minFreeBytes: this.opts.minFreeBytes,
      policyOf: (route: string) => this.routeCfg.get(route)?.onFull ?? this.opts.onFull,
      routeMax: (route: string) => this.routeCfg.get(route)?.maxBytes ?? Infinity,
      routeBytes: (route: string) => this.routeBytes(route),
      diskBytes: () => this.diskBytes(),
      stats: this.stats,
      logger: this.deps.logger,
      dropSegments: (victims: ReadonlyArray<{ q: Queue; seg: Segment }>) => this.dropSegments(victims),
    };
  }

  /** Deletes dropped segments, after a checkpoint (so sequence numbers are never reused). */
  private async dropSegments(victims: ReadonlyArray<{ q: Queue; seg: Segment }>): Promise<void> {
    this.carry.clear();
    this.delivery.clearRetries();
    await this.checkpoint().catch((e: unknown) => this.deps.logger.warn({ err: describeCause(e) }, 'store checkpoint failed before a drop'));
    for (const v of victims) await v.q.remove([v.seg]);
    this.stats.add('segments_deleted_total', victims.length);
  }

  private async checkpoint(): Promise<void> {
    const queues: Record<string, { seg: number; off: number }> = {};
    for (const q of this.queues.values()) queues[q.key] = { ...q.committed };
    const cp: Checkpoint = { version: 1, nextSeq: this.nextSeq, queues };
    await writeCheckpoint(this.opts.dir, cp);
    this.dirty = false;
  }

  /** Every second: seal drained active segments, checkpoint, delete what was delivered. */
  private async maintain(): Promise<void> {
    for (const q of this.queues.values()) {
      const active = q.activeSegment();
      if (active && q.drained() && active.size >= Math.max(4096, this.opts.segmentBytes / 8) && !this.pending.has(q)) await q.sealActive();
    }
    const removable = [...this.queues.values()].flatMap((q) => q.removable().map((seg) => ({ q, seg })));
    if (!this.dirty && removable.length === 0) return;
    try {
      await this.checkpoint();
    } catch (e) {
      this.deps.logger.warn({ err: describeCause(e) }, 'store checkpoint failed');
      return;
    }
    for (const { q, seg } of removable) {
      const bytes = await q.remove([seg]);
      this.stats.inc('segments_deleted_total');
      this.stats.add('reclaimed_bytes_total', bytes);
    }
  }
}
