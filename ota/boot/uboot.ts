import { OutpostError } from '../../src/errors/outpost-error.js';
import { requireSlot, type BootSelector, type SlotState } from './types.js';
import type { UbootEnv } from './uboot-env.js';

export interface UbootSelectorOptions {
  /** Bootnames in configuration order (`A`, `B`). */
  readonly slots: readonly string[];
  /** BOOT_<x>_LEFT written by mark-good (RAUC `boot-attempts`, default 3). */
  readonly attempts: number;
  /** BOOT_<x>_LEFT written when a slot is made primary (RAUC `boot-attempts-primary`, default 3). */
  readonly primaryAttempts: number;
  readonly current: () => Promise<string>;
}

/**
 * RAUC's U-Boot convention: `BOOT_ORDER` (space-separated bootnames, primary first) and
 * `BOOT_<x>_LEFT` (attempts left, hex). The boot script decrements the first slot in order with
 * attempts left on every boot; mark-good refills it. A slot is good when it is in BOOT_ORDER with
 * attempts left. Invariants: unlike RAUC (one fw_setenv per variable), every verb is one redundant
 * environment transaction; missing variables read as the boot script's defaults (all slots, 3 left).
 */
export class UbootSelector implements BootSelector {
  readonly kind = 'uboot';

  constructor(
    private readonly env: UbootEnv,
    private readonly o: UbootSelectorOptions,
  ) {}

  private async state(): Promise<{ order: string[]; left: (b: string) => number }> {
    const { vars } = await this.env.read();
    const orderVar = vars.get('BOOT_ORDER');
    const order = orderVar === undefined ? [...this.o.slots] : orderVar.split(' ').filter((s) => s !== '');
    const left = (b: string) => {
      const v = vars.get(`BOOT_${b}_LEFT`);
      if (v === undefined) return 3;
      const n = Number.parseInt(v, 16);
      return Number.isNaN(n) ? 0 : n;
    };
    return { order, left };
  }

  async getPrimary(): Promise<string> {
    const { order, left } = await this.state();
    const p = order.find((b) => this.o.slots.includes(b) && left(b) > 0);
    if (!p) throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV', 'no slot in BOOT_ORDER has boot attempts left', { details: { order } });
    return p;
  }

  async setPrimary(bootname: string): Promise<void> {
    requireSlot(bootname, this.o.slots);
    const { order } = await this.state();
    const next = [bootname, ...order.filter((b) => b !== bootname)];
    await this.env.update({ [`BOOT_${bootname}_LEFT`]: this.o.primaryAttempts.toString(16), BOOT_ORDER: next.join(' ') });
  }

  async getState(bootname: string): Promise<SlotState> {
    requireSlot(bootname, this.o.slots);
    const { order, left } = await this.state();
    return order.includes(bootname) && left(bootname) > 0 ? 'good' : 'bad';
  }

  async setState(bootname: string, state: SlotState): Promise<void> {
    requireSlot(bootname, this.o.slots);
    const { order } = await this.state();
    if (state === 'good') {
      // RAUC only refills the counter; a good slot missing from the order is appended so it stays bootable.
      const next = order.includes(bootname) ? order : [...order, bootname];
      await this.env.update({ [`BOOT_${bootname}_LEFT`]: this.o.attempts.toString(16), BOOT_ORDER: next.join(' ') });
    } else {
      await this.env.update({ [`BOOT_${bootname}_LEFT`]: '0', BOOT_ORDER: order.filter((b) => b !== bootname).join(' ') });
    }
  }

  getCurrent(): Promise<string> {
    return this.o.current();
  }

  async trialRebootArg(): Promise<string | null> {
    return null;
  }

  /** The boot script walks BOOT_ORDER from the front: the switch reached it exactly when the order still starts with `bootname`. */
  async attempted(bootname: string): Promise<'tried' | 'not-tried' | 'unknown'> {
    const { order } = await this.state();
    return order[0] === bootname ? 'tried' : 'not-tried';
  }

  async describe(): Promise<Record<string, string>> {
    const snap = await this.env.read();
    const out: Record<string, string> = { copy: snap.current < 0 ? 'none valid' : String(snap.current), flags: String(snap.flags) };
    for (const k of ['BOOT_ORDER', ...this.o.slots.map((b) => `BOOT_${b}_LEFT`)]) out[k] = snap.vars.get(k) ?? '(unset)';
    return out;
  }
}
