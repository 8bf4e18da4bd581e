import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TrybootSelector, parseAutoboot, readDtU32, renderAutoboot } from '../../ota/boot/tryboot.js';

/** Fixture files standing in for the FAT boot partition and /proc/device-tree/chosen/bootloader. */
describe('Raspberry Pi tryboot adapter (fixture files)', () => {
  let dir = '';
  let bootId = 'boot-1';
  const u32 = (n: number) => Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
  const firmwareBoots = (partition: number, tryboot: boolean) => {
    writeFileSync(join(dir, 'dt', 'partition'), u32(partition));
    writeFileSync(join(dir, 'dt', 'tryboot'), u32(tryboot ? 1 : 0));
    bootId = `boot-${Math.random()}`;
  };
  const autoboot = () => parseAutoboot(readFileSync(join(dir, 'autoboot.txt'), 'utf8'));
  const selector = () =>
    new TrybootSelector({ autoboot: join(dir, 'autoboot.txt'), deviceTree: join(dir, 'dt'), partitions: { A: 2, B: 3 }, stateFile: join(dir, 'tryboot.json'), bootId: async () => bootId });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-tryboot-'));
    mkdirSync(join(dir, 'dt'));
    writeFileSync(join(dir, 'autoboot.txt'), '# written by the image\n[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n');
    firmwareBoots(2, false);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the device-tree properties as big-endian u32', async () => {
    writeFileSync(join(dir, 'dt', 'x'), Buffer.from([0, 0, 1, 2]));
    expect(await readDtU32(join(dir, 'dt', 'x'))).toBe(258);
    writeFileSync(join(dir, 'dt', 'short'), Buffer.from([1]));
    await expect(readDtU32(join(dir, 'dt', 'short'))).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    await expect(readDtU32(join(dir, 'dt', 'missing'))).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    expect(await selector().getCurrent()).toBe('A');
  });

  it('parses and renders autoboot.txt within 512 bytes', () => {
    expect(parseAutoboot('[all]\ntryboot_a_b=1\nboot_partition=2 # A\n[tryboot]\nboot_partition=3\n')).toEqual({ all: 2, tryboot: 3, trybootAB: true });
    const t = renderAutoboot(3, 2);
    expect(t.length).toBeLessThanOrEqual(512);
    expect(parseAutoboot(t)).toEqual({ all: 3, tryboot: 2, trybootAB: true });
  });

  it('arms a one-shot trial, commits it when good, and swaps the sections', async () => {
    const sel = selector();
    await sel.setPrimary('B');
    expect(await sel.getPrimary()).toBe('B');
    expect(await sel.trialRebootArg()).toBe('0 tryboot');
    expect(autoboot()).toMatchObject({ all: 2, tryboot: 3 });
    firmwareBoots(3, true); // reboot "0 tryboot"
    expect(await sel.getCurrent()).toBe('B');
    expect(await sel.trialRebootArg()).toBeNull(); // the arm was consumed by that reboot
    await sel.setState('B', 'good');
    expect(autoboot()).toMatchObject({ all: 3, tryboot: 2 });
    firmwareBoots(3, false); // an ordinary reboot now stays on B
    expect(await sel.getPrimary()).toBe('B');
  });

  it('falls back by itself: a reset during the trial boots [all] again', async () => {
    const sel = selector();
    await sel.setPrimary('B');
    firmwareBoots(3, true);
    firmwareBoots(2, false); // watchdog reset: the firmware flag is gone
    expect(await sel.getCurrent()).toBe('A');
    expect(await sel.getPrimary()).toBe('A');
    expect(autoboot()).toMatchObject({ all: 2 });
    // good on a slot not booted by tryboot does not commit anything
    await sel.setState('B', 'good');
    expect(autoboot()).toMatchObject({ all: 2 });
  });

  it('marks bad in its own record, and moves [all] away from a bad primary', async () => {
    const sel = selector();
    await sel.setState('B', 'bad');
    expect(await sel.getState('B')).toBe('bad');
    expect(autoboot()).toMatchObject({ all: 2 });
    await sel.setState('B', 'good');
    await sel.setState('A', 'bad');
    expect(autoboot()).toMatchObject({ all: 3, tryboot: 2 });
    expect(await sel.getPrimary()).toBe('B');
  });

  it('refuses an autoboot.txt without tryboot_a_b or naming an unknown partition', async () => {
    writeFileSync(join(dir, 'autoboot.txt'), '[all]\nboot_partition=2\n');
    await expect(selector().getPrimary()).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    writeFileSync(join(dir, 'autoboot.txt'), '[all]\ntryboot_a_b=1\nboot_partition=9\n');
    await expect(selector().getPrimary()).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
  });
});
