import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../hal/clock.js';
import type { Message } from '../../src/model/reading.js';
import { DurableStore, type StoreOptions } from '../../src/store/durable-store.js';
import { PriorityScheduler } from '../../src/store/scheduler.js';
import type { UpstreamRecord } from '../../src/upstream/upstream.js';
import { captureLogger, silentLogger } from '../helpers/logger.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'outpost-store-'));
  dirs.push(d);
  return d;
}

function options(dir: string, o: Partial<StoreOptions> = {}): StoreOptions {
  return { dir, maxBytes: 64 * 1024 * 1024, segmentBytes: 64 * 1024, minFreeBytes: 0, fsyncIntervalMs: 5, onFull: 'drop-oldest', maxRecordBytes: 64 * 1024, routes: [], quarantineMaxBytes: 1024 * 1024, ...o };
}

function msg(n: number, pad = 0): Message {
  return { kind: 'reading', source: '/readings/d/p', body: { point: 'p', device: 'd', value: n, quality: 'good', sourceTime: 1_700_000_000_000 + n, seq: n, bootId: 'b', ...(pad ? { reason: 'x'.repeat(pad) } : {}) } };
}

function rec(n: number, route = 'r1', priority = 5, o: Partial<UpstreamRecord> = {}): UpstreamRecord {
  return { route, priority, ttlSeconds: 3600, enqueuedAt: Date.now(), message: msg(n), ...o };
}

/** Takes and acks everything readable; returns the reading values in delivery order per queue. */
async function drain(store: DurableStore, max = 100_000): Promise<Map<string, number[]>> {
  const got = new Map<string, number[]>();
  for (let i = 0; i < max; i++) {
    const b = await store.take(50, 1 << 20);
    if (!b) break;
    for (const t of b) {
      const m = JSON.parse(t.fields.message.toString()) as Message;
      const k = `${t.fields.priority}:${t.fields.route}`;
      got.set(k, [...(got.get(k) ?? []), (m.body as { value: number }).value]);
    }
    store.ack(b);
  }
  return got;
}

function segFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.seg')).map((e) => path.join(e.parentPath, e.name));
}

describe('DurableStore', () => {
  it('persists before resolving, delivers in order per (route, priority) and gives the disk back', async () => {
    const dir = tmp();
    const store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) ps.push(store.enqueue(rec(i, i % 3 === 0 ? 'alarms' : 'telemetry', i % 3 === 0 ? 1 : 6)));
    await Promise.all(ps);
    expect(store.counters()['persisted_total']).toBe(3000);
    expect(store.diskBytes()).toBeGreaterThan(3000 * 100);
    const got = await drain(store);
    const alarms = got.get('1:alarms') ?? [];
    const tele = got.get('6:telemetry') ?? [];
    expect(alarms.length).toBe(1000);
    expect(tele.length).toBe(2000);
    expect(alarms).toEqual([...alarms].sort((a, b) => a - b));
    expect(tele).toEqual([...tele].sort((a, b) => a - b));
    await store.maintainNow();
    await store.maintainNow();
    // Everything was delivered: at most the small active segments remain (sealed and deleted once large).
    expect(store.diskBytes()).toBeLessThan(2 * 64 * 1024);
    expect(store.counters()['reclaimed_bytes_total']).toBeGreaterThan(200_000);
    await store.stop();
  });

  it('resumes after a restart at the checkpoint without losing undelivered records', async () => {
    const dir = tmp();
    let store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    await Promise.all(Array.from({ length: 500 }, (_, i) => store.enqueue(rec(i))));
    const first = (await store.take(200, 1 << 20)) ?? [];
    expect(first.length).toBe(200);
    store.ack(first);
    await store.stop();
    store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    const got = (await drain(store)).get('5:r1') ?? [];
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i + 200));
    // New records get new sequence numbers after the old ones.
    await store.enqueue(rec(9999));
    const b = (await store.take(10, 1 << 20)) ?? [];
    expect(b[0]?.fields.seq).toBeGreaterThan(500);
    await store.stop();
  });

  it('drops only a torn last record on start, and reports it', async () => {
    const dir = tmp();
    let store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.enqueue(rec(i))));
    await store.stop();
    const [seg] = segFiles(dir);
    truncateSync(seg as string, statSync(seg as string).size - 7);
    const cap = captureLogger();
    store = new DurableStore(options(dir), { clock: systemClock, logger: cap.logger });
    await store.start();
    expect(store.counters()['torn_records_total']).toBe(1);
    expect(cap.lines.some((l) => l['msg'] === 'store: torn last record dropped')).toBe(true);
    const got = (await drain(store)).get('5:r1') ?? [];
    expect(got).toEqual(Array.from({ length: 99 }, (_, i) => i));
    await store.stop();
  });

  it('skips a record with a flipped byte and keeps the ones around it', async () => {
    const dir = tmp();
    let store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.enqueue(rec(i))));
    await store.stop();
    const [seg] = segFiles(dir);
    const bytes = readFileSync(seg as string);
    const at = bytes.indexOf('"value":50,');
    expect(at).toBeGreaterThan(0);
    bytes[at + 9] = '7'.charCodeAt(0); // 50 → 70 inside record 50: its checksum no longer matches
    writeFileSync(seg as string, bytes);
    store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    expect(store.counters()['corrupt_regions_total']).toBe(1);
    const got = (await drain(store)).get('5:r1') ?? [];
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i).filter((i) => i !== 50));
    await store.stop();
  });

  it('never exceeds its byte bound: drop-oldest deletes whole old segments and counts them', async () => {
    const dir = tmp();
    const store = new DurableStore(options(dir, { maxBytes: 200_000, segmentBytes: 20_000 }), { clock: systemClock, logger: silentLogger() });
    await store.start();
    let maxSeen = 0;
    for (let k = 0; k < 40; k++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => store.enqueue(rec(k * 100 + i))));
      maxSeen = Math.max(maxSeen, store.diskBytes(), segFiles(dir).reduce((n, f) => n + statSync(f).size, 0));
    }
    expect(maxSeen).toBeLessThanOrEqual(200_000);
    const c = store.counters();
    expect(c['dropped_oldest_total']).toBeGreaterThan(0);
    expect(c['route_r1_dropped_oldest_total']).toBe(c['dropped_oldest_total']);
    const got = (await drain(store)).get('5:r1') ?? [];
    // What is left is the newest records, in order, and every record is either delivered or counted.
    expect(got.at(-1)).toBe(3999);
    expect(got.length + (c['dropped_oldest_total'] ?? 0)).toBe(4000);
    await store.stop();
  });

  it('reject-new refuses new records when the route is full, and keeps the old ones', async () => {
    const dir = tmp();
    const store = new DurableStore(options(dir, { routes: [{ route: 'r1', maxBytes: 30_000, onFull: 'reject-new' }] }), { clock: systemClock, logger: silentLogger() });
    await store.start();
    const results = await Promise.allSettled(Array.from({ length: 500 }, (_, i) => store.enqueue(rec(i))));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    expect(ok).toBeGreaterThan(50);
    expect(ok).toBeLessThan(500);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect((rejected.reason as { code: string }).code).toBe('OUTPOST_E_STORE_FULL');
    expect(store.counters()['rejected_full_total']).toBe(500 - ok);
    expect(store.counters()['route_r1_stored_bytes'] ?? 0).toBeLessThanOrEqual(30_000);
    const got = (await drain(store)).get('5:r1') ?? [];
    expect(got).toEqual(Array.from({ length: ok }, (_, i) => i));
    await store.stop();
  });

  it('drop-lowest-priority makes room by deleting the lowest class, and refuses when only higher ones are stored', async () => {
    const dir = tmp();
    const store = new DurableStore(options(dir, { maxBytes: 100_000, segmentBytes: 10_000, onFull: 'drop-lowest-priority' }), { clock: systemClock, logger: silentLogger() });
    await store.start();
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.enqueue(rec(i, 'bulk', 9))));
    await Promise.all(Array.from({ length: 600 }, (_, i) => store.enqueue(rec(i, 'alarms', 0)).catch(() => undefined)));
    const c = store.counters();
    expect(c['route_bulk_dropped_lower_priority_total']).toBeGreaterThan(0);
    expect(store.diskBytes()).toBeLessThanOrEqual(100_000);
    // Bulk (9) cannot push alarms (0) out.
    const bulk = await Promise.allSettled(Array.from({ length: 400 }, (_, i) => store.enqueue(rec(1000 + i, 'bulk', 9))));
    expect(bulk.some((r) => r.status === 'rejected')).toBe(true);
    expect(store.counters()['route_alarms_dropped_lower_priority_total'] ?? 0).toBe(0);
    await store.stop();
  });

  it('applies the free-disk floor with the route policy', async () => {
    const dir = tmp();
    let free = 10_000_000;
    const store = new DurableStore(options(dir, { minFreeBytes: 9_950_000, onFull: 'reject-new' }), { clock: systemClock, logger: silentLogger(), freeBytes: async () => free });
    await store.start();
    const r = await Promise.allSettled(Array.from({ length: 1000 }, (_, i) => store.enqueue(rec(i))));
    expect(r.some((x) => x.status === 'rejected')).toBe(true);
    free = 100_000_000;
    await expect(store.enqueue(rec(5000))).resolves.toBeUndefined();
    await store.stop();
  });

  it('skips records past their TTL when sending, and counts them', async () => {
    const dir = tmp();
    let offset = 0;
    const clock: Clock = { ...systemClock, now: () => Date.now() + offset };
    const store = new DurableStore(options(dir), { clock, logger: silentLogger() });
    await store.start();
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.enqueue(rec(i, 'r1', 5, { ttlSeconds: 60, enqueuedAt: clock.now() }))));
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.enqueue(rec(100 + i, 'r1', 5, { ttlSeconds: 600, enqueuedAt: clock.now() }))));
    offset = 120_000;
    const got = (await drain(store)).get('5:r1') ?? [];
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => 100 + i));
    expect(store.counters()['expired_total']).toBe(10);
    await store.stop();
  });

  it('quarantines a record without blocking the queue, and rewinds unacked records after a disconnect', async () => {
    const dir = tmp();
    const store = new DurableStore(options(dir), { clock: systemClock, logger: silentLogger() });
    await store.start();
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.enqueue(rec(i))));
    const b = (await store.take(3, 1 << 20)) ?? [];
    await store.rewind();
    const again = (await store.take(3, 1 << 20)) ?? [];
    expect(again.map((t) => t.fields.seq)).toEqual(b.map((t) => t.fields.seq));
    await store.toQuarantine(again[0] as (typeof again)[number], 'refused', { reasonCode: 135 });
    store.ack(again.slice(1));
    const rest = (await drain(store)).get('5:r1') ?? [];
    expect(rest).toEqual([3, 4, 5, 6, 7, 8, 9]);
    const q = readFileSync(path.join(dir, 'quarantine.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(q).toHaveLength(1);
    expect(q[0]?.['reason']).toBe('refused');
    expect(store.counters()['quarantined_total']).toBe(1);
    await store.stop();
  });
});

describe('PriorityScheduler', () => {
  it('gives every busy class a share by weight instead of starving the lowest', () => {
    const s = new PriorityScheduler();
    const served = new Array<number>(10).fill(0);
    for (let i = 0; i < 1100; i++) {
      const p = s.pick(new Set([0, 9])) as number;
      served[p] = (served[p] as number) + 1;
      s.charge(p, 1);
    }
    expect(served[0]).toBe(1000);
    expect(served[9]).toBe(100);
  });

  it('does not let an idle class bank credit', () => {
    const s = new PriorityScheduler();
    for (let i = 0; i < 100; i++) s.charge(s.pick(new Set([0])) as number, 1);
    const picks = Array.from({ length: 20 }, () => {
      const p = s.pick(new Set([0, 9])) as number;
      s.charge(p, 1);
      return p;
    });
    expect(picks.filter((p) => p === 9).length).toBeLessThanOrEqual(3);
  });
});
