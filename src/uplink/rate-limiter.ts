import type { Clock } from '../../hal/clock.js';

/**
 * Token bucket on payload bytes. Invariants: with `ratePerSec` 0 it never waits; otherwise the
 * bytes granted over any interval t stay below ratePerSec × t + burst.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly clock: Clock,
    private readonly burst = Math.max(ratePerSec, 1),
  ) {
    this.tokens = burst;
    this.last = clock.monotonic();
  }

  /** ms to wait before `bytes` may be sent (0: now); the bytes are charged. */
  take(bytes: number): number {
    if (this.ratePerSec <= 0) return 0;
    const now = this.clock.monotonic();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000);
    this.last = now;
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.ratePerSec);
  }
}
