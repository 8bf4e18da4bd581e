import type { Logger } from 'pino';
import { describeCause } from '../src/errors/outpost-error.js';
import { Backoff } from './backoff.js';
import type { Clock } from './clock.js';

export interface ReconnectorOptions {
  /** Opens the transport; throws when it cannot. */
  readonly open: () => Promise<void>;
  readonly isOpen: () => boolean;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Backoff bounds, ms. */
  readonly initialMs: number;
  readonly maxMs: number;
  readonly random?: () => number;
  /** Called on each failed attempt (drivers count them). */
  readonly onFailure: () => void;
  /** Log messages: constant strings, data in fields. */
  readonly messages: { readonly opened: string; readonly failed: string };
  readonly logFields: Record<string, unknown>;
}

/**
 * Opens a transport and keeps trying with exponential backoff and jitter until it is open or stopped.
 * Invariants: at most one attempt loop runs at a time (`ensure` joins it); a loop started after a
 * failed attempt first waits that attempt's delay, so callers polling `ensure` cannot hammer a dead
 * peer; `stop` ends any wait at once; a success resets the backoff.
 */
export class Reconnector {
  private readonly backoff: Backoff;
  private loop: Promise<void> | null = null;
  private retryDelay = 0;
  private stopSignal = new AbortController();
  private stopped = true;

  constructor(private readonly o: ReconnectorOptions) {
    this.backoff = new Backoff(o.initialMs, o.maxMs, o.random);
  }

  /** Allows attempts again after `stop`. */
  start(): void {
    this.stopped = false;
    this.stopSignal = new AbortController();
  }

  stop(): void {
    this.stopped = true;
    this.stopSignal.abort();
  }

  /** True while an attempt loop runs. */
  get active(): boolean {
    return this.loop !== null;
  }

  /** Opens the transport, retrying until open or stopped (`once`: a single attempt). */
  ensure(once = false): Promise<void> {
    const o = this.o;
    if (o.isOpen() || this.stopped) return Promise.resolve();
    this.loop ??= (async () => {
      while (!this.stopped && !o.isOpen()) {
        if (this.retryDelay > 0) {
          await o.clock.sleep(this.retryDelay, this.stopSignal.signal);
          if (this.stopped) return;
        }
        try {
          await o.open();
          this.backoff.reset();
          this.retryDelay = 0;
          o.logger.info(o.logFields, o.messages.opened);
        } catch (e) {
          o.onFailure();
          this.retryDelay = this.backoff.next();
          o.logger.warn({ ...o.logFields, err: describeCause(e), retryInMs: this.retryDelay }, o.messages.failed);
          if (once) return;
        }
      }
    })().finally(() => {
      this.loop = null;
    });
    return this.loop;
  }
}
