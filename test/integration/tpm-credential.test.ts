import { X509Certificate, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activateCredential } from '../../provisioning/identity/activation.js';
import { findEndorsementKey, readEkCertificates, spkiSha256, type EndorsementKey } from '../../provisioning/identity/ek.js';
import { createDeviceKey, ensureSrk, persistKey, readPersistent } from '../../provisioning/identity/keys.js';
import { TPM_HR, TPM_RH } from '../../provisioning/tpm/constants.js';
import { passwordAuth } from '../../provisioning/tpm/command.js';
import { Tpm2 } from '../../provisioning/tpm/commands.js';
import type { TpmClient } from '../../provisioning/tpm/client.js';
import { makeCredential } from '../../provisioning/tpm/credential.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { objectName, parsePublic, spkiDer } from '../../provisioning/tpm/structures.js';
import { EK_P256_TEMPLATE } from '../../provisioning/tpm/templates.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/** EK certificates and credential activation (software MakeCredential ↔ TPM ActivateCredential) on swtpm. */
describe('EK and credential activation against swtpm', () => {
  let tpm: Swtpm;
  let client: TpmClient;
  let keyName: Buffer;
  let otherName: Buffer;

  beforeAll(async () => {
    tpm = await startSwtpm();
    client = await openTpm(tpm.spec);
    await ensureSrk(client);
    keyName = await persistKey(client, 0x81000001, await createDeviceKey(client, 0x81000001), 0x81000002);
    otherName = await persistKey(client, 0x81000001, await createDeviceKey(client, 0x81000001), 0x81000003);
  });

  afterAll(async () => {
    await client?.close();
    await tpm?.stop();
  });

  async function persistentEk(handle: number): Promise<EndorsementKey> {
    const p = (await readPersistent(client, handle))!;
    return { handle, transient: false, public: p.public, raw: p.raw, name: p.name, spkiSha256: spkiSha256(spkiDer(p.public)) };
  }

  it('reads the EK certificates swtpm_setup wrote and finds the RSA EK they certify', async () => {
    const certs = await readEkCertificates(client);
    expect(certs.map((c) => c.slot.index)).toEqual([0x01c00002, 0x01c00016]);
    const ek = await findEndorsementKey(client, certs);
    expect(ek.handle).toBe(0x81010001);
    expect(ek.transient).toBe(false);
    const certSpki = new X509Certificate(ek.certificate!.der).publicKey.export({ type: 'spki', format: 'der' });
    expect(spkiSha256(certSpki)).toBe(ek.spkiSha256);
    // the certificate is byte-identical to what tpm2_nvread returns
    await client.close();
    const r = tpm.tools(['tpm2_nvread', '0x01c00002', '-C', 'o', '-o', join(tpm.dir, 'ek.der')]);
    client = await openTpm(tpm.spec);
    expect(r.status).toBe(0);
    expect(readFileSync(join(tpm.dir, 'ek.der')).subarray(0, ek.certificate!.der.length).equals(ek.certificate!.der)).toBe(true);
  });

  it('activates a credential made in software for the device key with the RSA EK (PolicySecret)', async () => {
    const ek = await persistentEk(0x81010001);
    const nonce = randomBytes(32);
    const challenge = makeCredential(ek.public, keyName, nonce);
    expect((await activateCredential(client, ek, 0x81000002, challenge)).equals(nonce)).toBe(true);
    expect(await client.handles(TPM_HR.POLICY_SESSION)).toEqual([]);
  });

  it('refuses a credential made for another key (TPM_RC_INTEGRITY)', async () => {
    const ek = await persistentEk(0x81010001);
    const challenge = makeCredential(ek.public, otherName, randomBytes(32));
    await expect(activateCredential(client, ek, 0x81000002, challenge)).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_INTEGRITY' });
    expect(await client.handles(TPM_HR.POLICY_SESSION)).toEqual([]);
  });

  it('activates with an ECC P-256 EK (TCG template L-2, ECDH seed) re-derived as a transient primary', async () => {
    const created = await client.run(Tpm2.createPrimary(TPM_RH.ENDORSEMENT, passwordAuth(), EK_P256_TEMPLATE));
    const ek: EndorsementKey = { handle: client.track(created.handle), transient: true, public: created.public, raw: created.raw, name: created.name, spkiSha256: '' };
    try {
      const nonce = randomBytes(16);
      expect((await activateCredential(client, ek, 0x81000002, makeCredential(ek.public, keyName, nonce))).equals(nonce)).toBe(true);
    } finally {
      await client.flush(created.handle);
    }
  });

  it('activates with the high-range ECC P-384 EK (SHA-384 name, userWithAuth)', async () => {
    const ek = await persistentEk(0x81010016);
    const nonce = randomBytes(48);
    expect((await activateCredential(client, ek, 0x81000002, makeCredential(ek.public, keyName, nonce))).equals(nonce)).toBe(true);
  });

  it('activates a credential made by tpm2_makecredential (cross-check of the wire format)', async () => {
    const ek = await persistentEk(0x81010001);
    const secret = randomBytes(20);
    await client.close();
    try {
      const pub = join(tpm.dir, 'ek.pub');
      expect(tpm.tools(['tpm2_readpublic', '-c', '0x81010001', '-o', pub]).status).toBe(0);
      writeFileSync(join(tpm.dir, 'secret.bin'), secret);
      requireOk(
        tpm.tools(['tpm2_makecredential', '-T', 'none', '-u', pub, '-s', join(tpm.dir, 'secret.bin'), '-n', keyName.toString('hex'), '-o', join(tpm.dir, 'cred.out')]),
      );
    } finally {
      client = await openTpm(tpm.spec);
    }
    // tpm2-tools file: magic u32, version u32, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET
    const file = readFileSync(join(tpm.dir, 'cred.out'));
    const idLen = file.readUInt16BE(8);
    const credentialBlob = file.subarray(10, 10 + idLen);
    const secLen = file.readUInt16BE(10 + idLen);
    const encryptedSecret = file.subarray(12 + idLen, 12 + idLen + secLen);
    expect((await activateCredential(client, ek, 0x81000002, { credentialBlob, encryptedSecret })).equals(secret)).toBe(true);
  });

  it('computes object Names exactly as the TPM does', async () => {
    const p = (await readPersistent(client, 0x81000002))!;
    expect(objectName(p.raw).equals(p.name)).toBe(true);
    expect(parsePublic(p.raw).attributes).toBe(0x00040472);
  });
});

function requireOk(r: { status: number | null; stderr: string }): void {
  if (r.status !== 0) throw new Error(r.stderr);
}
