import type { Clock } from '../../hal/clock.js';

/**
 * Lets one log line per key through every `everyMs`, counting the ones held back, so a flood of
 * refusals cannot flood the journal. Invariants: the first event of a key is let through; an event let
 * through reports how many happened since the previous one let through (itself included).
 */
export class LogLimiter {
  private readonly keys = new Map<string, { at: number; since: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly everyMs = 10_000,
  ) {}

  /** Counts an event; returns the count to log with it, or null to stay quiet. */
  hit(key: string): number | null {
    const now = this.clock.monotonic();
    const k = this.keys.get(key) ?? { at: -Infinity, since: 0 };
    k.since++;
    this.keys.set(key, k);
    if (now - k.at < this.everyMs) return null;
    const count = k.since;
    k.at = now;
    k.since = 0;
    return count;
  }
}
