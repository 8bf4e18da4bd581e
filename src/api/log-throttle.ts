/**
 * Bounds how many lines a flood of refused requests writes to the journal: at most `perWindow`
 * lines per `windowMs`; the rest are counted and the count is reported with the first line of the
 * next window. Pure apart from the injected monotonic clock.
 * Invariant: `admit` returns a decision for every event; every suppressed event is counted exactly once.
 */
export class LogThrottle {
  private windowStart = -Infinity;
  private inWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly now: () => number,
    private readonly perWindow = 10,
    private readonly windowMs = 10_000,
  ) {}

  /** `{log: true, suppressed}` when this event may be logged (with how many were dropped before it), else `{log: false}`. */
  admit(): { log: true; suppressed: number } | { log: false } {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      this.windowStart = t;
      this.inWindow = 0;
    }
    if (this.inWindow >= this.perWindow) {
      this.suppressed++;
      return { log: false };
    }
    this.inWindow++;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    return { log: true, suppressed };
  }
}
