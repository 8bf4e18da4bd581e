import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Image-level fixture tests of the boot files the emulator cannot reach: the Raspberry Pi firmware's tryboot
 * (autoboot.txt, and the initramfs choosing the root slot from the partition the firmware booted, read from a
 * fixture device tree), and the GRUB script's use of RAUC's variable convention.
 */
const IMAGE = path.join(import.meta.dirname, '..', '..', 'image');
const SLOT_SCRIPT = path.join(IMAGE, 'overlay/common/etc/initramfs-tools/scripts/local-top/outpost-slot');
const dir = mkdtempSync(path.join(tmpdir(), 'outpost-bootfiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runSlot(partition: number | undefined, cmdline: string): { param: string; slot: string; out: string } {
  const case_ = mkdtempSync(path.join(dir, 'c-'));
  const dt = path.join(case_, 'dt');
  mkdirSync(path.join(dt, 'chosen', 'bootloader'), { recursive: true });
  if (partition !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(partition);
    writeFileSync(path.join(dt, 'chosen', 'bootloader', 'partition'), b);
  }
  writeFileSync(path.join(case_, 'cmdline'), `${cmdline}\n`);
  writeFileSync(path.join(case_, 'param.conf'), '');
  const r = spawnSync('sh', [SLOT_SCRIPT], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'], OUTPOST_DT_ROOT: dt, OUTPOST_PARAM_CONF: path.join(case_, 'param.conf'), OUTPOST_RUN_DIR: path.join(case_, 'run'), OUTPOST_CMDLINE: path.join(case_, 'cmdline') },
  });
  expect(r.status, r.stderr).toBe(0);
  return { param: readFileSync(path.join(case_, 'param.conf'), 'utf8'), slot: readFileSync(path.join(case_, 'run', 'booted-slot'), 'utf8').trim(), out: r.stdout };
}

describe('Raspberry Pi tryboot layout', () => {
  it('autoboot.txt boots partition 2 (bootA) and tries partition 3 (bootB)', () => {
    const t = readFileSync(path.join(IMAGE, 'rpi/autoboot.txt'), 'utf8');
    expect(t).toBe('[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n');
    expect(Buffer.byteLength(t)).toBeLessThanOrEqual(512);
    const disk = readFileSync(path.join(IMAGE, 'scripts/disk-rpi-arm64.sh'), 'utf8');
    const names = [...disk.matchAll(/name=(\w+)$/gm)].map((m) => m[1]);
    expect(names).toEqual(['bootcfg', 'bootA', 'bootB', 'rootA', 'rootB', 'data']);
  });

  it('the initramfs roots slot A when the firmware booted partition 2, slot B for partition 3', () => {
    expect(runSlot(2, 'console=serial0 ro')).toMatchObject({ param: 'ROOT=/dev/disk/by-partlabel/rootA\n', slot: 'A' });
    expect(runSlot(3, 'console=serial0 ro')).toMatchObject({ param: 'ROOT=/dev/disk/by-partlabel/rootB\n', slot: 'B' });
  });

  it('keeps root= when the firmware booted another partition or there is no such property (QEMU, x86-64)', () => {
    const odd = runSlot(1, 'root=PARTLABEL=rootA rauc.slot=A');
    expect(odd.param).toBe('');
    expect(odd.out).toMatch(/not a slot boot partition/);
    expect(runSlot(undefined, 'root=PARTLABEL=rootB ro rauc.slot=B quiet')).toMatchObject({ param: '', slot: 'B' });
  });

  it('cmdline.txt names no slot, so one boot image serves both slots', () => {
    expect(readFileSync(path.join(IMAGE, 'rpi/cmdline.txt'), 'utf8')).not.toMatch(/root=|rauc\.slot/);
  });
});

describe('GRUB A/B script', () => {
  const cfg = readFileSync(path.join(IMAGE, 'grub/grub.cfg'), 'utf8');
  it('loads and saves exactly RAUC grub variables in the ESP grubenv', () => {
    expect(cfg).toMatch(/load_env --file "\$envfile" ORDER A_OK A_TRY B_OK B_TRY/);
    expect(cfg).toMatch(/save_env --file "\$envfile" A_TRY A_OK B_TRY B_OK ORDER/);
    expect(cfg).toMatch(/set envfile="\$prefix\/grubenv"/);
  });
  it('boots each slot from its own partition with root= and rauc.slot=', () => {
    expect(cfg).toMatch(/linux \(\$bootdisk,gpt2\)\/boot\/vmlinuz root=PARTLABEL=rootA rauc\.slot=A/);
    expect(cfg).toMatch(/linux \(\$bootdisk,gpt3\)\/boot\/vmlinuz root=PARTLABEL=rootB rauc\.slot=B/);
  });
  it('the disk starts with A good and B empty, written with grub-editenv', () => {
    const disk = readFileSync(path.join(IMAGE, 'scripts/disk-x86-64.sh'), 'utf8');
    expect(disk).toMatch(/grub-editenv "\$W\/grubenv" set ORDER="A B" A_OK=1 A_TRY=0 B_OK=0 B_TRY=0/);
    const env = path.join(dir, 'grubenv');
    expect(spawnSync('grub-editenv', [env, 'create']).status).toBe(0);
    expect(spawnSync('grub-editenv', [env, 'set', 'ORDER=A B', 'A_OK=1', 'A_TRY=0', 'B_OK=0', 'B_TRY=0']).status).toBe(0);
    expect(readFileSync(env).length).toBe(1024);
  });
});
