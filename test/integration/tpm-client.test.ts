import { createHash, verify as cryptoVerify, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TpmSecurityVersionCounter } from '../../provisioning/identity/counter.js';
import { openSecurityVersionCounter } from '../../provisioning/identity/counter-open.js';
import { ensureSrk, createDeviceKey, persistKey, readPersistent } from '../../provisioning/identity/keys.js';
import { sealToPcrs, unsealWithPcrs } from '../../provisioning/identity/sealed.js';
import { TPM_ALG, TPM_HR, TPM_RH } from '../../provisioning/tpm/constants.js';
import { passwordAuth } from '../../provisioning/tpm/command.js';
import { Tpm2 } from '../../provisioning/tpm/commands.js';
import type { TpmClient } from '../../provisioning/tpm/client.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { marshalPublic, publicKeyObject } from '../../provisioning/tpm/structures.js';
import { EK_RSA2048_TEMPLATE } from '../../provisioning/tpm/templates.js';
import { ecdsaDer } from '../../provisioning/x509/x509.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/** The TPM client against swtpm, cross-checked with tpm2-tools on the same TPM. */
describe('TPM client against swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;

  /** tpm2-tools need the socket: close our client, run them, reopen. swtpm serves one client at a time. */
  async function withTools<T>(fn: () => T | Promise<T>): Promise<T> {
    await client.close();
    try {
      return await fn();
    } finally {
      client = await openTpm(tpm.spec);
    }
  }

  function tool(args: string[]): string {
    const r = tpm.tools(args);
    if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }

  beforeAll(async () => {
    tpm = await startSwtpm();
    client = await openTpm(tpm.spec);
  });

  afterAll(async () => {
    await client?.close();
    await tpm?.stop();
  });

  it('reads random bytes, properties and persistent handles', async () => {
    const r = await client.run(Tpm2.getRandom(16));
    expect(r.length).toBe(16);
    const { properties } = await client.run(Tpm2.getCapabilityProperties(0x100, 0x30));
    expect(properties.get(0x105)).toBe(0x49424d00); // "IBM\0": swtpm's manufacturer
    expect(await client.handles(TPM_HR.PERSISTENT)).toContain(0x81010001);
  });

  it('re-derives the RSA EK from the TCG template exactly as tpm2_createek does', async () => {
    const created = await client.run(Tpm2.createPrimary(TPM_RH.ENDORSEMENT, passwordAuth(), EK_RSA2048_TEMPLATE));
    await client.flush(created.handle);
    const persisted = await client.run(Tpm2.readPublic(0x81010001));
    expect(created.name.toString('hex')).toBe(persisted.name.toString('hex'));
    const pubFile = join(tpm.dir, 'ek-tools.pub');
    await withTools(() => tool(['tpm2_createek', '-c', join(tpm.dir, 'ek.ctx'), '-G', 'rsa', '-u', pubFile]));
    // tpm2-tools writes a TPM2B_PUBLIC: u16 size + TPMT_PUBLIC
    expect(readFileSync(pubFile).subarray(2).toString('hex')).toBe(created.raw.toString('hex'));
    expect(await client.handles(TPM_HR.TRANSIENT)).toEqual([]);
  });

  it('creates the SRK and a device key; tpm2-tools sees the same names and verifies the same signatures', async () => {
    const srk = await ensureSrk(client, 0x81000001);
    expect(srk.created).toBe(true);
    expect((await ensureSrk(client, 0x81000001)).created).toBe(false);
    const blob = await createDeviceKey(client, 0x81000001);
    const name = await persistKey(client, 0x81000001, blob, 0x81000002);
    const out = await withTools(() => tool(['tpm2_readpublic', '-c', '0x81000002']));
    expect(out).toContain(`name: ${name.toString('hex')}`);
    expect(out).toContain('fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign');
    // our client signs; Node verifies with the public area
    const msg = Buffer.from('outpost');
    const sig = await client.run(Tpm2.sign(0x81000002, passwordAuth(), createHash('sha256').update(msg).digest()));
    if (sig.sigAlg !== TPM_ALG.ECDSA) throw new Error('expected ECDSA');
    const key = (await readPersistent(client, 0x81000002))!;
    expect(cryptoVerify('sha256', msg, publicKeyObject(key.public), ecdsaDer(sig.r, sig.s))).toBe(true);
    // tpm2_sign signs; Node verifies with the key our client read
    writeFileSync(join(tpm.dir, 'msg.txt'), msg);
    await withTools(() => tool(['tpm2_sign', '-c', '0x81000002', '-g', 'sha256', '-s', 'ecdsa', '-f', 'plain', '-o', join(tpm.dir, 'msg.sig'), join(tpm.dir, 'msg.txt')]));
    expect(cryptoVerify('sha256', msg, publicKeyObject(key.public), readFileSync(join(tpm.dir, 'msg.sig')))).toBe(true);
    expect(marshalPublic(key.public).equals(key.raw)).toBe(true);
  });

  it('refuses a persistent handle that holds another key, without touching it', async () => {
    // 0x81000002 holds the device key (a signing key), not an SRK
    await expect(ensureSrk(client, 0x81000002)).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_HANDLE_TAKEN' });
    expect(await readPersistent(client, 0x81000002)).toBeDefined();
  });

  it('advances the anti-rollback counter monotonically; tpm2_nvread agrees', async () => {
    const counter = new TpmSecurityVersionCounter(client, { index: 0x01000100, maxStep: 8n });
    expect(await counter.read()).toBe(0n);
    await counter.advanceTo(3n);
    expect(await counter.read()).toBe(3n);
    await counter.advanceTo(2n); // never backwards
    expect(await counter.read()).toBe(3n);
    await expect(counter.advanceTo(100n)).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_COUNTER' });
    const raw = await withTools(() => {
      tool(['tpm2_nvread', '0x01000100', '-C', 'o', '-o', join(tpm.dir, 'ctr.bin')]);
      return readFileSync(join(tpm.dir, 'ctr.bin'));
    });
    expect(raw.readBigUInt64BE(0)).toBe(3n);
    // undefine and redefine: the TPM never lets the value go back
    await client.run(Tpm2.nvUndefineSpace(TPM_RH.OWNER, 0x01000100, passwordAuth()));
    const again = new TpmSecurityVersionCounter(client, { index: 0x01000100 });
    expect(await again.read()).toBe(0n);
    await again.advanceTo(1n);
    expect(await again.read()).toBeGreaterThanOrEqual(3n);
  });

  it('opens the counter by TPM address for the OTA updater (openSecurityVersionCounter)', async () => {
    const value = await withTools(async () => {
      const { counter, close } = await openSecurityVersionCounter(tpm.spec, { index: 0x01000100 });
      try {
        const before = await counter.read();
        await counter.advanceTo(before + 1n);
        return [before, await counter.read()];
      } finally {
        await close();
      }
    });
    expect(value[1]).toBe(value[0]! + 1n);
  });

  it('refuses an NV index that is not a counter', async () => {
    await withTools(() => tool(['tpm2_nvdefine', '0x01000200', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|authread|authwrite']));
    const counter = new TpmSecurityVersionCounter(client, { index: 0x01000200 });
    await expect(counter.advanceTo(1n)).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_COUNTER' });
  });

  it('seals a secret to PCR 23 and refuses to unseal after the PCR changes', async () => {
    const secret = randomBytes(32);
    const blob = await sealToPcrs(client, 0x81000001, secret, [23]);
    expect((await unsealWithPcrs(client, 0x81000001, blob)).equals(secret)).toBe(true);
    await client.run(Tpm2.pcrExtend(23, passwordAuth(), [{ hash: TPM_ALG.SHA256, digest: randomBytes(32) }]));
    await expect(unsealWithPcrs(client, 0x81000001, blob)).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_POLICY_FAIL' });
    await expect(sealToPcrs(client, 0x81000001, randomBytes(129), [23])).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_SEAL' });
    expect(await client.handles(TPM_HR.TRANSIENT)).toEqual([]);
    expect(await client.handles(TPM_HR.POLICY_SESSION)).toEqual([]);
  });

  it('decodes response codes into named errors with the rc in details', async () => {
    await expect(client.run(Tpm2.readPublic(0x81000999))).rejects.toMatchObject({
      code: 'OUTPOST_E_TPM_HANDLE',
      details: { command: 'ReadPublic', rc: '0x18b', rcName: 'TPM_RC_HANDLE', handle: 1 },
    });
    // a wrong password on a noDA key: BAD_AUTH (not AUTH_FAIL) on session 1, and no lockout counting
    await expect(client.run(Tpm2.sign(0x81000002, passwordAuth(Buffer.from('wrong')), Buffer.alloc(32)))).rejects.toMatchObject({
      code: 'OUTPOST_E_TPM_AUTH_FAIL',
      details: { rc: '0x9a2', rcName: 'TPM_RC_BAD_AUTH', session: 1 },
    });
    const { properties } = await client.run(Tpm2.getCapabilityProperties(0x20e, 1));
    expect(properties.get(0x20e)).toBe(0);
  });

  it('flushes transient objects leaked by an earlier client when it opens (no resource manager)', async () => {
    const leaked = await client.run(Tpm2.createPrimary(TPM_RH.OWNER, passwordAuth(), EK_RSA2048_TEMPLATE));
    client.forget(leaked.handle);
    await client.close(); // does not know about the handle: it leaks, as after a crash
    client = await openTpm(tpm.spec);
    expect(await client.handles(TPM_HR.TRANSIENT)).toEqual([]);
  });
});
