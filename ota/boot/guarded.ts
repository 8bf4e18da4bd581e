import type { EnvGuard } from './boot-file.js';
import type { BootSelector, SlotState } from './types.js';

/**
 * A boot selector whose write verbs run under the OTA state lock, shared with the other OTA processes.
 * A verb that reads the environment to compute its change (GRUB's ORDER, U-Boot's BOOT_ORDER) thus reads
 * and writes inside one critical section, never from a copy another process has since rewritten.
 * Invariants: reads are not serialised (each is one read of the environment); every write verb is.
 */
export class GuardedSelector implements BootSelector {
  readonly kind: string;

  constructor(
    private readonly inner: BootSelector,
    private readonly guard: EnvGuard,
  ) {
    this.kind = inner.kind;
  }

  getPrimary(): Promise<string> {
    return this.inner.getPrimary();
  }

  setPrimary(bootname: string): Promise<void> {
    return this.guard.with(() => this.inner.setPrimary(bootname));
  }

  getState(bootname: string): Promise<SlotState> {
    return this.inner.getState(bootname);
  }

  setState(bootname: string, state: SlotState): Promise<void> {
    return this.guard.with(() => this.inner.setState(bootname, state));
  }

  getCurrent(): Promise<string> {
    return this.inner.getCurrent();
  }

  trialRebootArg(): Promise<string | null> {
    return this.inner.trialRebootArg();
  }

  describe(): Promise<Record<string, string>> {
    return this.inner.describe();
  }

  attempted(bootname: string): Promise<'tried' | 'not-tried' | 'unknown'> {
    return this.inner.attempted(bootname);
  }
}
