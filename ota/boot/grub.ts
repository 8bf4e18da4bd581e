import { OutpostError } from '../../src/errors/outpost-error.js';
import type { GrubEnv } from './grub-env.js';
import { orderWithPrimary, requireSlot, type BootSelector, type SlotState } from './types.js';

export interface GrubSelectorOptions {
  readonly slots: readonly string[];
  readonly current: () => Promise<string>;
}

/**
 * RAUC's GRUB convention (contrib/grub.conf): `ORDER`, `<x>_OK` (0/1), `<x>_TRY` (0/1). GRUB sets
 * `<x>_TRY=1` on the slot it boots (one try per slot) and mark-good clears it. A slot is good when it
 * is in ORDER with OK=1 and TRY=0. Invariants: every verb is one grubenv transaction; missing variables
 * read as the script's defaults (ORDER = all slots, OK=0, TRY=0).
 */
export class GrubSelector implements BootSelector {
  readonly kind = 'grub';

  constructor(
    private readonly env: GrubEnv,
    private readonly o: GrubSelectorOptions,
  ) {}

  private async state(): Promise<{ order: string[]; ok: (b: string) => boolean; tried: (b: string) => boolean }> {
    const vars = await this.env.read();
    const orderVar = vars.get('ORDER');
    const order = orderVar === undefined ? [...this.o.slots] : orderVar.split(' ').filter((s) => s !== '');
    return {
      order,
      ok: (b) => Number(vars.get(`${b}_OK`) ?? '0') === 1,
      tried: (b) => Number(vars.get(`${b}_TRY`) ?? '0') > 0,
    };
  }

  async getPrimary(): Promise<string> {
    const { order, ok, tried } = await this.state();
    const p = order.find((b) => this.o.slots.includes(b) && ok(b) && !tried(b));
    if (!p) throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV', `no bootable slot in ORDER "${order.join(' ')}"`, { details: { order } });
    return p;
  }

  async setPrimary(bootname: string): Promise<void> {
    requireSlot(bootname, this.o.slots);
    await this.env.update({ [`${bootname}_OK`]: '1', [`${bootname}_TRY`]: '0', ORDER: orderWithPrimary(bootname, this.o.slots).join(' ') });
  }

  async getState(bootname: string): Promise<SlotState> {
    requireSlot(bootname, this.o.slots);
    const { order, ok, tried } = await this.state();
    return order.includes(bootname) && ok(bootname) && !tried(bootname) ? 'good' : 'bad';
  }

  async setState(bootname: string, state: SlotState): Promise<void> {
    requireSlot(bootname, this.o.slots);
    const changes: Record<string, string> = { [`${bootname}_OK`]: state === 'good' ? '1' : '0', [`${bootname}_TRY`]: '0' };
    if (state === 'good') {
      // RAUC leaves ORDER alone; a good slot missing from it is appended so it stays bootable.
      const { order } = await this.state();
      if (!order.includes(bootname)) changes['ORDER'] = [...order, bootname].join(' ');
    }
    await this.env.update(changes);
  }

  getCurrent(): Promise<string> {
    return this.o.current();
  }

  async trialRebootArg(): Promise<string | null> {
    return null;
  }

  /** GRUB walks ORDER from the front: the switch reached it exactly when ORDER still starts with `bootname`. */
  async attempted(bootname: string): Promise<'tried' | 'not-tried' | 'unknown'> {
    const { order } = await this.state();
    return order[0] === bootname ? 'tried' : 'not-tried';
  }

  async describe(): Promise<Record<string, string>> {
    const vars = await this.env.read();
    const out: Record<string, string> = { ORDER: vars.get('ORDER') ?? '(unset)' };
    for (const b of this.o.slots) for (const k of [`${b}_OK`, `${b}_TRY`]) out[k] = vars.get(k) ?? '(unset)';
    return out;
  }
}
