/** A record handed out for sending, as far as the failure bookkeeping is concerned. */
export interface RecordKey {
  readonly queue: { readonly key: string };
  readonly fields: { readonly seq: number };
}

/**
 * Failure bookkeeping of records being delivered: refusals, lost connections, and the records held
 * back to be sent again alone. Kept in memory only (a restart starts the counts again).
 * Invariants: entries exist only for records that failed at least once and are forgotten when the
 * record is delivered or quarantined; the retry list is ordered by store sequence number.
 */
export class DeliveryState<T extends RecordKey> {
  private readonly attempts = new Map<string, number>();
  private readonly losses = new Map<string, { any: number; alone: number }>();
  private retry: Array<{ taken: T; notBefore: number }> = [];

  /** Counts a refusal; returns how many the record has had. */
  refused(t: T): number {
    const k = key(t);
    const n = (this.attempts.get(k) ?? 0) + 1;
    this.attempts.set(k, n);
    return n;
  }

  lost(t: T, alone: boolean): void {
    const k = key(t);
    const l = this.losses.get(k) ?? { any: 0, alone: 0 };
    l.any++;
    if (alone) l.alone++;
    this.losses.set(k, l);
  }

  lossesOf(t: T): { any: number; alone: number } {
    return this.losses.get(key(t)) ?? { any: 0, alone: 0 };
  }

  forget(t: T): void {
    this.attempts.delete(key(t));
    this.losses.delete(key(t));
  }

  retryLater(records: readonly T[], notBefore: number): void {
    for (const t of records) this.retry.push({ taken: t, notBefore });
    this.retry.sort((a, b) => a.taken.fields.seq - b.taken.fields.seq);
  }

  /** The oldest held-back record that may go now, removed from the list. */
  nextRetry(now: number): T | null {
    const i = this.retry.findIndex((r) => r.notBefore <= now);
    return i < 0 ? null : (this.retry.splice(i, 1)[0] as { taken: T }).taken;
  }

  nextRetryAt(): number | null {
    let at: number | null = null;
    for (const r of this.retry) at = at === null ? r.notBefore : Math.min(at, r.notBefore);
    return at;
  }

  /** Drops the held-back list (the records will be read again from the store); counts are kept. */
  clearRetries(): void {
    this.retry = [];
  }
}

const key = (t: RecordKey) => `${t.queue.key}:${t.fields.seq}`;
