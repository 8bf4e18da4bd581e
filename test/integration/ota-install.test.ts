import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OtaProgress } from '../../ota/flow/engine.js';
import { bundleServer } from '../helpers/bundle-server.js';
import { Rig, cli, makePki, outpostBundle, writeImage, type Pki } from '../helpers/ota.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const fileSha = (f: string) => sha(readFileSync(f));

let dir = '';
let pki: Pki;
let image: Buffer;
let good = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-install-'));
  pki = makePki(join(dir, 'pki'));
  image = writeImage(join(dir, 'rootfs.img'), 3 * 1024 * 1024 + 4096 * 3 + 17);
  good = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'good.raucb'), securityVersion: 3n });
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const rig = (bl: 'uboot' | 'grub' = 'uboot', extra: Record<string, unknown> = {}) => new Rig(join(dir, `rig${++n}`), pki, bl, 8 * 1024 * 1024, { download: { retryDelayMs: 10, retries: 5 }, ...extra });

describe('install into the inactive slot', () => {
  it('writes, reads back and switches, reporting progress; the booted slot is untouched', async () => {
    const r = rig();
    const aBefore = fileSha(r.slot('A'));
    const sys = await r.system();
    const progress: OtaProgress[] = [];
    const rec = await sys.updater.install({ source: good, origin: 'test' }, { onProgress: (p) => progress.push(p) });
    expect(rec).toMatchObject({ state: 'reboot-pending', target: 'B', booted: 'A', switched: true });
    expect(readFileSync(r.slot('B')).subarray(0, image.length).equals(image)).toBe(true);
    expect(fileSha(r.slot('A'))).toBe(aBefore);
    expect(r.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A', BOOT_B_LEFT: '3' });
    const states = [...new Set(progress.map((p) => p.state))];
    expect(states).toEqual(['verifying', 'installing', 'reboot-pending']);
    const pcts = progress.map((p) => p.percent ?? 0);
    expect(pcts.every((p, i) => i === 0 || p >= (pcts[i - 1] as number))).toBe(true);
    expect(progress.at(-1)?.percent).toBe(100);
    expect(progress.some((p) => p.detail?.['phase'] === 'verify')).toBe(true);
  });

  it('downloads over HTTP, resuming with Range after dropped connections', async () => {
    const srv = await bundleServer({ 'b.raucb': good }, { dropAfter: 700_000, drops: 3 });
    try {
      const r = rig();
      const sys = await r.system();
      const rec = await sys.updater.install({ source: srv.url('b.raucb'), sha256: fileSha(good), version: '2.0.0', origin: 'test' });
      expect(rec.state).toBe('reboot-pending');
      expect(srv.requests.length).toBeGreaterThanOrEqual(4);
      expect(srv.requests[0]?.range).toBeNull();
      expect(srv.requests.slice(1).every((q) => /^bytes=[1-9]\d*-$/.test(q.range ?? ''))).toBe(true);
      expect(readFileSync(r.slot('B')).subarray(0, image.length).equals(image)).toBe(true);
    } finally {
      await srv.close();
    }
  });

  it('resumes a download interrupted by a crash from the partial file', async () => {
    const srv = await bundleServer({ 'b.raucb': good });
    try {
      const r = rig();
      const sys = await r.system();
      // What a process killed mid-download leaves behind: the state, the part file and its validator.
      await sys.updater.install({ source: srv.url('missing.raucb'), origin: 'test' }).catch(() => undefined);
      const url = srv.url('b.raucb');
      const name = createHash('sha256').update(url).digest('hex').slice(0, 16);
      const part = join(r.dataDir, 'ota', 'downloads', `${name}.raucb.part`);
      copyFileSync(good, part);
      writeFileSync(part, readFileSync(good).subarray(0, 1_000_000));
      writeFileSync(`${part}.json`, JSON.stringify({ url, validator: null }));
      srv.requests.length = 0;
      const rec = await sys.updater.install({ source: url, sha256: fileSha(good), origin: 'test' });
      expect(rec.state).toBe('reboot-pending');
      expect(srv.requests[0]?.range).toBe('bytes=1000000-');
    } finally {
      await srv.close();
    }
  });

  describe('rejections write nothing: the slot bytes and the boot environment stay as they were', () => {
    const cases: Array<[string, () => Promise<string>, string, Record<string, unknown>?]> = [
      [
        'a tampered verity payload',
        async () => {
          const b = readFileSync(good);
          b[500_000] = (b[500_000] ?? 0) ^ 1;
          writeFileSync(join(dir, 'tampered.raucb'), b);
          return join(dir, 'tampered.raucb');
        },
        'OUTPOST_E_OTA_BUNDLE_PAYLOAD',
      ],
      ['an untrusted signer', () => outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'untrusted.raucb'), signer: 'untrusted' }), 'OUTPOST_E_OTA_BUNDLE_SIGNER'],
      ['the wrong compatible', () => outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'compat.raucb'), compatible: 'Another Board' }), 'OUTPOST_E_OTA_INCOMPATIBLE'],
      ['a version below ota.minVersion', async () => good, 'OUTPOST_E_OTA_DOWNGRADE', { minVersion: '2.1.0' }],
      ['a security version below the counter', async () => good, 'OUTPOST_E_OTA_DOWNGRADE', { securityVersion: { file: 'sv' } }],
      [
        'an image larger than the slot',
        async () => {
          writeImage(join(dir, 'big.img'), 9 * 1024 * 1024);
          return outpostBundle(pki, { image: join(dir, 'big.img'), output: join(dir, 'big.raucb') });
        },
        'OUTPOST_E_OTA_SLOT_TOO_SMALL',
      ],
      ['a truncated file', async () => (writeFileSync(join(dir, 'short.raucb'), readFileSync(good).subarray(0, 2_000_000)), join(dir, 'short.raucb')), 'OUTPOST_E_OTA_BUNDLE_FORMAT'],
    ];
    it.each(cases)('%s', async (_name, make, code, extra) => {
      const r = rig('uboot', extra ?? {});
      if (extra?.['securityVersion']) writeFileSync(join(r.dir, 'sv'), '4\n');
      writeFileSync(r.slot('B'), Buffer.alloc(r.slotSize, 0xee));
      const before = { a: fileSha(r.slot('A')), b: fileSha(r.slot('B')), env: readFileSync(join(r.dir, 'uboot.env')) };
      const sys = await r.system();
      const file = await make();
      await expect(sys.updater.install({ source: file, origin: 'test' })).rejects.toMatchObject({ code });
      expect(fileSha(r.slot('A'))).toBe(before.a);
      expect(fileSha(r.slot('B'))).toBe(before.b);
      expect(readFileSync(join(r.dir, 'uboot.env')).equals(before.env)).toBe(true);
      const st = await sys.status();
      expect(st.update).toMatchObject({ state: 'idle', lastError: { code } });
      expect(st.slots.map((s) => s.state)).toEqual(['good', 'good']);
    });

    it('a bundle whose file does not have the requested sha256', async () => {
      const r = rig();
      const sys = await r.system();
      await expect(sys.updater.install({ source: good, sha256: '0'.repeat(64), origin: 'test' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_DIGEST' });
      expect(r.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'A B' });
    });
  });

  it('never writes the booted slot, even when the other slot is the same device under another name', async () => {
    const r = rig();
    rmSync(r.slot('B'));
    symlinkSync(r.slot('A'), r.slot('B'));
    const aBefore = fileSha(r.slot('A'));
    const sys = await r.system();
    await expect(sys.updater.install({ source: good, origin: 'test' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_SLOT' });
    expect(fileSha(r.slot('A'))).toBe(aBefore);
    expect(r.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'A B', BOOT_A_LEFT: '3' });
  });

  it('waits while an application holds the update lock, then resumes', async () => {
    const r = rig();
    const sys = await r.system();
    await sys.lock.hold('batch-job', process.pid, 'nightly export');
    const bBefore = fileSha(r.slot('B'));
    await expect(sys.updater.install({ source: good, origin: 'test' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_DEFERRED' });
    const st = await sys.status();
    expect(st.update).toMatchObject({ state: 'installing', deferred: expect.stringContaining('batch-job') });
    expect(fileSha(r.slot('B'))).toBe(bBefore);
    expect(r.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'A B' });
    // A lock whose process is gone does not count.
    writeFileSync(join(r.dir, 'locks', 'dead.lock'), JSON.stringify({ pid: 2 ** 22 + 12345 }));
    await sys.lock.release('batch-job');
    const rec = await sys.updater.resume();
    expect(rec.state).toBe('reboot-pending');
    expect(existsSync(join(r.dir, 'locks', 'dead.lock'))).toBe(false);
  });

  it('`outpost ota lock` holds the update lock while a command runs and passes on its exit status', async () => {
    const r = rig();
    const file = join(r.dir, 'locks', 'export.lock');
    const res = await cli(['ota', 'lock', '--name', 'export', '--reason', 'nightly export', '-c', r.configFile, '--', 'sh', '-c', `cat ${file}; exit 3`]);
    expect(res.code, res.stderr).toBe(3);
    expect(JSON.parse(res.stdout)).toMatchObject({ reason: 'nightly export', pid: expect.any(Number) });
    expect(existsSync(file)).toBe(false);
    const usage = await cli(['ota', 'lock', '--name', 'x', '-c', r.configFile]);
    expect(usage.code).toBe(2);
  });

  it('runs state hooks: exit 75 defers, another failure fails the update with its code', async () => {
    const flag = join(dir, 'hook-flag');
    const hook = join(dir, 'hook.sh');
    writeFileSync(hook, `#!/bin/sh\necho "$OUTPOST_OTA_STATE $OUTPOST_OTA_HOOK $OUTPOST_OTA_VERSION" >> ${dir}/hook.log\n[ -f ${flag} ] && exit $(cat ${flag})\nexit 0\n`, { mode: 0o755 });
    const r = rig('uboot', { hooks: { installing: { enter: [hook] }, verifying: { leave: [hook] } } });
    const sys = await r.system();
    writeFileSync(flag, '75');
    await expect(sys.updater.install({ source: good, origin: 'test' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_DEFERRED' });
    expect((await sys.status()).update.state).toBe('verifying');
    writeFileSync(flag, '0');
    expect((await sys.updater.resume()).state).toBe('reboot-pending');
    expect(readFileSync(join(dir, 'hook.log'), 'utf8')).toContain('installing enter 2.0.0');
    const r2 = rig('uboot', { hooks: { installing: { enter: [hook] } } });
    writeFileSync(flag, '3');
    const sys2 = await r2.system();
    await expect(sys2.updater.install({ source: good, origin: 'test' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_HOOK' });
    expect((await sys2.status()).update).toMatchObject({ state: 'idle', lastError: { code: 'OUTPOST_E_OTA_HOOK' } });
    rmSync(flag);
  });

  it('`outpost ota install` shows progress, `status` shows slots and versions (GRUB)', async () => {
    const r = rig('grub');
    const res = await cli(['ota', 'install', good, '-c', r.configFile]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/installing write/);
    expect(res.stderr).toMatch(/100% reboot-pending/);
    expect(res.stdout).toContain('installed 2.0.0 into slot B');
    expect(r.grubList()).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });
    const st = await cli(['ota', 'status', '-c', r.configFile]);
    expect(st.stdout).toMatch(/B\s+good\s+2\.0\.0\s+yes/);
    expect(st.stdout).toContain('update:      reboot-pending (bundle 2.0.0 → slot B)');
    const busy = await cli(['ota', 'install', good, '-c', r.configFile]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toContain('OUTPOST_E_OTA_BUSY');
    const bad = await cli(['ota', 'install', join(dir, 'nope.raucb'), '-c', join(dir, 'no-config.yaml')]);
    expect(bad.code).toBe(2);
    expect((await cli(['ota', 'mark', 'bad', 'other', '-c', r.configFile])).code).toBe(0);
    const last = await cli(['ota', 'mark', 'bad', 'booted', '-c', r.configFile]);
    expect(last.stderr).toContain('nothing would boot');
    expect(r.grubList()).toMatchObject({ A_OK: '1', B_OK: '0' });
  });
});
