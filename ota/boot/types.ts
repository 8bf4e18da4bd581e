import { readFile } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';

export type SlotState = 'good' | 'bad';

/**
 * Boot selection: RAUC's five verbs over one bootloader. Slots are named by their bootname (`A`,
 * `B`; tryboot: the configured names mapped to partitions). Implementations keep RAUC's variable
 * conventions exactly, so RAUC and the image's boot script read and write the same state.
 */
export interface BootSelector {
  readonly kind: string;
  /** The slot the bootloader will try first on the next boot. */
  getPrimary(): Promise<string>;
  /** Makes a slot primary and arms its boot attempts (RAUC `mark-active`). */
  setPrimary(bootname: string): Promise<void>;
  getState(bootname: string): Promise<SlotState>;
  /** good: refill its attempts (`mark-good`); bad: take it out of the boot order (`mark-bad`). */
  setState(bootname: string, state: SlotState): Promise<void>;
  /** The slot running now. */
  getCurrent(): Promise<string>;
  /** Argument for the reboot that starts a trial (`0 tryboot` for Raspberry Pi tryboot), or null. */
  trialRebootArg(): Promise<string | null>;
  /** Raw bootloader variables for `outpost ota status`. */
  describe(): Promise<Record<string, string>>;
  /**
   * After a reboot that was meant to start `bootname` but came up on another slot: whether the bootloader
   * saw the switch and tried it (`tried`: the trial failed), never saw it (`not-tried`: the switch was
   * lost), or cannot tell (`unknown`: the bootloader leaves no trace, e.g. firmware tryboot).
   */
  attempted(bootname: string): Promise<'tried' | 'not-tried' | 'unknown'>;
}

/** Reads `rauc.slot=<bootname>` (or `root=PARTLABEL=`/`root=` matched against slots) from the kernel command line. */
export async function bootnameFromCmdline(cmdlineFile: string, slots: ReadonlyArray<{ bootname: string; devices: Readonly<Record<string, string>> }>): Promise<string> {
  let text: string;
  try {
    text = await readFile(cmdlineFile, 'utf8');
  } catch (e) {
    throw new OutpostError('OUTPOST_E_OTA_SLOT', `cannot read the kernel command line ${cmdlineFile}`, { cause: e, details: { file: cmdlineFile } });
  }
  const args = text.trim().split(/\s+/);
  const get = (k: string) => args.find((a) => a.startsWith(`${k}=`))?.slice(k.length + 1);
  const rauc = get('rauc.slot');
  if (rauc !== undefined) {
    if (slots.some((s) => s.bootname === rauc)) return rauc;
    throw new OutpostError('OUTPOST_E_OTA_SLOT', `kernel command line names rauc.slot=${rauc}, which is not a configured slot`, { details: { bootname: rauc } });
  }
  const root = get('root');
  if (root !== undefined) {
    for (const s of slots) {
      for (const dev of Object.values(s.devices)) {
        const label = /\/by-partlabel\/(.+)$/.exec(dev)?.[1];
        if (root === dev || (label !== undefined && root === `PARTLABEL=${label}`)) return s.bootname;
      }
    }
  }
  throw new OutpostError('OUTPOST_E_OTA_SLOT', 'cannot tell the booted slot: the kernel command line has no rauc.slot= and its root= matches no slot', {
    details: { file: cmdlineFile, root: root ?? null },
  });
}

/** RAUC's order for a new primary: it first, then the other configured slots in configuration order. */
export function orderWithPrimary(bootname: string, all: readonly string[]): string[] {
  return [bootname, ...all.filter((b) => b !== bootname)];
}

export function requireSlot(bootname: string, all: readonly string[]): void {
  if (!all.includes(bootname)) throw new OutpostError('OUTPOST_E_OTA_SLOT', `no slot with bootname ${bootname}`, { details: { bootname, slots: all } });
}
