import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { otaCommandsInProcess } from '../../ota/command.js';
import { loadOtaConfig } from '../../ota/config.js';
import { CommandRegistry } from '../../src/commands/command.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';
import type { BundleServer } from '../helpers/bundle-server.js';
import { Rig, fleetFixture, healthServer, type FleetFixture, type Pki } from '../helpers/ota.js';

let fx: FleetFixture;
let dir = '';
let pki: Pki;
let bundle = '';
let srv: BundleServer;

beforeAll(async () => {
  fx = await fleetFixture('outpost-otacmd-', { dropAfter: 600_000, drops: 1 });
  ({ dir, pki, bundle, srv } = fx);
}, 120_000);
afterAll(() => fx?.close());

/** The registry of a runtime, as the uplink sees it: handlers looked up by name. */
async function registry(rig: Rig): Promise<CommandRegistry> {
  const loaded = await loadOtaConfig(rig.configFile);
  const commands = new CommandRegistry();
  const config = { ota: loaded.ota, gateway: { dataDir: loaded.dataDir } } as unknown as Parameters<ReturnType<typeof otaCommandsInProcess>>[2]['config'];
  otaCommandsInProcess({ clock: systemClock })({ commands }, silentLogger(), { config, files: [rig.configFile] });
  return commands;
}

describe('fleet command ota.install', () => {
  it('installs from the URL, reports progress and the final state, then reboots into the trial', async () => {
    const health = await healthServer({ ok: true });
    onTestFinished(() => health.close());
    const rig = new Rig(join(dir, 'r1'), pki, 'uboot', 4 * 1024 * 1024, { download: { retryDelayMs: 10 }, markGood: { healthUrl: health.url, timeoutSec: 5, intervalSec: 1 } });
    const commands = await registry(rig);
    const h = commands.get('ota.install');
    const params = h.parse({ url: srv.url('v2.raucb'), sha256: createHash('sha256').update(readFileSync(bundle)).digest('hex').toUpperCase(), version: '2.0.0' });
    const updates: Array<{ percent?: number; state: string }> = [];
    const result = await h.run(params, (u) => updates.push(u), new AbortController().signal);
    expect(result).toEqual({ state: 'reboot-pending', version: '2.0.0', target: 'B', switchVerified: true, rebootScheduled: true });
    expect([...new Set(updates.map((u) => u.state))]).toEqual(['downloading', 'verifying', 'installing', 'reboot-pending']);
    expect(updates.at(-1)?.percent).toBe(100);
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A' });
    // The reply goes out first; the reboot follows a few seconds later.
    expect(rig.reboots()).toEqual([]);
    await waitFor(() => rig.reboots().length === 1, 10_000, 100);
    // After the reboot, ota.status reports how the update ended.
    rig.boot('B');
    expect((await (await rig.system()).bootCheck.markGood({ reboot: false })).outcome).toBe('committed');
    const status = (await commands.get('ota.status').run(commands.get('ota.status').parse({}), () => undefined, new AbortController().signal)) as Record<string, unknown>;
    expect(status).toMatchObject({ booted: 'B', primary: 'B', state: 'committed', bundleVersion: '2.0.0', committed: { bootname: 'B', version: '2.0.0' }, lastError: null });
  });

  it('refuses a bundle whose sha256 or version differs from the request, writing nothing', async () => {
    const rig = new Rig(join(dir, 'r2'), pki, 'grub', 4 * 1024 * 1024);
    const h = (await registry(rig)).get('ota.install');
    const sha = createHash('sha256').update(readFileSync(bundle)).digest('hex');
    await expect(h.run(h.parse({ url: srv.url('v2.raucb'), sha256: sha, version: '2.0.1' }), () => undefined, new AbortController().signal)).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_DIGEST' });
    await expect(h.run(h.parse({ url: srv.url('v2.raucb'), sha256: 'f'.repeat(64), version: '2.0.0' }), () => undefined, new AbortController().signal)).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_DIGEST' });
    expect(rig.grubList()).toMatchObject({ ORDER: 'A B', B_OK: '1' });
    expect(readFileSync(rig.slot('B')).every((b) => b === 0)).toBe(true);
  });

  it.each([
    [null, ''],
    [{ sha256: 'a'.repeat(64), version: '1' }, 'url'],
    [{ url: 'ftp://x/y', sha256: 'a'.repeat(64), version: '1' }, 'url'],
    [{ url: 'http://x/y', sha256: 'abc', version: '1' }, 'sha256'],
    [{ url: 'http://x/y', sha256: 'a'.repeat(64) }, 'version'],
    [{ url: 'http://x/y', sha256: 'a'.repeat(64), version: '1', force: true }, 'force'],
  ])('rejects params %j naming the field', async (p, field) => {
    const rig = new Rig(join(dir, `p${Math.random()}`), pki, 'grub');
    const h = (await registry(rig)).get('ota.install');
    let err: unknown;
    try {
      h.parse(p);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutpostError);
    expect(err).toMatchObject({ code: 'OUTPOST_E_COMMAND_PARAMS', details: { field } });
  });
});
