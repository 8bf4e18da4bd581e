import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAutoboot } from '../../ota/boot/tryboot.js';
import type { Rig } from './ota.js';

/**
 * The bootloader side of a reboot, played on the rig's files with the real tools, independently of
 * Outpost's adapters: RAUC's contrib/uboot.sh through fw_printenv/fw_setenv (one saveenv), RAUC's
 * contrib/grub.conf through grub-editenv, and the Raspberry Pi firmware's tryboot rule (the one-shot
 * flag comes from the reboot command's `0 tryboot` argument).
 */
export class BootSim {
  private rebootsSeen = 0;
  readonly history: string[] = [];

  constructor(private readonly rig: Rig) {}

  /** Power on (or reset): the bootloader chooses, updates its counters, and the kernel starts. */
  powerOn(): 'A' | 'B' {
    const slot = this.rig.bootloader === 'uboot' ? this.uboot() : this.rig.bootloader === 'grub' ? this.grub() : this.tryboot();
    this.history.push(slot);
    return slot;
  }

  private uboot(): 'A' | 'B' {
    const conf = join(this.rig.dir, 'fw_env.config');
    for (let resets = 0; resets < 2; resets++) {
      const vars = this.rig.fwPrintenv();
      const order = (vars['BOOT_ORDER'] ?? 'A B').split(' ').filter((s) => s !== '');
      const left: Record<string, number> = { A: parseInt(vars['BOOT_A_LEFT'] ?? '3', 16), B: parseInt(vars['BOOT_B_LEFT'] ?? '3', 16) };
      const chosen = order.find((s) => (s === 'A' || s === 'B') && (left[s] ?? 0) > 0) as 'A' | 'B' | undefined;
      if (chosen) left[chosen] = (left[chosen] ?? 1) - 1;
      else ((left['A'] = 3), (left['B'] = 3));
      const script = join(this.rig.dir, 'saveenv.txt');
      writeFileSync(script, `BOOT_ORDER=${order.join(' ')}\nBOOT_A_LEFT=${(left['A'] ?? 0).toString(16)}\nBOOT_B_LEFT=${(left['B'] ?? 0).toString(16)}\n`);
      execFileSync('fw_setenv', ['-c', conf, '-s', script]);
      if (chosen) {
        this.rig.boot(chosen);
        return chosen;
      }
    }
    throw new Error('U-Boot found no bootable slot twice');
  }

  private grub(): 'A' | 'B' {
    const v = this.rig.grubList();
    const order = (v['ORDER'] ?? 'A B').split(' ');
    const ok = (s: string) => Number(v[`${s}_OK`] ?? '0') === 1;
    const tried: Record<string, boolean> = { A: Number(v['A_TRY'] ?? '0') === 1, B: Number(v['B_TRY'] ?? '0') === 1 };
    const set: Record<string, string> = {};
    let chosen: 'A' | 'B' | undefined;
    for (const s of order) {
      if (s !== 'A' && s !== 'B') continue;
      const wasTried = tried[s];
      set[`${s}_TRY`] = '1';
      if (ok(s) && !wasTried) {
        chosen = s;
        break;
      }
    }
    if (!chosen) {
      // No slot left to try: reset the tries of the good slots and boot the first of them.
      for (const s of ['A', 'B']) if (ok(s)) set[`${s}_TRY`] = '0';
      chosen = order.find((s) => ok(s)) as 'A' | 'B' | undefined;
      if (!chosen) throw new Error('GRUB found no slot with OK=1');
      set[`${chosen}_TRY`] = '1';
    }
    execFileSync('grub-editenv', [join(this.rig.dir, 'grubenv'), 'set', ...Object.entries(set).map(([k, val]) => `${k}=${val}`)]);
    this.rig.boot(chosen);
    return chosen;
  }

  private tryboot(): 'A' | 'B' {
    const reboots = this.rig.reboots();
    const trial = reboots.length > this.rebootsSeen && (reboots.at(-1) ?? '').endsWith('0 tryboot');
    this.rebootsSeen = reboots.length;
    const a = parseAutoboot(readFileSync(join(this.rig.dir, 'autoboot.txt'), 'utf8'));
    const part = trial && a.tryboot !== null ? a.tryboot : a.all;
    const slot = part === 2 ? 'A' : 'B';
    this.rig.boot(slot, trial);
    return slot;
  }

  /** Counts reboots requested since the last look (mark-good asking for a reboot). */
  rebootRequested(): boolean {
    const n = this.rig.reboots().length;
    const requested = n > this.rebootsSeen;
    if (this.rig.bootloader !== 'tryboot') this.rebootsSeen = n;
    return requested;
  }
}
