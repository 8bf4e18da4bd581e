import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { rollbackReason } from '../../ota/report.js';
import { BootSim } from '../helpers/boot-sim.js';
import { OUTPOST, Rig, cli, makePki, outpostBundle, writeImage, type BootloaderKind, type Pki } from '../helpers/ota.js';
import { waitFor } from '../helpers/net.js';

/**
 * The lost slot switch of the end-to-end suite (issue: the second OTA never switched slots), at the
 * integration level: file-backed slots and boot environments, the real `outpost ota` processes running
 * concurrently as the units do on a gateway (mark-good waiting for health while a fleet install runs), and
 * the bootloader played by the real tools (grub-editenv, fw_setenv) through BootSim.
 */
let dir = '';
let pki: Pki;
let bundle = '';
let health: { url: string; requests: () => number; close: () => Promise<void> };
const healthy = { ok: false };

/** A /healthz stand-in that counts the questions it was asked. */
async function countingHealth(): Promise<typeof health> {
  let n = 0;
  const server: Server = createServer((_req, res) => {
    n++;
    const ok = healthy.ok;
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: ok ? 'ok' : 'unhealthy', checks: [{ name: 'runtime', ok, critical: true }] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/healthz`, requests: () => n, close: () => new Promise((r) => server.close(() => r())) };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-ota-conc-'));
  pki = makePki(join(dir, 'pki'));
  writeImage(join(dir, 'rootfs.img'), 1024 * 1024);
  bundle = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'v2.raucb') });
  health = await countingHealth();
}, 120_000);
afterAll(async () => {
  await health.close();
  rmSync(dir, { recursive: true, force: true });
});

function rig(kind: BootloaderKind): Rig {
  return new Rig(join(dir, `${kind}-${Math.random().toString(36).slice(2, 8)}`), pki, kind, 4 * 1024 * 1024, {
    markGood: { healthUrl: health.url, timeoutSec: 120, intervalSec: 1, committedBoots: 'health' },
  });
}

describe.each(['grub', 'uboot', 'tryboot'] as const)('a fleet install while mark-good waits for health (%s)', (kind) => {
  it('keeps the install: mark-good never writes back the record it read before the install, and the new slot is committed', async () => {
    const r = rig(kind);
    const sim = new BootSim(r);
    healthy.ok = false;
    // First boot of a new unit: mark-good starts, reads the (empty) update record, then waits for /healthz.
    const asked = health.requests();
    const markGood = cli(['ota', 'mark-good', '--config', r.configFile, '--no-reboot', '--json'], {}, 180_000);
    await waitFor(() => health.requests() > asked, 60_000, 50);
    // Meanwhile the fleet's install runs to the switch and its reboot request.
    const inst = await cli(['ota', 'install', bundle, '--reboot', '--config', r.configFile, '--json'], {}, 120_000);
    expect(inst.code, inst.stderr).toBe(0);
    expect(JSON.parse(inst.stdout)).toMatchObject({ state: 'reboot-pending', switched: true, target: 'B' });
    // Now the runtime becomes healthy and mark-good finishes.
    healthy.ok = true;
    const mg = await markGood;
    expect(mg.code, mg.stderr).toBe(0);
    expect(JSON.parse(mg.stdout)).toMatchObject({ outcome: 'marked-good', booted: 'A' });
    const sys = await r.system();
    const st = await sys.status();
    expect(st.update).toMatchObject({ state: 'reboot-pending', switched: true, target: 'B', committed: { bootname: 'A' } });
    expect(st.primary).toBe('B');
    // The reboot the install asked for starts the trial of B, and a healthy B is committed.
    expect(sim.powerOn()).toBe('B');
    const trial = await (await r.system()).bootCheck.markGood({ reboot: false });
    expect(trial.outcome).toBe('committed');
    expect((await (await r.system()).status()).update).toMatchObject({ state: 'committed', committed: { bootname: 'B' } });
  }, 240_000);
});

describe('a reboot that did not switch is reported precisely', () => {
  it.each(['grub', 'uboot'] as const)('%s: the switch lost before the reboot → OUTPOST_E_OTA_SWITCH_LOST, reason switch-lost', async (kind) => {
    const r = rig(kind);
    const sim = new BootSim(r);
    healthy.ok = true;
    expect((await (await r.system()).bootCheck.markGood({ reboot: false })).outcome).toBe('marked-good');
    const envFile = kind === 'grub' ? join(r.dir, 'grubenv') : join(r.dir, 'uboot.env');
    const before = readFileSync(envFile);
    const sys = await r.system();
    await sys.updater.install({ source: bundle, origin: 'test' }, { reboot: true });
    // The environment the bootloader reads is the one from before the install (the write never reached it).
    writeFileSync(envFile, before);
    expect(sim.powerOn()).toBe('A');
    const mg = await (await r.system()).bootCheck.markGood({ reboot: false });
    expect(mg).toMatchObject({ outcome: 'rolled-back', booted: 'A', code: 'OUTPOST_E_OTA_SWITCH_LOST' });
    const st = await (await r.system()).status();
    expect(st.update).toMatchObject({ state: 'rolled-back', lastError: { code: 'OUTPOST_E_OTA_SWITCH_LOST' } });
    expect(rollbackReason({ state: st.update.state, lastError: st.update.lastError })).toBe('switch-lost');
    expect(st.slots.find((s) => s.bootname === 'B')?.state).toBe('bad');
    expect(r.reboots()).toHaveLength(1); // the install's reboot only: no reboot loop
  }, 120_000);

  it.each(['grub', 'uboot'] as const)('%s: the bootloader tried the new slot and fell back → OUTPOST_E_OTA_TRIAL_FAILED, reason trial-failed', async (kind) => {
    const r = rig(kind);
    const sim = new BootSim(r);
    healthy.ok = true;
    expect((await (await r.system()).bootCheck.markGood({ reboot: false })).outcome).toBe('marked-good');
    await (await r.system()).updater.install({ source: bundle, origin: 'test' }, { reboot: true });
    // B does not come up (kernel panic before mark-good) as often as the bootloader tries it.
    let slot = sim.powerOn();
    for (let i = 0; i < 6 && slot === 'B'; i++) slot = sim.powerOn();
    expect(slot).toBe('A');
    const mg = await (await r.system()).bootCheck.markGood({ reboot: false });
    expect(mg).toMatchObject({ outcome: 'rolled-back', booted: 'A', code: 'OUTPOST_E_OTA_TRIAL_FAILED' });
    const st = await (await r.system()).status();
    expect(rollbackReason({ state: st.update.state, lastError: st.update.lastError })).toBe('trial-failed');
  }, 120_000);
});

describe('a switch that does not read back is refused cleanly', () => {
  it('cancels the update, keeps the booted slot primary and the target out of the boot order, and says so', async () => {
    const r = rig('grub');
    healthy.ok = true;
    expect((await (await r.system()).bootCheck.markGood({ reboot: false })).outcome).toBe('marked-good');
    const sys = await r.system();
    const setPrimary = sys.selector.setPrimary.bind(sys.selector);
    // The write happens, but the bootloader's view of the medium does not show it.
    sys.selector.setPrimary = async (b: string) => {
      await setPrimary(b);
      throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED', 'test: the read-back differs');
    };
    await expect(sys.updater.install({ source: bundle, origin: 'test' }, { reboot: true })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED' });
    const st = await (await r.system()).status();
    expect(st.update).toMatchObject({ state: 'idle', lastError: { code: 'OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED' } });
    expect(st.primary).toBe('A');
    expect(st.slots.find((s) => s.bootname === 'B')?.state).toBe('bad');
    expect(r.reboots()).toHaveLength(0);
  }, 120_000);
});

describe('concurrent writers of one boot environment', () => {
  it.each(['grub', 'uboot'] as const)('%s: two processes writing 20 variables each lose none of them', async (kind) => {
    const r = rig(kind);
    const script = join(r.dir, 'writer.mjs');
    const dist = join(OUTPOST, '..', '..');
    writeFileSync(
      script,
      `import { StateLock } from '${dist}/ota/flow/state-lock.js';
import { GrubEnv } from '${dist}/ota/boot/grub-env.js';
import { UbootEnv, readFwEnvConfig } from '${dist}/ota/boot/uboot-env.js';
const [kind, dir, who] = process.argv.slice(2);
const guard = new StateLock(dir + '/data/ota', { now: () => performance.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
const env = kind === 'grub' ? new GrubEnv(dir + '/grubenv', { guard }) : new UbootEnv(await readFwEnvConfig(dir + '/fw_env.config'), { guard });
for (let i = 0; i < 20; i++) await env.update({ [who + i]: '1' });
`,
    );
    const run = (who: string) =>
      new Promise<number | null>((resolve) => {
        const c = spawn(process.execPath, [script, kind, r.dir, who], { stdio: 'inherit' });
        c.once('exit', (code) => resolve(code));
      });
    expect(await Promise.all([run('P'), run('Q')])).toEqual([0, 0]);
    const vars = kind === 'grub' ? r.grubList() : r.fwPrintenv();
    for (const who of ['P', 'Q']) for (let i = 0; i < 20; i++) expect(vars[`${who}${i}`], `${who}${i}`).toBe('1');
  }, 120_000);
});
