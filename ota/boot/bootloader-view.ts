import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { DirectReader } from './direct-read.js';
import { FatReader } from './fat-reader.js';

/** Reads a boot-environment file the way the bootloader will after a reboot: from the medium, not the page cache. */
export interface BootloaderView {
  /** How the file is read, for logs and errors (e.g. `vfat /dev/vda1:EFI/BOOT/grubenv (O_DIRECT)`). */
  readonly describe: string;
  read(): Promise<Buffer>;
}

export interface MountEntry {
  readonly mountPoint: string;
  /** The directory of the file system mounted there (`/` unless a bind mount of a subdirectory). */
  readonly root: string;
  readonly fsType: string;
  readonly source: string;
}

/** Unescapes mountinfo's octal escapes (`\040` for a space). */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/self/mountinfo (proc(5)). */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    if (left.length < 5 || right.length < 2) continue;
    out.push({ root: unescape(left[3] as string), mountPoint: unescape(left[4] as string), fsType: right[0] as string, source: unescape(right[1] as string) });
  }
  return out;
}

/** The mount that holds `file` (longest mount point that is a prefix; the last one mounted wins a tie). */
export function mountOf(file: string, mounts: readonly MountEntry[]): MountEntry | null {
  let best: MountEntry | null = null;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const inside = mp === '/' || file === mp || file.startsWith(`${mp}/`);
    if (inside && (best === null || mp.length >= best.mountPoint.length)) best = m;
  }
  return best;
}

const FAT_TYPES = new Set(['vfat', 'msdos', 'fat']);

/**
 * The bootloader's view of `file`. On a FAT file system (an ESP, a Raspberry Pi boot partition) the file
 * is looked up through the partition device's own FAT structures, read with O_DIRECT — exactly what GRUB
 * or the Pi firmware reads after a reboot, including the directory entry, which Linux writes back on its
 * own schedule. Elsewhere (ext4, a file in tests) the file itself is read with O_DIRECT where the file
 * system allows it.
 */
export async function bootloaderView(file: string, mountinfo = '/proc/self/mountinfo'): Promise<BootloaderView> {
  let real: string;
  try {
    real = path.join(await realpath(path.dirname(file)), path.basename(file));
  } catch (e) {
    throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV', `cannot resolve the boot environment path ${file}`, { cause: e, details: { file } });
  }
  const mounts = parseMountinfo(await readFile(mountinfo, 'utf8').catch(() => ''));
  const m = mountOf(real, mounts);
  if (m && FAT_TYPES.has(m.fsType) && m.source.startsWith('/dev/')) {
    const inFs = path.posix.join(m.root, m.mountPoint === '/' ? real : real.slice(m.mountPoint.length));
    const device = m.source;
    return {
      describe: `${m.fsType} ${device}:${inFs} (O_DIRECT)`,
      read: async () => {
        const src = await DirectReader.open(device);
        try {
          return await (await FatReader.open(src)).readFile(inFs);
        } finally {
          await src.close();
        }
      },
    };
  }
  return {
    describe: `${real} (${m?.fsType ?? 'unknown file system'}, O_DIRECT where supported)`,
    read: async () => {
      const src = await DirectReader.open(real);
      try {
        const chunks: Buffer[] = [];
        for (let off = 0; off < 16 * 1024 * 1024; ) {
          const b = await src.read(off, 65536);
          if (b.length === 0) break;
          chunks.push(b);
          off += b.length;
          if (b.length < 65536) break;
        }
        return Buffer.concat(chunks);
      } finally {
        await src.close();
      }
    },
  };
}
