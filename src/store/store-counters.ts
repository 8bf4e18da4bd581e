/** Why a record left the store without being delivered. */
export type DropReason = 'rejected_full' | 'dropped_oldest' | 'dropped_lower_priority' | 'expired' | 'quarantined' | 'too_large' | 'busy' | 'write_error';

/**
 * Counters of the store: totals by name, and records lost per route and reason.
 * Invariant: counters only grow; `snapshot` returns flat names for /metrics.
 */
export class StoreCounters {
  private readonly totals = new Map<string, number>();
  private readonly drops = new Map<string, number>();

  inc(name: string): void {
    this.add(name, 1);
  }

  add(name: string, n: number): void {
    if (n !== 0) this.totals.set(name, (this.totals.get(name) ?? 0) + n);
  }

  drop(route: string, reason: DropReason, n = 1): void {
    if (n <= 0) return;
    this.add(`${reason}_total`, n);
    const k = `route_${route}_${reason}_total`;
    this.drops.set(k, (this.drops.get(k) ?? 0) + n);
  }

  get(name: string): number {
    return this.totals.get(name) ?? this.drops.get(name) ?? 0;
  }

  snapshot(routeBytes: ReadonlyMap<string, number>): Record<string, number> {
    const o: Record<string, number> = {};
    for (const [k, v] of this.totals) o[k] = v;
    for (const [k, v] of this.drops) o[k] = v;
    for (const [r, v] of routeBytes) o[`route_${r}_stored_bytes`] = v;
    return o;
  }
}
