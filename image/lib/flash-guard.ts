import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** Where the flash guard looks at the running system; tests point these at fixture files. */
export interface SystemView {
  /** Text of /proc/self/mountinfo. */
  readonly mountinfo: () => string;
  /** Text of /proc/swaps. */
  readonly swaps: () => string;
  /** Root of sysfs (/sys). */
  readonly sysRoot: string;
}

export const realSystem: SystemView = {
  mountinfo: () => readFileSync('/proc/self/mountinfo', 'utf8'),
  swaps: () => (existsSync('/proc/swaps') ? readFileSync('/proc/swaps', 'utf8') : ''),
  sysRoot: '/sys',
};

export interface Mount {
  readonly devno: string;
  readonly mountPoint: string;
  readonly source: string;
}

/** Parses /proc/self/mountinfo: "id parent major:minor root mountpoint opts [optional…] - fstype source superopts". */
export function parseMountinfo(text: string): Mount[] {
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const dash = f.indexOf('-');
    if (f.length < 7 || dash < 0) continue;
    out.push({ devno: f[2] as string, mountPoint: unescape(f[4] as string), source: unescape(f[dash + 2] ?? '') });
  }
  return out;
}

/** What a block device is made of: its own and its partitions' device numbers and names. */
function blockFamily(sys: SystemView, devno: string): { name: string; devnos: Map<string, string>; holders: string[]; sizeBytes: number | undefined } {
  const link = path.join(sys.sysRoot, 'dev', 'block', devno);
  if (!existsSync(link)) return { name: devno, devnos: new Map([[devno, devno]]), holders: [], sizeBytes: undefined };
  let dir = realpathSync(link);
  // A partition: work on its whole disk, since writing the disk destroys every partition.
  if (existsSync(path.join(dir, 'partition'))) dir = path.dirname(dir);
  const name = path.basename(dir);
  const read = (f: string) => readFileSync(f, 'utf8').trim();
  const devnos = new Map<string, string>([[read(path.join(dir, 'dev')), name]]);
  const holders: string[] = [];
  const holdersOf = (d: string) => (existsSync(path.join(d, 'holders')) ? readdirSync(path.join(d, 'holders')) : []);
  holders.push(...holdersOf(dir));
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (existsSync(path.join(p, 'partition')) && existsSync(path.join(p, 'dev'))) {
      devnos.set(read(path.join(p, 'dev')), e);
      holders.push(...holdersOf(p));
    }
  }
  const size = existsSync(path.join(dir, 'size')) ? Number(read(path.join(dir, 'size'))) * 512 : undefined;
  return { name, devnos, holders, sizeBytes: size };
}

export interface TargetInfo {
  readonly kind: 'block' | 'file';
  readonly path: string;
  readonly exists: boolean;
  /** Capacity of a block device, when sysfs tells it. */
  readonly sizeBytes: number | undefined;
}

/**
 * Refuses a target that is mounted, used as swap or by device-mapper, or holds the running system, before
 * anything is written. A block device counts as busy when it or any of its partitions is; a file when it is
 * the source of a mount or the backing file of a loop device that is.
 */
export function checkTarget(target: string, sys: SystemView, imagePath: string): TargetInfo {
  const mounts = parseMountinfo(sys.mountinfo());
  const busy = (why: string, details: Record<string, unknown>) =>
    new OutpostError('OUTPOST_E_FLASH_TARGET_BUSY', `refusing to flash ${target}: ${why}`, { details: { target, ...details } });
  if (!existsSync(target)) {
    if (!existsSync(path.dirname(path.resolve(target)))) throw new OutpostError('OUTPOST_E_FLASH_TARGET', `cannot flash ${target}: its directory does not exist`);
    return { kind: 'file', path: target, exists: false, sizeBytes: undefined };
  }
  const st = statSync(target);
  if (st.isBlockDevice()) {
    const devno = `${Math.floor(st.rdev / 256) & 0xfff}:${(st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00)}`;
    const fam = blockFamily(sys, devno);
    for (const m of mounts) {
      const part = fam.devnos.get(m.devno);
      if (part !== undefined) {
        const sys = m.mountPoint === '/' || m.mountPoint.startsWith('/boot') || m.mountPoint === '/usr';
        throw busy(sys ? `${part} holds the running system (mounted on ${m.mountPoint})` : `${part} is mounted on ${m.mountPoint}; unmount it first`, { mountPoint: m.mountPoint, partition: part });
      }
    }
    const names = [...fam.devnos.values()];
    for (const line of sys.swaps().split('\n').slice(1)) {
      const dev = line.split(/\s+/)[0] ?? '';
      if (dev !== '' && names.includes(path.basename(dev))) throw busy(`${path.basename(dev)} is in use as swap`, { swap: dev });
    }
    if (fam.holders.length > 0) throw busy(`it is in use by ${fam.holders.join(', ')} (LVM, RAID or dm-crypt)`, { holders: fam.holders });
    return { kind: 'block', path: target, exists: true, sizeBytes: fam.sizeBytes };
  }
  if (!st.isFile()) throw new OutpostError('OUTPOST_E_FLASH_TARGET', `cannot flash ${target}: not a block device or a regular file`);
  const real = realpathSync(target);
  if (real === realpathSync(imagePath)) throw new OutpostError('OUTPOST_E_FLASH_TARGET', `cannot flash ${target}: it is the image itself`);
  for (const m of mounts) {
    if (m.source === real) throw busy(`it is mounted on ${m.mountPoint}`, { mountPoint: m.mountPoint });
  }
  // Loop devices backed by this file, and whether one of them is mounted.
  const blockDir = path.join(sys.sysRoot, 'block');
  if (existsSync(blockDir)) {
    for (const dev of readdirSync(blockDir)) {
      const bf = path.join(blockDir, dev, 'loop', 'backing_file');
      if (!existsSync(bf) || readFileSync(bf, 'utf8').trim() !== real) continue;
      const fam = blockFamily(sys, readFileSync(path.join(blockDir, dev, 'dev'), 'utf8').trim());
      for (const m of mounts) {
        if (fam.devnos.has(m.devno)) throw busy(`it backs /dev/${dev}, mounted on ${m.mountPoint}`, { loop: dev, mountPoint: m.mountPoint });
      }
    }
  }
  return { kind: 'file', path: target, exists: true, sizeBytes: undefined };
}
