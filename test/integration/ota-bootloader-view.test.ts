import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootloaderView, mountOf, parseMountinfo } from '../../ota/boot/bootloader-view.js';
import { writeBootFile } from '../../ota/boot/boot-file.js';
import { DirectReader } from '../../ota/boot/direct-read.js';
import { FatReader } from '../../ota/boot/fat-reader.js';
import { GrubEnv, parseGrubEnv } from '../../ota/boot/grub-env.js';
import { StateLock } from '../../ota/flow/state-lock.js';

/**
 * The bootloader's view of a boot environment: a FAT reader checked against images made by the real
 * tools (mkfs.vfat from dosfstools, mmd/mcopy from mtools) and read back by mtools' mtype; the O_DIRECT
 * reader; the mountinfo lookup; and the in-place write with read-back.
 */
let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-fat-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fatImage(name: string, fatBits: 12 | 16 | 32, sizeKiB: number): string {
  const img = join(dir, name);
  execFileSync('mkfs.vfat', ['-C', '-F', String(fatBits), '-n', 'ESP', img, String(sizeKiB)], { stdio: 'ignore' });
  return img;
}

const mcopy = (img: string, src: string, dest: string) => execFileSync('mcopy', ['-o', '-i', img, src, `::${dest}`]);
const mtype = (img: string, path: string) => execFileSync('mtype', ['-i', img, `::${path}`]);

describe('FatReader against mkfs.vfat + mtools images', () => {
  it.each([
    [12, 4 * 1024],
    [16, 32 * 1024],
    [32, 64 * 1024],
  ] as const)('FAT%i: resolves long and short names, case-insensitively, through subdirectories and fragmented files', async (bits, kib) => {
    const img = fatImage(`f${bits}.img`, bits, kib);
    execFileSync('mmd', ['-i', img, '::/EFI', '::/EFI/BOOT', '::/EFI/A Long Directory Name']);
    execFileSync('grub-editenv', [join(dir, `g${bits}`), 'create']);
    execFileSync('grub-editenv', [join(dir, `g${bits}`), 'set', 'ORDER=A B', 'A_OK=1']);
    mcopy(img, join(dir, `g${bits}`), '/EFI/BOOT/grubenv');
    // Fragment a file: write two files, delete the first, write a bigger one that fills the hole and more.
    const small = randomBytes(3000);
    const big = randomBytes(20_000);
    writeFileSync(join(dir, 'small'), small);
    writeFileSync(join(dir, 'big'), big);
    mcopy(img, join(dir, 'small'), '/EFI/BOOT/hole.bin');
    mcopy(img, join(dir, 'small'), '/EFI/BOOT/keep.bin');
    execFileSync('mdel', ['-i', img, '::/EFI/BOOT/hole.bin']);
    mcopy(img, join(dir, 'big'), '/EFI/A Long Directory Name/Fragmented File With A Long Name.dat');
    const src = await DirectReader.open(img);
    try {
      const fat = await FatReader.open(src);
      expect(fat.fatType).toBe(bits);
      expect(parseGrubEnv(await fat.readFile('EFI/BOOT/grubenv')).get('ORDER')).toBe('A B');
      expect((await fat.readFile('efi/boot/GRUBENV')).equals(mtype(img, '/EFI/BOOT/grubenv'))).toBe(true);
      expect((await fat.readFile('EFI/a long directory name/fragmented file with a long name.dat')).equals(big)).toBe(true);
      expect((await fat.readFile('/EFI/BOOT/keep.bin')).equals(small)).toBe(true);
      await expect(fat.readFile('EFI/BOOT/hole.bin')).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
      await expect(fat.readFile('EFI/BOOT/keep.bin/x')).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
      await expect(fat.readFile('EFI')).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    } finally {
      await src.close();
    }
  });

  it('refuses what is not a FAT file system, and a cluster chain that leaves it, with OUTPOST_E_OTA_BOOT_ENV', async () => {
    const junk = join(dir, 'junk.img');
    writeFileSync(junk, randomBytes(1024 * 1024));
    const src = await DirectReader.open(junk);
    await expect(FatReader.open(src)).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    await src.close();
    // A file whose FAT entry was freed (0) while its directory entry still names it: what a bootloader
    // would find after a reboot inside Linux's write-back window when a file is replaced by rename.
    const img = fatImage('freed.img', 32, 64 * 1024);
    writeFileSync(join(dir, 'two-clusters'), randomBytes(1024));
    mcopy(img, join(dir, 'two-clusters'), '/f.bin');
    const s2 = await DirectReader.open(img);
    const fat = await FatReader.open(s2);
    await s2.close();
    const raw = readFileSync(img);
    const reserved = raw.readUInt16LE(14);
    const bps = raw.readUInt16LE(11);
    const rootCluster = raw.readUInt32LE(44);
    const spc = raw[13] as number;
    const fatSectors = raw.readUInt32LE(36);
    const dataOff = (reserved + (raw[16] as number) * fatSectors) * bps;
    const rootOff = dataOff + (rootCluster - 2) * spc * bps;
    let first = 0;
    for (let off = rootOff; off < rootOff + spc * bps; off += 32) {
      if (raw.subarray(off, off + 5).toString('latin1') === 'F    ' || raw.subarray(off, off + 11).toString('latin1') === 'F       BIN') {
        first = (raw.readUInt16LE(off + 20) << 16) | raw.readUInt16LE(off + 26);
      }
    }
    expect(first).toBeGreaterThan(1);
    expect(fat.fatType).toBe(32);
    raw.writeUInt32LE(0, reserved * bps + first * 4); // free the first cluster's FAT entry
    writeFileSync(img, raw);
    const s3 = await DirectReader.open(img);
    await expect((await FatReader.open(s3)).readFile('f.bin')).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    await s3.close();
  });
});

describe('mountinfo', () => {
  const text = [
    '22 27 0:21 / /proc rw,relatime - proc proc rw',
    '27 1 254:2 / / ro,relatime - squashfs /dev/vda2 ro',
    '52 27 254:1 / /boot/efi rw,noatime shared:72 - vfat /dev/vda1 rw,fmask=0077',
    '53 27 254:1 /EFI /mnt/esp\\040copy rw - vfat /dev/vda1 rw',
  ].join('\n');

  it('finds the mount of a file, with bind-mounted subdirectories and escaped names', () => {
    const m = parseMountinfo(text);
    expect(mountOf('/boot/efi/EFI/BOOT/grubenv', m)).toMatchObject({ fsType: 'vfat', source: '/dev/vda1', root: '/' });
    expect(mountOf('/mnt/esp copy/BOOT/grubenv', m)).toMatchObject({ mountPoint: '/mnt/esp copy', root: '/EFI' });
    expect(mountOf('/etc/hosts', m)).toMatchObject({ fsType: 'squashfs' });
    expect(mountOf('/boot/efix', m)).toMatchObject({ mountPoint: '/' });
  });
});

describe('writeBootFile and GrubEnv: in place, read back as the bootloader reads', () => {
  it('rewrites the grubenv in place (same inode) and reads it back through O_DIRECT', async () => {
    const f = join(dir, 'grubenv-inplace');
    execFileSync('grub-editenv', [f, 'create']);
    execFileSync('grub-editenv', [f, 'set', 'ORDER=A B', 'A_OK=1', 'B_OK=1']);
    const ino = execFileSync('stat', ['-c', '%i', f], { encoding: 'utf8' });
    const env = new GrubEnv(f);
    await env.update({ ORDER: 'B A', B_TRY: '0' });
    expect(execFileSync('stat', ['-c', '%i', f], { encoding: 'utf8' })).toBe(ino);
    expect(execFileSync('grub-editenv', [f, 'list'], { encoding: 'utf8' })).toContain('ORDER=B A');
    expect((await env.readAsBootloader()).get('ORDER')).toBe('B A');
    expect((await bootloaderView(f)).describe).toContain('O_DIRECT');
  });

  it('keeps every variable within the first sector, and refuses a change that would not fit there', async () => {
    const f = join(dir, 'grubenv-full');
    execFileSync('grub-editenv', [f, 'create']);
    const env = new GrubEnv(f);
    await expect(env.update({ extra_cmdline: 'x'.repeat(500) })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    expect(execFileSync('grub-editenv', [f, 'list'], { encoding: 'utf8' })).toBe('');
  });

  it('says OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED when the bootloader would read something else', async () => {
    const f = join(dir, 'grubenv-stale');
    execFileSync('grub-editenv', [f, 'create']);
    execFileSync('grub-editenv', [f, 'set', 'ORDER=A B']);
    const stale = readFileSync(f);
    const env = new GrubEnv(f, { view: async () => ({ describe: 'a medium that did not get the write', read: async () => stale }) });
    await expect(env.update({ ORDER: 'B A' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED' });
    await expect(writeBootFile(f, stale, { describe: 'stale', read: async () => Buffer.from('other') })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED' });
  });
});

describe('StateLock', () => {
  it('serialises sections within a process and across processes, and is released when its holder dies', async () => {
    const lock = new StateLock(join(dir, 'lockdir'), { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), waitMs: 30_000 });
    const order: string[] = [];
    await Promise.all(
      ['a', 'b', 'c'].map((n) =>
        lock.with(async () => {
          order.push(`${n}+`);
          await new Promise((r) => setTimeout(r, 20));
          order.push(`${n}-`);
        }),
      ),
    );
    expect(order).toEqual(['a+', 'a-', 'b+', 'b-', 'c+', 'c-']);
    // Re-entrant within one section.
    expect(await lock.with(() => lock.with(async () => 42))).toBe(42);
    // Another process holds it and is killed: the kernel releases the socket, the next holder needs no clean-up.
    const holder = execFileSync(
      'sh',
      ['-c', `${process.execPath} --input-type=module -e "import { StateLock } from '${join(import.meta.dirname, '..', '..', 'dist', 'ota', 'flow', 'state-lock.js')}'; const l = new StateLock('${join(dir, 'lockdir')}', { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) }); await l.with(async () => { process.kill(process.pid, 'SIGKILL'); });" ; echo exited`],
      { encoding: 'utf8' },
    );
    expect(holder.trim()).toBe('exited');
    expect(await lock.with(async () => 'taken after a dead holder')).toBe('taken after a dead holder');
    const busy = new StateLock(join(dir, 'lockdir'), { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)), waitMs: 100 });
    await expect(lock.with(() => busy.with(async () => 0))).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BUSY' });
  });
});
