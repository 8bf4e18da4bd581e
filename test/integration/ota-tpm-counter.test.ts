import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { loadOtaConfig } from '../../ota/config.js';
import { createOta } from '../../ota/system.js';
import { TpmSecurityVersionCounter } from '../../provisioning/identity/counter.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { otaWiring } from '../../services/ota-wiring.js';
import { healthServer, makePki, outpostBundle, Rig, writeImage, type Pki } from '../helpers/ota.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/** The anti-rollback floor in a TPM NV counter (swtpm), through the wiring services/ uses. */
describe('security version in the TPM NV counter', () => {
  let dir = '';
  let pki: Pki;
  let tpm: Swtpm;
  let start = 0n;
  let health: Awaited<ReturnType<typeof healthServer>>;

  const tpmValue = async () => {
    const client = await openTpm(tpm.spec);
    try {
      return await new TpmSecurityVersionCounter(client).read();
    } finally {
      await client.close();
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'outpost-ota-tpm-'));
    pki = makePki(join(dir, 'pki'));
    tpm = await startSwtpm({ ekCert: false });
    health = await healthServer({ ok: true });
    // What factory provisioning leaves: the counter defined and started, its start value in identity.json.
    const client = await openTpm(tpm.spec);
    try {
      const c = new TpmSecurityVersionCounter(client);
      await c.advanceTo(1n);
      await c.advanceTo((await c.read()) + 4n); // a TPM that had counters before: the start is not 1
      start = await c.read();
    } finally {
      await client.close();
    }
  }, 120_000);
  afterAll(async () => {
    await health?.close();
    await tpm?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bundles below the counter and advances it only at commit', async () => {
    const rig = new Rig(join(dir, 'rig'), pki, 'uboot', 4 * 1024 * 1024, {
      securityVersion: { store: 'tpm', tpm: tpm.spec },
      markGood: { healthUrl: health.url, timeoutSec: 5, intervalSec: 1 },
    });
    mkdirSync(join(rig.dataDir, 'identity'), { recursive: true });
    writeFileSync(join(rig.dataDir, 'identity', 'identity.json'), JSON.stringify({ version: 1, serial: 'GW-0001', keyName: '000b00', counter: { index: '0x01000100', start: start.toString() } }));
    const loaded = await loadOtaConfig(rig.configFile);
    const system = () => createOta(loaded.ota, { configDir: loaded.configDir, gatewayDataDir: loaded.dataDir }, { logger: pino({ level: 'silent' }), clock: systemClock, fetch: globalThis.fetch, wiring: otaWiring() });
    writeImage(join(dir, 'rootfs.img'), 1024 * 1024);
    const v3 = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'sv3.raucb'), securityVersion: 3n, version: '3.0.0' });
    const v2 = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'sv2.raucb'), securityVersion: 2n, version: '3.1.0' });

    let sys = await system();
    await sys.bootCheck.markGood({ reboot: false });
    expect((await sys.status()).securityVersion).toBe('0');
    await sys.updater.install({ source: v3, origin: 'test' });
    expect(await tpmValue()).toBe(start); // not on install
    rig.boot('B');
    sys = await system();
    expect((await sys.bootCheck.markGood({ reboot: false })).outcome).toBe('committed');
    expect(await tpmValue()).toBe(start + 3n);
    expect((await sys.status()).securityVersion).toBe('3');
    await expect(sys.updater.install({ source: v2, origin: 'test' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_DOWNGRADE', message: expect.stringContaining('below the anti-rollback counter 3') });
  });

  it('says clearly when the unit was never provisioned with a counter', async () => {
    const rig = new Rig(join(dir, 'noid'), pki, 'grub', 4 * 1024 * 1024, { securityVersion: { store: 'tpm', tpm: tpm.spec } });
    const loaded = await loadOtaConfig(rig.configFile);
    await expect(createOta(loaded.ota, { configDir: loaded.configDir, gatewayDataDir: loaded.dataDir }, { logger: pino({ level: 'silent' }), clock: systemClock, fetch: globalThis.fetch, wiring: otaWiring() })).rejects.toMatchObject({
      code: 'OUTPOST_E_OTA_CONFIG',
    });
  });
});
