import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrubEnv, parseGrubEnv } from '../../ota/boot/grub-env.js';
import { GrubSelector } from '../../ota/boot/grub.js';
import { UbootEnv, readFwEnvConfig } from '../../ota/boot/uboot-env.js';
import { UbootSelector } from '../../ota/boot/uboot.js';

let dir = '';
beforeAll(() => {
  for (const tool of ['fw_printenv', 'fw_setenv', 'mkenvimage', 'grub-editenv']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) throw new Error(`${tool} missing (scripts/apt-packages.txt)`);
  }
  dir = mkdtempSync(join(tmpdir(), 'outpost-env-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A redundant U-Boot environment (2 × 16 KiB in one file) made by mkenvimage, as on a board's eMMC. */
function ubootRig(name: string, vars = 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\nbootdelay=2\n') {
  const envFile = join(dir, `${name}.env`);
  const conf = join(dir, `${name}.config`);
  writeFileSync(conf, `${envFile} 0x0000 0x4000\n${envFile} 0x4000 0x4000\n`);
  writeFileSync(join(dir, `${name}.txt`), vars);
  execFileSync('mkenvimage', ['-r', '-s', '0x4000', '-o', join(dir, `${name}.bin`), join(dir, `${name}.txt`)]);
  const one = readFileSync(join(dir, `${name}.bin`));
  writeFileSync(envFile, Buffer.concat([one, one]));
  const printenv = (): Record<string, string> => {
    const out = execFileSync('fw_printenv', ['-c', conf], { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  };
  const flags = () => {
    const b = readFileSync(envFile);
    return [b[4], b[0x4000 + 4]];
  };
  return { envFile, conf, printenv, flags };
}

describe('U-Boot environment (libubootenv fw_printenv/fw_setenv as peers)', () => {
  it('writes every verb as one redundant transaction that fw_printenv reads', async () => {
    const r = ubootRig('u1');
    const env = new UbootEnv(await readFwEnvConfig(r.conf));
    const sel = new UbootSelector(env, { slots: ['A', 'B'], attempts: 3, primaryAttempts: 5, current: async () => 'A' });
    expect(r.flags()).toEqual([1, 1]);
    await sel.setPrimary('B');
    // One verb, one write: exactly one copy changed, with the flag incremented once.
    expect(r.printenv()).toMatchObject({ BOOT_ORDER: 'B A', BOOT_B_LEFT: '5', bootdelay: '2' });
    expect(r.flags()).toEqual([1, 2]);
    await sel.setState('A', 'bad');
    expect(r.printenv()).toMatchObject({ BOOT_ORDER: 'B', BOOT_A_LEFT: '0' });
    expect(r.flags()).toEqual([3, 2]);
    expect(await sel.getState('A')).toBe('bad');
    expect(await sel.getPrimary()).toBe('B');
    await sel.setState('A', 'good');
    expect(r.printenv()).toMatchObject({ BOOT_ORDER: 'B A', BOOT_A_LEFT: '3' });
    // No change, no write (no needless wear of the environment).
    await sel.setState('A', 'good');
    expect(r.flags()).toEqual([3, 4]);
  });

  it('writes BOOT_x_LEFT in hex as RAUC does (12 attempts → c)', async () => {
    const r = ubootRig('hex');
    const sel = new UbootSelector(new UbootEnv(await readFwEnvConfig(r.conf)), { slots: ['A', 'B'], attempts: 12, primaryAttempts: 12, current: async () => 'A' });
    await sel.setState('B', 'good');
    expect(r.printenv()['BOOT_B_LEFT']).toBe('c');
    execFileSync('fw_setenv', ['-c', r.conf, 'BOOT_B_LEFT', '1f']);
    expect(await sel.getState('B')).toBe('good');
    execFileSync('fw_setenv', ['-c', r.conf, 'BOOT_B_LEFT', '0']);
    expect(await sel.getState('B')).toBe('bad');
  });

  it('reads what fw_setenv writes, including after many flag increments (wrap at 255)', async () => {
    const r = ubootRig('u2');
    const env = new UbootEnv(await readFwEnvConfig(r.conf));
    for (let i = 0; i < 260; i++) {
      if (i % 2 === 0) execFileSync('fw_setenv', ['-c', r.conf, 'counter', String(i)]);
      else await env.update({ counter: String(i) });
    }
    expect(r.printenv()['counter']).toBe('259');
    expect((await env.read()).vars.get('counter')).toBe('259');
  });

  it('a torn write of the newest copy leaves the older copy in use (fw_printenv agrees)', async () => {
    const r = ubootRig('torn');
    const env = new UbootEnv(await readFwEnvConfig(r.conf));
    const sel = new UbootSelector(env, { slots: ['A', 'B'], attempts: 3, primaryAttempts: 3, current: async () => 'A' });
    await sel.setPrimary('B'); // copy 1 newest: B A
    const before = r.printenv();
    const current = (await env.read()).current;
    await sel.setState('A', 'bad'); // goes to the other copy
    const newest = (await env.read()).current;
    expect(newest).not.toBe(current);
    // Power cut in the middle of that write: half of the copy is garbage.
    const b = readFileSync(r.envFile);
    b.fill(0x5a, newest * 0x4000 + 4, newest * 0x4000 + 0x2000);
    writeFileSync(r.envFile, b);
    expect(r.printenv()).toEqual(before);
    const snap = await env.read();
    expect(snap.current).toBe(current);
    expect(Object.fromEntries(snap.vars)).toEqual(before);
    // The next transaction repairs by writing over the damaged copy.
    await sel.setState('A', 'bad');
    expect(r.printenv()).toMatchObject({ BOOT_ORDER: 'B', BOOT_A_LEFT: '0' });
  });

  it('rejects an fw_env.config it cannot honour', async () => {
    writeFileSync(join(dir, 'mtd.config'), '/dev/mtd1 0x0 0x10000 0x10000\n');
    await expect(readFwEnvConfig(join(dir, 'mtd.config'))).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    writeFileSync(join(dir, 'bad.config'), 'just-a-path\n');
    await expect(readFwEnvConfig(join(dir, 'bad.config'))).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
  });
});

describe('GRUB environment (grub-editenv as the peer)', () => {
  function grubRig(name: string) {
    const file = join(dir, `${name}.grubenv`);
    execFileSync('grub-editenv', [file, 'create']);
    execFileSync('grub-editenv', [file, 'set', 'ORDER=A B', 'A_OK=1', 'A_TRY=0', 'B_OK=1', 'B_TRY=0', 'extra_cmdline=quiet splash']);
    const list = (): Record<string, string> =>
      Object.fromEntries(execFileSync('grub-editenv', [file, 'list'], { encoding: 'utf8' }).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    return { file, list };
  }

  it("uses RAUC's variables exactly as `rauc status mark-*` leaves them", async () => {
    const g = grubRig('g1');
    const sel = new GrubSelector(new GrubEnv(g.file), { slots: ['A', 'B'], current: async () => 'A' });
    await sel.setPrimary('B');
    expect(g.list()).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0', extra_cmdline: 'quiet splash' });
    await sel.setState('A', 'bad');
    expect(g.list()).toMatchObject({ A_OK: '0', A_TRY: '0', ORDER: 'B A' });
    expect(await sel.getState('A')).toBe('bad');
    // GRUB's script sets B_TRY=1 when it boots B; until mark-good the slot reads as not good.
    execFileSync('grub-editenv', [g.file, 'set', 'B_TRY=1']);
    expect(await sel.getState('B')).toBe('bad');
    await sel.setState('B', 'good');
    expect(g.list()).toMatchObject({ B_OK: '1', B_TRY: '0' });
    expect(await sel.getPrimary()).toBe('B');
  });

  it('keeps exactly 1024 bytes and escapes like grub-editenv', async () => {
    const g = grubRig('g2');
    const env = new GrubEnv(g.file);
    await env.update({ path: 'C:\\boot\\x', note: 'a b' });
    expect(readFileSync(g.file).length).toBe(1024);
    expect(g.list()).toMatchObject({ path: 'C:\\boot\\x', note: 'a b' });
    execFileSync('grub-editenv', [g.file, 'set', 'other=x\\y']);
    expect((await env.read()).get('other')).toBe('x\\y');
    expect(parseGrubEnv(readFileSync(g.file)).get('path')).toBe('C:\\boot\\x');
    await expect(env.update({ big: 'x'.repeat(1100) })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV' });
    expect(g.list()['path']).toBe('C:\\boot\\x');
  });
});
