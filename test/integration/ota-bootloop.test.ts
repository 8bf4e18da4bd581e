import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MarkGoodResult } from '../../ota/flow/boot-check.js';
import { BootSim } from '../helpers/boot-sim.js';
import { Rig, healthServer, makePki, outpostBundle, writeImage, type BootloaderKind, type Pki } from '../helpers/ota.js';

let dir = '';
let pki: Pki;
let bundle = '';
let health: Awaited<ReturnType<typeof healthServer>>;
const healthState = { ok: true };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-bootloop-'));
  pki = makePki(join(dir, 'pki'));
  writeImage(join(dir, 'rootfs.img'), 1024 * 1024);
  bundle = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'v2.raucb'), securityVersion: 5n });
  health = await healthServer(healthState);
}, 120_000);
afterAll(async () => {
  await health.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A gateway that reboots: the bootloader (BootSim, real tools) picks a slot, the slot's image is
 * healthy or not, and `mark-good` runs after the health checks as the systemd unit would.
 */
class Gateway {
  readonly sim: BootSim;
  readonly boots: Array<{ slot: 'A' | 'B'; outcome: MarkGoodResult['outcome'] | 'power-cut' }> = [];

  constructor(
    readonly rig: Rig,
    readonly healthy: Record<'A' | 'B', boolean>,
  ) {
    this.sim = new BootSim(rig);
  }

  /** One boot; with `powerCut` the power fails before mark-good runs. */
  async boot(powerCut = false): Promise<'A' | 'B'> {
    const slot = this.sim.powerOn();
    if (powerCut) {
      this.boots.push({ slot, outcome: 'power-cut' });
    } else {
      healthState.ok = this.healthy[slot];
      const r = await (await this.rig.system()).bootCheck.markGood({ reboot: true });
      this.boots.push({ slot, outcome: r.outcome });
    }
    await this.assertNeverBothBad();
    return slot;
  }

  /** Boots until mark-good stops asking for a reboot (bounded). */
  async settle(max = 8): Promise<void> {
    for (let i = 0; i < max; i++) {
      if (!this.sim.rebootRequested()) return;
      await this.boot();
    }
    throw new Error(`still rebooting after ${max} boots: ${JSON.stringify(this.boots)}`);
  }

  async assertNeverBothBad(): Promise<void> {
    const sys = await this.rig.system();
    const states = await Promise.all(['A', 'B'].map((s) => sys.selector.getState(s)));
    // The running slot may read as "tried" (GRUB TRY=1) until mark-good; the other must then be good.
    const booted = await sys.selector.getCurrent();
    const other = booted === 'A' ? 1 : 0;
    expect(states[other] === 'good' || states[1 - other] === 'good', `both slots bad: ${JSON.stringify(states)}`).toBe(true);
  }
}

async function updated(kind: BootloaderKind, healthyB: boolean, extra: Record<string, unknown> = {}): Promise<Gateway> {
  const rig = new Rig(join(dir, `${kind}-${Math.random().toString(36).slice(2, 8)}`), pki, kind, 4 * 1024 * 1024, {
    ...(kind === 'uboot' ? { bootloader: { type: 'uboot', fwEnvConfig: 'fw_env.config', primaryAttempts: 3 } } : {}),
    markGood: { healthUrl: health.url, timeoutSec: 1, intervalSec: 1 },
    securityVersion: { file: 'sv' },
    ...extra,
  });
  const gw = new Gateway(rig, { A: true, B: healthyB });
  await gw.boot(); // first boot on A: mark-good records A as the committed slot
  const sys = await rig.system();
  await sys.updater.install({ source: bundle, origin: 'test' }, { reboot: true });
  return gw;
}

const slotSha = (rig: Rig, s: 'A' | 'B') => createHash('sha256').update(readFileSync(rig.slot(s))).digest('hex');

describe.each(['uboot', 'grub', 'tryboot'] as const)('boot-loop harness: %s', (kind) => {
  it('commits a healthy update on its first trial boot and advances the security version', async () => {
    const gw = await updated(kind, true);
    expect(await gw.boot()).toBe('B');
    expect(gw.boots.at(-1)?.outcome).toBe('committed');
    const sys = await gw.rig.system();
    const st = await sys.status();
    expect(st.update).toMatchObject({ state: 'committed', committed: { bootname: 'B', version: '2.0.0' } });
    expect(st.securityVersion).toBe('5');
    expect(st.slots.map((s) => s.state)).toEqual(['good', 'good']);
  });

  it('rolls back after the configured failed trial boots of an unhealthy update', async () => {
    const gw = await updated(kind, false);
    const aBefore = slotSha(gw.rig, 'A');
    await gw.boot();
    await gw.settle();
    const trials = gw.boots.filter((b) => b.slot === 'B').length;
    expect(trials).toBe(kind === 'uboot' ? 3 : 1);
    expect(gw.boots.at(-1)).toEqual({ slot: 'A', outcome: 'rolled-back' });
    const sys = await gw.rig.system();
    const st = await sys.status();
    expect(st.update).toMatchObject({ state: 'rolled-back', committed: { bootname: 'A' }, lastError: { code: 'OUTPOST_E_OTA_TRIAL_FAILED' } });
    expect(st.slots.map((s) => s.state)).toEqual(['good', 'bad']);
    expect(st.securityVersion).toBe('0');
    expect(slotSha(gw.rig, 'A')).toBe(aBefore);
    // And it stays on A over further reboots.
    for (let i = 0; i < 3; i++) expect(await gw.boot()).toBe('A');
  });

  it('clean reboots and power cuts after the commit never drain into a fallback', async () => {
    const gw = await updated(kind, true);
    await gw.boot();
    expect(gw.boots.at(-1)?.outcome).toBe('committed');
    // 15 boots: clean reboots, power cuts after mark-good (same as clean for the counter), and
    // power cuts before mark-good, never more than attempts-1 in a row.
    const maxInRow = kind === 'uboot' ? 2 : 0;
    let inRow = 0;
    for (let i = 0; i < 15; i++) {
      const cutBefore = inRow < maxInRow && i % 3 === 1;
      inRow = cutBefore ? inRow + 1 : 0;
      expect(await gw.boot(cutBefore)).toBe('B');
    }
    const st = await (await gw.rig.system()).status();
    expect(st.update.state).toBe('committed');
    if (kind === 'uboot') expect(gw.rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A', BOOT_B_LEFT: '3' });
    if (kind === 'grub') expect(gw.rig.grubList()).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });
  });

  it('power cuts before mark-good past the counter fall back once, and the committed slot is re-armed', async () => {
    const gw = await updated(kind, true);
    await gw.boot();
    const cuts = kind === 'uboot' ? 3 : 1;
    for (let i = 0; i < cuts; i++) await gw.boot(true);
    if (kind === 'tryboot') {
      // The firmware's [all] is the committed slot: power cuts never leave it.
      expect(await gw.boot()).toBe('B');
      return;
    }
    expect(await gw.boot()).toBe('A');
    expect(gw.boots.at(-1)?.outcome).toBe('late-fallback-recovery');
    await gw.settle();
    expect(gw.boots.at(-1)).toEqual({ slot: 'B', outcome: 'marked-good' });
    const st = await (await gw.rig.system()).status();
    expect(st.update).toMatchObject({ state: 'committed', committed: { bootname: 'B' }, lateRecoveries: 0 });
  });
});

describe('boot-loop harness: U-Boot with more attempts', () => {
  it('rolls back after exactly primaryAttempts failed boots (5)', async () => {
    const gw = await updated('uboot', false, { bootloader: { type: 'uboot', fwEnvConfig: 'fw_env.config', primaryAttempts: 5 }, maxResumes: 10 });
    await gw.boot();
    await gw.settle(10);
    expect(gw.boots.filter((b) => b.slot === 'B')).toHaveLength(5);
    expect(gw.boots.at(-1)).toEqual({ slot: 'A', outcome: 'rolled-back' });
  });

  it('the loop breaker gives up on a trial that keeps booting but never becomes healthy', async () => {
    const gw = await updated('uboot', false, { bootloader: { type: 'uboot', fwEnvConfig: 'fw_env.config', primaryAttempts: 9 }, maxResumes: 2 });
    await gw.boot();
    await gw.settle(10);
    expect(gw.boots.filter((b) => b.slot === 'B')).toHaveLength(3);
    expect(gw.boots.at(-1)).toEqual({ slot: 'A', outcome: 'marked-good' });
    const st = await (await gw.rig.system()).status();
    expect(st.update).toMatchObject({ state: 'rolled-back', lastError: { code: 'OUTPOST_E_OTA_LOOP' } });
    expect(st.slots.map((s) => s.state)).toEqual(['good', 'bad']);
  });
});
