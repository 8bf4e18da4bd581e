import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { flashImage, zstdContentSize } from '../../image/lib/flash.js';
import { checkTarget, parseMountinfo, realSystem, type SystemView } from '../../image/lib/flash-guard.js';

/**
 * `outpost flash` against real files (raw and zstd images written and read back) and a fake running system:
 * mountinfo, swaps and sysfs come from fixtures, block devices are device nodes made with mknod that are
 * never opened, since every refusal happens before the target is opened.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'outpost-flash-'));
const sys = path.join(dir, 'sys');
const MiB = 1024 * 1024;
let image: string;
let imageZst: string;
let imageSha: string;

const MOUNTINFO_ROOT_ON_SDA2 = [
  '22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw',
  '23 22 0:21 / /proc rw - proc proc rw',
  '24 22 8:1 / /boot/efi rw - vfat /dev/sda1 rw',
].join('\n');

function view(mountinfo: string, swaps = 'Filename Type Size Used Priority\n'): SystemView {
  return { mountinfo: () => mountinfo, swaps: () => swaps, sysRoot: sys };
}

/** A fake sysfs disk: /sys/class/block/<disk>/{dev,size,<disk><n>/{dev,partition}}, /sys/dev/block/M:m links. */
function fakeDisk(name: string, major: number, parts: number, sizeBytes: number, holders: Record<string, string[]> = {}) {
  const d = path.join(sys, 'class', 'block', name);
  mkdirSync(path.join(d, 'holders'), { recursive: true });
  writeFileSync(path.join(d, 'dev'), `${major}:0\n`);
  writeFileSync(path.join(d, 'size'), `${sizeBytes / 512}\n`);
  mkdirSync(path.join(sys, 'dev', 'block'), { recursive: true });
  symlinkSync(d, path.join(sys, 'dev', 'block', `${major}:0`));
  for (let i = 1; i <= parts; i++) {
    const p = path.join(d, `${name}${i}`);
    mkdirSync(path.join(p, 'holders'), { recursive: true });
    writeFileSync(path.join(p, 'dev'), `${major}:${i}\n`);
    writeFileSync(path.join(p, 'partition'), `${i}\n`);
    for (const h of holders[`${name}${i}`] ?? []) writeFileSync(path.join(p, 'holders', h), '');
    symlinkSync(p, path.join(sys, 'dev', 'block', `${major}:${i}`));
  }
  const node = path.join(dir, name);
  expect(spawnSync('mknod', [node, 'b', String(major), '0']).status).toBe(0);
  return node;
}

const noFlush = async () => undefined;

beforeAll(() => {
  // A 20 MiB "disk": random blocks between long zero runs, like a real image.
  image = path.join(dir, 'disk.img');
  const buf = Buffer.alloc(20 * MiB);
  randomBytes(MiB).copy(buf, 0);
  randomBytes(3 * MiB + 123).copy(buf, 9 * MiB);
  writeFileSync(image, buf);
  imageSha = createHash('sha256').update(buf).digest('hex');
  imageZst = path.join(dir, 'disk.img.zst');
  expect(spawnSync('zstd', ['-q', '-3', '-o', imageZst, image]).status).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('outpost flash', () => {
  it('writes a zstd image to a file sparse, with progress, and verifies it by reading back', async () => {
    const target = path.join(dir, 'out1.img');
    const seen: string[] = [];
    const r = await flashImage({ image: imageZst, target, system: view(MOUNTINFO_ROOT_ON_SDA2), flushBuffers: noFlush, progress: (p, d, t) => seen.push(`${p}:${d}/${t}`) });
    expect(r).toEqual({ bytes: 20 * MiB, sha256: imageSha, kind: 'file' });
    expect(createHash('sha256').update(readFileSync(target)).digest('hex')).toBe(imageSha);
    expect(statSync(target).blocks * 512).toBeLessThan(15 * MiB); // all-zero 4 MiB chunks are holes
    expect(seen[0]).toMatch(/^write:\d+\/20971520$/);
    expect(seen[seen.length - 1]).toBe('verify:20971520/20971520');
  });

  it('reads the content size from the zstd frame header', () => {
    expect(zstdContentSize(readFileSync(imageZst).subarray(0, 18))).toBe(20 * MiB);
  });

  it('overwrites a longer existing file and truncates it to the image', async () => {
    const target = path.join(dir, 'out2.img');
    writeFileSync(target, Buffer.alloc(30 * MiB, 0xaa));
    const r = await flashImage({ image, target, system: view(MOUNTINFO_ROOT_ON_SDA2), flushBuffers: noFlush, progress: () => undefined });
    expect(r.sha256).toBe(imageSha);
    expect(statSync(target).size).toBe(20 * MiB);
  });

  it('fails on a truncated compressed image with a clear error', async () => {
    const bad = path.join(dir, 'bad.img.zst');
    writeFileSync(bad, readFileSync(imageZst).subarray(0, 100_000));
    await expect(flashImage({ image: bad, target: path.join(dir, 'out3.img'), system: view(''), flushBuffers: noFlush, progress: () => undefined }))
      .rejects.toMatchObject({ code: 'OUTPOST_E_FLASH_SOURCE' });
  });

  it('refuses a file that is not an image, and the image itself as target', async () => {
    const txt = path.join(dir, 'notes.txt');
    writeFileSync(txt, 'hello');
    await expect(flashImage({ image: txt, target: path.join(dir, 'o.img'), system: view(''), flushBuffers: noFlush, progress: () => undefined })).rejects.toMatchObject({ code: 'OUTPOST_E_FLASH_SOURCE' });
    expect(() => checkTarget(image, view(''), image)).toThrow(/it is the image itself/);
  });

  it('refuses a block device whose partition holds the running system, naming the partition', () => {
    const sda = fakeDisk('sda', 8, 2, 64 * MiB);
    expect(() => checkTarget(sda, view(MOUNTINFO_ROOT_ON_SDA2), image)).toThrow(/sda2 holds the running system \(mounted on \/\)/);
  });

  it('refuses a disk with a mounted partition, a swap partition, or a device-mapper holder; accepts an idle one', () => {
    const sdb = fakeDisk('sdb', 9, 2, 64 * MiB);
    expect(() => checkTarget(sdb, view(`${MOUNTINFO_ROOT_ON_SDA2}\n40 22 9:1 / /media/stick rw - vfat /dev/sdb1 rw`), image)).toThrow(/sdb1 is mounted on \/media\/stick/);
    expect(() => checkTarget(sdb, view(MOUNTINFO_ROOT_ON_SDA2, 'Filename Type Size Used Priority\n/dev/sdb2 partition 1 0 -2\n'), image)).toThrow(/sdb2 is in use as swap/);
    const sdc = fakeDisk('sdc', 10, 1, 64 * MiB, { sdc1: ['dm-0'] });
    expect(() => checkTarget(sdc, view(MOUNTINFO_ROOT_ON_SDA2), image)).toThrow(/in use by dm-0/);
    expect(checkTarget(sdb, view(MOUNTINFO_ROOT_ON_SDA2), image)).toEqual({ kind: 'block', path: sdb, exists: true, sizeBytes: 64 * MiB });
  });

  it('refuses a block device smaller than the image before writing', async () => {
    const sdd = fakeDisk('sdd', 11, 0, 8 * MiB);
    await expect(flashImage({ image: imageZst, target: sdd, system: view(MOUNTINFO_ROOT_ON_SDA2), flushBuffers: noFlush, progress: () => undefined }))
      .rejects.toThrow(/holds 8388608 bytes; the image needs 20971520/);
  });

  it('refuses a file that is mounted, or that backs a mounted loop device, and leaves it untouched', async () => {
    const f = path.join(dir, 'mounted.img');
    writeFileSync(f, 'keep me');
    await expect(flashImage({ image, target: f, system: view(`${MOUNTINFO_ROOT_ON_SDA2}\n50 22 0:60 / /mnt rw - ext4 ${f} rw`), flushBuffers: noFlush, progress: () => undefined }))
      .rejects.toMatchObject({ code: 'OUTPOST_E_FLASH_TARGET_BUSY' });
    expect(readFileSync(f, 'utf8')).toBe('keep me');
    const loop = path.join(sys, 'block', 'loop7');
    mkdirSync(path.join(loop, 'loop'), { recursive: true });
    writeFileSync(path.join(loop, 'loop', 'backing_file'), `${f}\n`);
    writeFileSync(path.join(loop, 'dev'), '7:7\n');
    expect(() => checkTarget(f, view(`${MOUNTINFO_ROOT_ON_SDA2}\n51 22 7:7 / /srv rw - ext4 /dev/loop7 rw`), image)).toThrow(/backs \/dev\/loop7, mounted on \/srv/);
    expect(checkTarget(f, view(MOUNTINFO_ROOT_ON_SDA2), image).kind).toBe('file');
  });

  it('parses mountinfo with escaped spaces', () => {
    expect(parseMountinfo('30 22 8:3 / /media/my\\040stick rw - vfat /dev/sdb1 rw')).toEqual([{ devno: '8:3', mountPoint: '/media/my stick', source: '/dev/sdb1' }]);
  });

  it('on this machine, refuses the block device that holds a mounted file system (real /proc and /sys)', () => {
    const mounts = parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
    const dev = mounts.map((m) => m.source).find((src) => src.startsWith('/dev/') && statSync(src, { throwIfNoEntry: false })?.isBlockDevice());
    expect(dev, 'a mounted block device').toBeDefined();
    expect(() => checkTarget(dev as string, realSystem, image)).toThrow(/refusing to flash/);
  });
});
