import type { Clock } from '../../hal/clock.js';

/** V8's gc() as exposed by `--expose-gc` (see services/expose-gc.ts). */
export type GcFunction = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => unknown;

export interface GcPacerOptions {
  /** A minor collection after this many accounted bytes. */
  readonly minorEveryBytes: number;
  /** A major collection once no bytes were accounted for this long (after at least minorEveryBytes). */
  readonly settleMs: number;
}

/**
 * Keeps the garbage of large short-lived buffers (MQTT payloads read from local clients) from piling
 * up between V8's own collections: V8 frees a dead Buffer's memory only at a collection, and its
 * heuristics let tens of MiB of dead external memory accumulate under a flood; glibc then keeps the
 * arena pages, so RSS stays high after the flood (docs/security-broker.md, "Memory").
 * Invariants: without a gc function it does nothing; at most one minor collection per
 * `minorEveryBytes` accounted bytes, run from a timer, never inside the caller; exactly one major
 * collection (asynchronous) per burst, `settleMs` after the last accounted byte; `stop` cancels the timers.
 */
export class GcPacer {
  private sinceMinor = 0;
  private sinceMajor = 0;
  private minorPending: unknown = null;
  private settleTimer: unknown = null;
  private lastAt = 0;

  constructor(
    private readonly gc: GcFunction | null,
    private readonly clock: Clock,
    private readonly options: GcPacerOptions = { minorEveryBytes: 4 * 1024 * 1024, settleMs: 2000 },
  ) {}

  account(bytes: number): void {
    if (!this.gc) return;
    this.sinceMinor += bytes;
    this.sinceMajor += bytes;
    this.lastAt = this.clock.monotonic();
    if (this.sinceMinor >= this.options.minorEveryBytes && this.minorPending === null) {
      this.minorPending = this.clock.setTimeout(() => {
        this.minorPending = null;
        this.sinceMinor = 0;
        this.gc?.({ type: 'minor' });
      }, 0);
    }
    if (this.sinceMajor >= this.options.minorEveryBytes && this.settleTimer === null) this.armSettle(this.options.settleMs);
  }

  stop(): void {
    if (this.minorPending !== null) this.clock.clearTimeout(this.minorPending);
    if (this.settleTimer !== null) this.clock.clearTimeout(this.settleTimer);
    this.minorPending = null;
    this.settleTimer = null;
  }

  private armSettle(ms: number): void {
    this.settleTimer = this.clock.setTimeout(() => {
      this.settleTimer = null;
      const quiet = this.clock.monotonic() - this.lastAt;
      if (quiet < this.options.settleMs) return this.armSettle(this.options.settleMs - quiet);
      this.sinceMajor = 0;
      this.gc?.({ type: 'major', execution: 'async' });
    }, ms);
  }
}
