import { execFile } from 'node:child_process';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { requireSlot, type BootSelector, type SlotState } from './types.js';

export interface CustomSelectorOptions {
  /** The backend executable and leading arguments; the verb and its arguments are appended. */
  readonly command: readonly string[];
  readonly slots: readonly string[];
  readonly timeoutMs: number;
  /** Booted slot when the backend has no `get-current` (RAUC 1.8 reads rauc.slot= from /proc/cmdline). */
  readonly fallbackCurrent: () => Promise<string>;
  /** Ask the backend for `get-current` (RAUC ≥ 1.9 contract) before falling back. */
  readonly useGetCurrent: boolean;
}

/**
 * Drives a RAUC custom bootloader backend (`bootloader-custom-backend`): `get-primary`,
 * `set-primary <bn>`, `get-state <bn>` (prints good|bad), `set-state <bn> good|bad`, `get-current`.
 * Invariants: exit status 0 is success; output is trimmed and must be a configured bootname or
 * good/bad, anything else is an error naming the verb; every call is bounded by the timeout.
 */
export class CustomSelector implements BootSelector {
  readonly kind = 'custom';

  constructor(private readonly o: CustomSelectorOptions) {
    if (o.command.length === 0) throw new OutpostError('OUTPOST_E_OTA_CONFIG', 'bootloader.command is empty');
  }

  private call(args: string[]): Promise<string> {
    const [cmd, ...lead] = this.o.command as [string, ...string[]];
    return new Promise((resolve, reject) => {
      execFile(cmd, [...lead, ...args], { timeout: this.o.timeoutMs, maxBuffer: 64 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (err) {
          reject(
            new OutpostError('OUTPOST_E_OTA_BOOT_BACKEND', `boot backend "${cmd} ${args.join(' ')}" failed`, {
              cause: err,
              details: { command: cmd, args, exitCode: (err as { code?: unknown }).code ?? null, stderr: stderr.trim().slice(-2000) },
            }),
          );
        } else resolve(stdout.trim());
      });
    });
  }

  private bootname(out: string, verb: string): string {
    if (!this.o.slots.includes(out)) throw new OutpostError('OUTPOST_E_OTA_BOOT_BACKEND', `boot backend ${verb} printed "${out}", not a configured bootname`, { details: { verb, output: out } });
    return out;
  }

  async getPrimary(): Promise<string> {
    return this.bootname(await this.call(['get-primary']), 'get-primary');
  }

  async setPrimary(bootname: string): Promise<void> {
    requireSlot(bootname, this.o.slots);
    await this.call(['set-primary', bootname]);
  }

  async getState(bootname: string): Promise<SlotState> {
    requireSlot(bootname, this.o.slots);
    const out = await this.call(['get-state', bootname]);
    if (out !== 'good' && out !== 'bad') throw new OutpostError('OUTPOST_E_OTA_BOOT_BACKEND', `boot backend get-state printed "${out}", not good or bad`, { details: { output: out } });
    return out;
  }

  async setState(bootname: string, state: SlotState): Promise<void> {
    requireSlot(bootname, this.o.slots);
    await this.call(['set-state', bootname, state]);
  }

  async getCurrent(): Promise<string> {
    if (this.o.useGetCurrent) return this.bootname((await this.call(['get-current'])).split('\n')[0] ?? '', 'get-current');
    return this.o.fallbackCurrent();
  }

  async trialRebootArg(): Promise<string | null> {
    return null;
  }

  /** The RAUC backend contract has no verb that tells whether a slot was tried. */
  async attempted(): Promise<'tried' | 'not-tried' | 'unknown'> {
    return 'unknown';
  }

  async describe(): Promise<Record<string, string>> {
    const out: Record<string, string> = { backend: this.o.command.join(' ') };
    for (const b of this.o.slots) out[`${b}`] = await this.getState(b).catch(() => 'error');
    return out;
  }
}

/**
 * Outpost as a RAUC custom backend: runs one verb of the contract against a selector and returns
 * what to print. Throws OUTPOST_E_CLI_USAGE for a malformed call (RAUC then sees a non-zero exit).
 */
export async function runBackendVerb(sel: BootSelector, verb: string, args: readonly string[]): Promise<string | null> {
  const need = (n: number) => {
    if (args.length !== n) throw new OutpostError('OUTPOST_E_CLI_USAGE', `${verb} takes ${n} argument(s)`, { details: { verb, args } });
  };
  switch (verb) {
    case 'get-primary':
      need(0);
      return sel.getPrimary();
    case 'set-primary':
      need(1);
      await sel.setPrimary(args[0] as string);
      return null;
    case 'get-state':
      need(1);
      return sel.getState(args[0] as string);
    case 'set-state': {
      need(2);
      const s = args[1];
      if (s !== 'good' && s !== 'bad') throw new OutpostError('OUTPOST_E_CLI_USAGE', `set-state needs good or bad, not "${s}"`);
      await sel.setState(args[0] as string, s);
      return null;
    }
    case 'get-current':
      need(0);
      return sel.getCurrent();
    default:
      throw new OutpostError('OUTPOST_E_CLI_USAGE', `unknown backend verb "${verb}" (get-primary, set-primary, get-state, set-state, get-current)`, { details: { verb } });
  }
}
