import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Provisioner, PROVISION_STEPS, tpmInfo } from '../../provisioning/identity/provisioner.js';
import { IdentityStore } from '../../provisioning/identity/store.js';
import { TPM_ALG, TPM_HR, TPMA_OBJECT } from '../../provisioning/tpm/constants.js';
import { passwordAuth } from '../../provisioning/tpm/command.js';
import { Tpm2 } from '../../provisioning/tpm/commands.js';
import type { TpmClient } from '../../provisioning/tpm/client.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { DEVICE_KEY_TEMPLATE } from '../../provisioning/tpm/templates.js';
import { testFactory } from '../helpers/factory.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/** Crashes mid-provisioning, power cuts without TPM2_Shutdown, dictionary-attack lockout. */
describe('provisioning reliability on swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;
  const base = mkdtempSync(join(tmpdir(), 'outpost-rel-'));

  async function powerCut(): Promise<void> {
    await client.close(); // no Shutdown: the connection just goes away
    await tpm.control.powerCycle();
    client = await openTpm(tpm.spec);
  }

  async function lockoutCounter(): Promise<{ counter: number; inLockout: boolean }> {
    const info = await tpmInfo(client);
    return { counter: info.lockoutCounter, inLockout: Boolean(info.permanent & (1 << 9)) };
  }

  beforeAll(async () => {
    tpm = await startSwtpm();
    client = await openTpm(tpm.spec);
  });

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await tpm?.stop();
  });

  // every step after which a crash can leave state behind; a crash "at" a step happens before it runs
  const crashPoints = PROVISION_STEPS.filter((s) => s !== 'check-tpm');

  it.each(crashPoints.map((s, i) => [s, i] as const))('a crash before "%s" and a power cut, then a re-run, finish with one key and one ledger record', async (step, i) => {
    const factory = await testFactory({ vendorRoots: [tpm.ekRoots] });
    const store = new IdentityStore(join(base, `unit-${i}`));
    const keyHandle = 0x81000020 + i;
    const opts = { keyHandle, counterIndex: 0x01000300 };
    await expect(
      new Provisioner(client, store, factory.authority, { ...opts, onStep: (s) => { if (s === step) throw new Error(`crash at ${s}`); } }).provision(`CR-${i}`),
    ).rejects.toThrow(`crash at ${step}`);
    await powerCut();
    const keyFileBefore = await store.readKey();
    const r = await new Provisioner(client, store, factory.authority, opts).provision(`CR-${i}`);
    expect(r.status).toBe('provisioned');
    // the key created before the crash (if any) is the one certified: no second key
    if (keyFileBefore) {
      expect(r.keyCreated).toBe(false);
      expect(Buffer.compare((await store.readKey())!.publicArea, keyFileBefore.publicArea)).toBe(0);
    }
    const ours = (await client.handles(TPM_HR.PERSISTENT)).filter((h) => h >= 0x81000020 && h < 0x81000040);
    expect(ours).toEqual(Array.from({ length: i + 1 }, (_, k) => 0x81000020 + k));
    const ledger = await factory.ledger.records();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]!.deviceKeyName).toBe(r.record.keyName);
    expect(await client.handles(TPM_HR.TRANSIENT)).toEqual([]);
  });

  it('survives 10 power cuts without TPM2_Shutdown: the noDA device key keeps signing and nothing counts toward lockout', async () => {
    const factory = await testFactory({ vendorRoots: [tpm.ekRoots] });
    const store = new IdentityStore(join(base, 'power'));
    const r = await new Provisioner(client, store, factory.authority, { keyHandle: 0x81000040 }).provision('PWR-1');
    for (let i = 0; i < 10; i++) {
      await powerCut();
      const sig = await client.run(Tpm2.sign(0x81000040, passwordAuth(), createHash('sha256').update(`boot ${i}`).digest()));
      expect(sig.sigAlg).toBe(TPM_ALG.ECDSA);
      expect((await new Provisioner(client, store, factory.authority, { keyHandle: 0x81000040 }).provision('PWR-1')).status).toBe('already-provisioned');
      expect(await lockoutCounter()).toEqual({ counter: 0, inLockout: false });
    }
    expect(r.record.keyName).toBe((await store.readRecord())!.keyName);
  });

  /** A DA-protected key with a password: the kind of object the noDA rule exists to avoid. */
  async function daKey(): Promise<number> {
    const template = { ...DEVICE_KEY_TEMPLATE, attributes: DEVICE_KEY_TEMPLATE.attributes & ~TPMA_OBJECT.noDA };
    const k = await client.run(Tpm2.create(0x81000001, passwordAuth(), template, { userAuth: Buffer.from('pw') }));
    const loaded = await client.run(Tpm2.load(0x81000001, passwordAuth(), k.outPrivate, k.raw));
    await client.run(Tpm2.evictControl(0x40000001, passwordAuth(), loaded.handle, 0x81000050)).catch(() => undefined);
    await client.flush(loaded.handle);
    return 0x81000050;
  }

  it('with a clean stop (Shutdown(STATE)) even a DA-protected key survives power cycles', async () => {
    const h = await daKey();
    for (let i = 0; i < 5; i++) {
      await client.run(Tpm2.sign(h, passwordAuth(Buffer.from('pw')), Buffer.alloc(32, i)));
      await client.close({ shutdown: true });
      await tpm.control.powerCycle();
      client = await openTpm(tpm.spec);
    }
    expect(await lockoutCounter()).toEqual({ counter: 0, inLockout: false });
  });

  it('without Shutdown a DA-protected key drives the TPM into lockout, and provisioning then refuses the unit until it is cleared', async () => {
    const h = 0x81000050;
    for (let i = 0; i < 6 && !(await lockoutCounter()).inLockout; i++) {
      await client.run(Tpm2.sign(h, passwordAuth(Buffer.from('pw')), Buffer.alloc(32, i))).catch(() => undefined);
      await powerCut();
    }
    expect((await lockoutCounter()).inLockout).toBe(true);
    await expect(client.run(Tpm2.sign(h, passwordAuth(Buffer.from('pw')), Buffer.alloc(32)))).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_LOCKOUT' });
    const factory = await testFactory({ vendorRoots: [tpm.ekRoots] });
    const store = new IdentityStore(join(base, 'locked'));
    await expect(new Provisioner(client, store, factory.authority, { keyHandle: 0x81000041 }).provision('LCK-1')).rejects.toMatchObject({
      code: 'OUTPOST_E_IDENTITY_TPM_STATE',
    });
    await client.run(Tpm2.dictionaryAttackLockReset(passwordAuth()));
    expect(await lockoutCounter()).toEqual({ counter: 0, inLockout: false });
  });

  it('refuses a TPM whose owner password was set by someone else', async () => {
    await client.close();
    expect(tpm.tools(['tpm2_changeauth', '-c', 'owner', 'someone-else']).status).toBe(0);
    client = await openTpm(tpm.spec);
    const factory = await testFactory({ vendorRoots: [tpm.ekRoots] });
    await expect(new Provisioner(client, new IdentityStore(join(base, 'owned')), factory.authority, { keyHandle: 0x81000042 }).provision('OWN-1')).rejects.toMatchObject({
      code: 'OUTPOST_E_IDENTITY_TPM_STATE',
      details: { ownerAuthSet: true },
    });
  });
});
