import { access } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';

/** The marker systemd-timesyncd creates once the clock was synchronised (NTP) since boot. */
export const TIMESYNCD_MARKER = '/run/systemd/timesync/synchronized';

/**
 * Tells whether the system clock is known to be synchronised, by watching a marker file (polled).
 * Until it is, readings are marked `timeUncertain` — never dropped or rejected.
 * Invariants: once synchronised it stays so for the life of the process (timesyncd never removes
 * the marker while running); the poll timer is unref'd and stopped by `stop`.
 */
export class ClockSync {
  private synced = false;
  private timer: unknown = null;

  constructor(
    private readonly deps: { clock: Clock; logger: Logger; marker?: string; pollMs?: number; exists?: (file: string) => Promise<boolean> },
  ) {}

  async start(): Promise<void> {
    await this.check();
    if (!this.synced) {
      this.timer = this.deps.clock.setInterval(() => void this.check(), this.deps.pollMs ?? 5000);
      (this.timer as { unref?: () => void }).unref?.();
    }
  }

  timeUncertain(): boolean {
    return !this.synced;
  }

  stop(): void {
    if (this.timer !== null) this.deps.clock.clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    const marker = this.deps.marker ?? TIMESYNCD_MARKER;
    const exists = this.deps.exists ?? ((f: string) => access(f).then(() => true, () => false));
    if (this.synced || !(await exists(marker))) return;
    this.synced = true;
    this.deps.logger.info({ marker }, 'system clock synchronised; readings no longer marked time-uncertain');
    this.stop();
  }
}
