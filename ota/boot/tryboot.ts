import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../atomic-file.js';
import { writeBootFile } from './boot-file.js';
import { bootloaderView, type BootloaderView } from './bootloader-view.js';
import { requireSlot, type BootSelector, type SlotState } from './types.js';

export interface TrybootOptions {
  /** autoboot.txt on the first FAT partition. */
  readonly autoboot: string;
  /** /proc/device-tree/chosen/bootloader: `partition` and `tryboot` (big-endian u32 each). */
  readonly deviceTree: string;
  /** Bootname → boot partition number. */
  readonly partitions: Readonly<Record<string, number>>;
  /** Outpost's own record: slots marked bad, and the trial armed for the next reboot. */
  readonly stateFile: string;
  readonly bootId: () => Promise<string>;
  /** How the firmware reads autoboot.txt (default: through the FAT of its partition); null: no read-back. */
  readonly view?: (() => Promise<BootloaderView>) | null;
}

interface TrybootRecord {
  bad: string[];
  armed: { bootname: string; bootId: string } | null;
}

function envError(message: string, details: Record<string, unknown> = {}, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BOOT_ENV', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

/** Parses autoboot.txt into `[all]` and `[tryboot]` boot partitions. */
export function parseAutoboot(text: string): { all: number | null; tryboot: number | null; trybootAB: boolean } {
  let section = 'all';
  const out = { all: null as number | null, tryboot: null as number | null, trybootAB: false };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      section = (s[1] ?? '').trim();
      continue;
    }
    const [k, v] = line.split('=').map((x) => x.trim());
    if (k === 'tryboot_a_b' && section === 'all') out.trybootAB = v === '1';
    if (k === 'boot_partition' && /^\d+$/.test(v ?? '')) {
      if (section === 'all') out.all = Number(v);
      if (section === 'tryboot') out.tryboot = Number(v);
    }
  }
  return out;
}

export function renderAutoboot(all: number, tryboot: number): string {
  const text = `[all]\ntryboot_a_b=1\nboot_partition=${all}\n[tryboot]\nboot_partition=${tryboot}\n`;
  if (text.length > 512) throw envError('autoboot.txt would exceed 512 bytes');
  return text;
}

/** Reads a big-endian u32 device-tree property (`/proc/device-tree/chosen/bootloader/partition`). */
export async function readDtU32(file: string): Promise<number> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw envError(`cannot read device-tree property ${file} (not booted by the Raspberry Pi firmware?)`, { file }, e);
  }
  if (buf.length < 4) throw envError(`device-tree property ${file} is shorter than 4 bytes`, { file });
  return buf.readUInt32BE(0);
}

/**
 * Raspberry Pi firmware tryboot. `autoboot.txt` names the committed boot partition in `[all]` and the
 * trial one in `[tryboot]`; a trial is a one-shot `reboot "0 tryboot"`, so any later reset boots
 * `[all]` again. Invariants: autoboot.txt is rewritten in place when its size is unchanged (else replaced
 * and fsync'ed) and read back through its partition's FAT as the firmware reads it; it only ever names
 * configured partitions; commit (good on the tryboot-booted slot) swaps the sections; bad marks and
 * the armed trial are kept in Outpost's own state file, an armed trial expiring with the boot it was
 * armed in.
 */
export class TrybootSelector implements BootSelector {
  readonly kind = 'tryboot';
  private readonly slots: string[];
  private view: Promise<BootloaderView | null> | null = null;

  constructor(private readonly o: TrybootOptions) {
    this.slots = Object.keys(o.partitions);
    if (this.slots.length !== 2) throw new OutpostError('OUTPOST_E_OTA_CONFIG', 'tryboot needs exactly two slots in bootloader.partitions');
  }

  private bootnameOf(partition: number): string {
    const b = this.slots.find((s) => this.o.partitions[s] === partition);
    if (!b) throw envError(`boot partition ${partition} is not a configured slot`, { partition, partitions: this.o.partitions });
    return b;
  }

  private other(b: string): string {
    return this.slots.find((s) => s !== b) as string;
  }

  private async autoboot(): Promise<{ all: string; tryboot: string | null }> {
    let text: string;
    try {
      text = await readFile(this.o.autoboot, 'utf8');
    } catch (e) {
      throw envError(`cannot read ${this.o.autoboot}`, { file: this.o.autoboot }, e);
    }
    const a = parseAutoboot(text);
    if (a.all === null) throw envError(`${this.o.autoboot} has no [all] boot_partition`, { file: this.o.autoboot });
    if (!a.trybootAB) throw envError(`${this.o.autoboot} lacks tryboot_a_b=1 in [all]`, { file: this.o.autoboot });
    return { all: this.bootnameOf(a.all), tryboot: a.tryboot === null ? null : this.bootnameOf(a.tryboot) };
  }

  private async writeAutoboot(all: string, tryboot: string): Promise<void> {
    const o = this.o.view;
    this.view ??= o === null ? Promise.resolve(null) : (o ?? (() => bootloaderView(this.o.autoboot)))();
    const text = Buffer.from(renderAutoboot(this.o.partitions[all] as number, this.o.partitions[tryboot] as number), 'latin1');
    await writeBootFile(this.o.autoboot, text, await this.view);
  }

  private async record(): Promise<TrybootRecord> {
    try {
      const r = JSON.parse(await readFile(this.o.stateFile, 'utf8')) as TrybootRecord;
      return { bad: Array.isArray(r.bad) ? r.bad : [], armed: r.armed ?? null };
    } catch {
      return { bad: [], armed: null };
    }
  }

  private async saveRecord(r: TrybootRecord): Promise<void> {
    const text = JSON.stringify(r);
    if ((await readFile(this.o.stateFile, 'utf8').catch(() => null)) === text) return;
    await mkdir(path.dirname(this.o.stateFile), { recursive: true });
    await writeFileAtomic(this.o.stateFile, text);
  }

  /** The trial armed in this boot, if any (an arm from an earlier boot was consumed by that reboot). */
  private async armed(r: TrybootRecord): Promise<string | null> {
    return r.armed && r.armed.bootId === (await this.o.bootId()) ? r.armed.bootname : null;
  }

  async getPrimary(): Promise<string> {
    const armed = await this.armed(await this.record());
    return armed ?? (await this.autoboot()).all;
  }

  async setPrimary(bootname: string): Promise<void> {
    requireSlot(bootname, this.slots);
    const ab = await this.autoboot();
    const r = await this.record();
    r.bad = r.bad.filter((b) => b !== bootname);
    if (bootname === ab.all) {
      r.armed = null;
    } else {
      if (ab.tryboot !== bootname) await this.writeAutoboot(ab.all, bootname);
      r.armed = { bootname, bootId: await this.o.bootId() };
    }
    await this.saveRecord(r);
  }

  async getState(bootname: string): Promise<SlotState> {
    requireSlot(bootname, this.slots);
    return (await this.record()).bad.includes(bootname) ? 'bad' : 'good';
  }

  async setState(bootname: string, state: SlotState): Promise<void> {
    requireSlot(bootname, this.slots);
    const ab = await this.autoboot();
    const r = await this.record();
    if (state === 'good') {
      r.bad = r.bad.filter((b) => b !== bootname);
      const current = await this.getCurrent();
      const inTrial = (await readDtU32(path.join(this.o.deviceTree, 'tryboot'))) === 1;
      // Commit: the slot booted by tryboot becomes [all]; the old one becomes the next trial target.
      if (inTrial && current === bootname && ab.all !== bootname) await this.writeAutoboot(bootname, ab.all);
    } else {
      if (!r.bad.includes(bootname)) r.bad.push(bootname);
      if (r.armed?.bootname === bootname) r.armed = null;
      const other = this.other(bootname);
      if (ab.all === bootname && !r.bad.includes(other)) await this.writeAutoboot(other, bootname);
    }
    await this.saveRecord(r);
  }

  async getCurrent(): Promise<string> {
    return this.bootnameOf(await readDtU32(path.join(this.o.deviceTree, 'partition')));
  }

  async trialRebootArg(): Promise<string | null> {
    return (await this.armed(await this.record())) !== null ? '0 tryboot' : null;
  }

  /** A tryboot is one-shot and a failed one leaves no trace the next boot can read. */
  async attempted(): Promise<'tried' | 'not-tried' | 'unknown'> {
    return 'unknown';
  }

  async describe(): Promise<Record<string, string>> {
    const ab = await this.autoboot();
    const r = await this.record();
    const tryboot = await readDtU32(path.join(this.o.deviceTree, 'tryboot')).catch(() => -1);
    return {
      '[all] boot_partition': `${this.o.partitions[ab.all]} (${ab.all})`,
      '[tryboot] boot_partition': ab.tryboot ? `${this.o.partitions[ab.tryboot]} (${ab.tryboot})` : '(unset)',
      'booted by tryboot': tryboot === -1 ? 'unknown' : tryboot === 1 ? 'yes' : 'no',
      'trial armed': (await this.armed(r)) ?? 'no',
      'marked bad': r.bad.join(' ') || 'none',
    };
  }
}
