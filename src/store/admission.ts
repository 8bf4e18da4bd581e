import type { Logger } from 'pino';
import { OutpostError } from '../errors/outpost-error.js';
import type { OnFull } from './durable-store.js';
import type { Queue, Segment } from './queue.js';
import type { StoreCounters } from './store-counters.js';

/** A record waiting for the next group commit. */
export interface Pending {
  readonly buf: Buffer;
  readonly seq: number;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export interface AdmissionContext {
  readonly queues: ReadonlyMap<string, Queue>;
  readonly maxBytes: number;
  readonly minFreeBytes: number;
  /** Free bytes on the store's filesystem before this commit (Infinity when not checked). */
  readonly free: number;
  policyOf(route: string): OnFull;
  routeMax(route: string): number;
  routeBytes(route: string): number;
  diskBytes(): number;
  readonly stats: StoreCounters;
  readonly logger: Logger;
  dropSegments(victims: ReadonlyArray<{ q: Queue; seg: Segment }>): Promise<void>;
}

/**
 * Applies the bounds to one group commit, highest priority first. For each queue, while its records
 * would cross the route bound, the store bound or the free-disk floor, the route's policy decides:
 * `reject-new` refuses the newest waiting records; `drop-oldest` deletes the oldest segment of the
 * same route; `drop-lowest-priority` deletes the oldest segment of the lowest priority class stored
 * that is not above the record's own (within the route for the route bound). With nothing left to
 * delete, the newest waiting records are refused. Returns what may be written.
 */
export async function admitAll(batches: ReadonlyArray<readonly [Queue, Pending[]]>, ctx: AdmissionContext): Promise<Array<[Queue, Pending[]]>> {
  const out: Array<[Queue, Pending[]]> = [];
  let free = ctx.free;
  let admittedTotal = 0;
  const admittedRoute = new Map<string, number>();
  for (const [q, list] of batches) {
    const items = [...list];
    let need = items.reduce((n, i) => n + i.buf.length, 0);
    const policy = ctx.policyOf(q.route);
    for (let guard = 0; guard < 100_000 && items.length > 0; guard++) {
      const routeOver = ctx.routeBytes(q.route) + (admittedRoute.get(q.route) ?? 0) + need - ctx.routeMax(q.route);
      const storeOver = ctx.diskBytes() + admittedTotal + need - ctx.maxBytes;
      const diskOver = Number.isFinite(free) ? ctx.minFreeBytes + admittedTotal + need - free : -Infinity;
      let over = Math.max(routeOver, storeOver, diskOver);
      if (over <= 0) break;
      const victim = pickVictim(policy, q, routeOver > 0 ? 'route' : 'store', ctx.queues);
      if (!victim) {
        const why = routeOver > 0 ? 'route' : storeOver > 0 ? 'store' : 'disk';
        while (items.length > 0 && over > 0) {
          const it = items.pop() as Pending;
          need -= it.buf.length;
          over -= it.buf.length;
          ctx.stats.drop(q.route, 'rejected_full');
          it.reject(new OutpostError('OUTPOST_E_STORE_FULL', 'store full: record refused', { details: { route: q.route, bound: why, policy } }));
        }
        break;
      }
      const dropped = await victim.dropHead();
      if (!dropped) break;
      ctx.stats.drop(victim.route, policy === 'drop-oldest' ? 'dropped_oldest' : 'dropped_lower_priority', dropped.lost);
      ctx.logger.warn({ route: victim.route, priority: victim.priority, segment: dropped.segment.file, records: dropped.lost, policy, bound: routeOver > 0 ? 'route' : storeOver > 0 ? 'store' : 'disk' }, 'store full: oldest segment dropped');
      await ctx.dropSegments([{ q: victim, seg: dropped.segment }]);
      if (Number.isFinite(free)) free += dropped.segment.size;
    }
    admittedTotal += need;
    admittedRoute.set(q.route, (admittedRoute.get(q.route) ?? 0) + need);
    if (items.length > 0) out.push([q, items]);
  }
  return out;
}

function pickVictim(policy: OnFull, q: Queue, scope: 'route' | 'store', queues: ReadonlyMap<string, Queue>): Queue | null {
  if (policy === 'reject-new') return null;
  const head = (c: Queue) => c.segments.find((s) => !s.dropped)?.firstSeq ?? Infinity;
  const sameRoute = policy === 'drop-oldest' || scope === 'route';
  const candidates = [...queues.values()].filter((c) => head(c) !== Infinity && (sameRoute ? c.route === q.route : c.priority >= q.priority));
  candidates.sort((a, b) => (policy === 'drop-lowest-priority' ? b.priority - a.priority : 0) || head(a) - head(b));
  return candidates[0] ?? null;
}
