import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnrollmentAuthority, type Enroller } from '../../provisioning/factory/authority.js';
import { EkTrust } from '../../provisioning/factory/ek-trust.js';
import { Ledger } from '../../provisioning/factory/ledger.js';
import { systemClock } from '../../hal/clock.js';
import { createDeviceKey, persistKey, readPersistent } from '../../provisioning/identity/keys.js';
import { Provisioner } from '../../provisioning/identity/provisioner.js';
import { IdentityStore } from '../../provisioning/identity/store.js';
import { TPM_HR } from '../../provisioning/tpm/constants.js';
import type { TpmClient } from '../../provisioning/tpm/client.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { spkiDer } from '../../provisioning/tpm/structures.js';
import { certificateExtension, OID } from '../../provisioning/x509/x509.js';
import { testFactory } from '../helpers/factory.js';
import { makeLocalCa, startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/** The factory flow end to end against fresh swtpm instances with a real factory CA and ledger. */
describe('factory provisioning against swtpm', () => {
  const base = mkdtempSync(join(tmpdir(), 'outpost-prov-'));
  const localCa = makeLocalCa(join(base, 'vendor'));
  const started: Swtpm[] = [];
  const clients: TpmClient[] = [];
  let factory: Awaited<ReturnType<typeof testFactory>>;

  async function unit(options: Parameters<typeof startSwtpm>[0] = {}): Promise<{ tpm: Swtpm; client: TpmClient; store: IdentityStore }> {
    const tpm = await startSwtpm({ localCa, ...options });
    started.push(tpm);
    const client = await openTpm(tpm.spec);
    clients.push(client);
    return { tpm, client, store: new IdentityStore(join(tpm.dir, 'data', 'identity')) };
  }

  beforeAll(async () => {
    const first = await unit();
    factory = await testFactory({ vendorRoots: [first.tpm.ekRoots] });
    await first.client.close();
  });

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const t of started) await t.stop();
  });

  it('provisions a fresh unit: chain to the factory root, key in the TPM, ledger record; a re-run changes nothing', async () => {
    const { tpm, client, store } = await unit();
    const result = await new Provisioner(client, store, factory.authority).provision('SN-0001');
    expect(result.status).toBe('provisioned');
    expect(result.keyCreated).toBe(true);

    const leaf = new X509Certificate(readFileSync(store.path('certificate')));
    const chain = readFileSync(store.path('chain'), 'utf8');
    expect(leaf.verify(factory.ca.issuingCert.publicKey)).toBe(true);
    expect(factory.ca.issuingCert.verify(factory.ca.rootCert.publicKey)).toBe(true);
    expect(chain.split('BEGIN CERTIFICATE').length - 1).toBe(3);
    expect(leaf.subject).toContain('CN=SN-0001');
    expect(leaf.subjectAltName).toContain('urn:outpost:gw:SN-0001');
    const key = (await readPersistent(client, 0x81000002))!;
    expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(spkiDer(key.public))).toBe(true);
    expect(certificateExtension(leaf.raw, OID.outpostEkHash)?.toString('hex')).toContain(result.record.ekSpkiSha256);
    expect(result.record).toMatchObject({ serial: 'SN-0001', keyHandle: '0x81000002', srkHandle: '0x81000001', ekMethod: 'certificate', keyName: key.name.toString('hex') });
    expect(result.record.counter?.index).toBe('0x01000100');
    expect(await client.handles(TPM_HR.TRANSIENT)).toEqual([]);
    expect(await client.handles(TPM_HR.POLICY_SESSION)).toEqual([]);

    const ledger = await factory.ledger.records();
    expect(ledger.filter((r) => r.serial === 'SN-0001')).toHaveLength(1);
    expect(ledger.find((r) => r.serial === 'SN-0001')).toMatchObject({ ekSpkiSha256: result.record.ekSpkiSha256, certSha256: result.record.certSha256, station: 'test' });

    const again = await new Provisioner(client, store, factory.authority).provision('SN-0001');
    expect(again.status).toBe('already-provisioned');
    expect((await factory.ledger.records()).filter((r) => r.serial === 'SN-0001')).toHaveLength(1);

    // tpm2-tools sees the persisted key with the recorded Name
    await client.close();
    expect(tpm.tools(['tpm2_readpublic', '-c', '0x81000002']).stdout).toContain(`name: ${result.record.keyName}`);
  });

  it('refuses a unit whose EK certificate does not chain to the configured vendor roots', async () => {
    const { client, store } = await unit();
    const otherVendor = await startSwtpm(); // its own local CA: a different "vendor"
    started.push(otherVendor);
    const authority = new EnrollmentAuthority({ ca: factory.ca, trust: await EkTrust.load({ vendorRoots: [otherVendor.ekRoots] }), ledger: factory.ledger, clock: systemClock });
    const before = (await factory.ledger.records()).length;
    await expect(new Provisioner(client, store, authority).provision('SN-0002')).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_EK_CHAIN' });
    expect((await factory.ledger.records()).length).toBe(before);
    expect(existsSync(store.path('record'))).toBe(false);
  });

  it('refuses a TPM without an EK certificate unless its EK is on the allow-list', async () => {
    const { tpm, client, store } = await unit({ ekCert: false });
    await expect(new Provisioner(client, store, factory.authority).provision('SN-0003')).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_EK_CERT_MISSING' });
    // the operator allow-lists this EK (hash printed in the refusal details)
    const ekHash = await new Provisioner(client, store, factory.authority).provision('SN-0003').catch((e: { details: { ekSpkiSha256: string } }) => e.details.ekSpkiSha256);
    const list = join(tpm.dir, 'allow.txt');
    writeFileSync(list, `# line 7\n${ekHash}\n`);
    const authority = new EnrollmentAuthority({ ca: factory.ca, trust: await EkTrust.load({ vendorRoots: [started[0]!.ekRoots], allowList: list }), ledger: factory.ledger, clock: systemClock });
    const r = await new Provisioner(client, store, authority).provision('SN-0003');
    expect(r.record.ekMethod).toBe('allow-list');
    expect(r.record.ekSpkiSha256).toBe(ekHash);
  });

  it('fails credential activation when the CA is asked to certify a key that is not in this TPM', async () => {
    const { client, store } = await unit();
    // a second key in the same TPM, under the SRK: the unit lies about which key it wants certified
    await new Provisioner(client, store, { challenge: () => Promise.reject(new Error('stop')), complete: () => Promise.reject(new Error('stop')) }).provision('SN-0004').catch(() => undefined);
    const other = await createDeviceKey(client, 0x81000001);
    await persistKey(client, 0x81000001, other, 0x81000005);
    const otherPublic = (await readPersistent(client, 0x81000005))!.raw;
    const lying: Enroller = {
      challenge: (req) => factory.authority.challenge({ ...req, deviceKeyPublic: otherPublic }),
      complete: (a) => factory.authority.complete(a),
    };
    const before = (await factory.ledger.records()).length;
    await expect(new Provisioner(client, store, lying).provision('SN-0004')).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_INTEGRITY' });
    expect((await factory.ledger.records()).length).toBe(before);
    expect(await client.handles(TPM_HR.POLICY_SESSION)).toEqual([]);
  });

  it('refuses a serial already recorded with another TPM, and a TPM already recorded under another serial', async () => {
    const { client, store } = await unit();
    await expect(new Provisioner(client, store, factory.authority).provision('SN-0001')).rejects.toMatchObject({ code: 'OUTPOST_E_FACTORY_DUPLICATE' });
    await new Provisioner(client, store, factory.authority).provision('SN-0005');
    const store2 = new IdentityStore(join(started.at(-1)!.dir, 'data2'));
    await expect(new Provisioner(client, store2, factory.authority, { keyHandle: 0x81000012 }).provision('SN-0006')).rejects.toMatchObject({ code: 'OUTPOST_E_FACTORY_DUPLICATE' });
  });

  it('refuses a TPM whose SRK handle holds a foreign storage key, and works with another SRK handle', async () => {
    const { client, store } = await unit({ createSpk: true }); // swtpm_setup's RSA SRK at 0x81000001
    await expect(new Provisioner(client, store, factory.authority).provision('SN-0007')).rejects.toMatchObject({ code: 'OUTPOST_E_IDENTITY_HANDLE_TAKEN' });
    expect((await readPersistent(client, 0x81000001))!.public.type).toBe(0x0001); // untouched
    const r = await new Provisioner(client, store, factory.authority, { srkHandle: 0x81000010, keyHandle: 0x81000011 }).provision('SN-0007');
    expect(r.record).toMatchObject({ srkHandle: '0x81000010', keyHandle: '0x81000011' });
    expect((await store.readKey())!.parent).toBe(0x81000010);
  });

  it('keeps a ledger whose torn last line (crash mid-append) is ignored, then cut off by the next append', async () => {
    const l = new Ledger(join(base, 'torn.jsonl'));
    writeFileSync(l.path, '{"serial":"A"}\n{"serial":"B"');
    expect((await l.records()).map((r) => r.serial)).toEqual(['A']);
    await l.append({ serial: 'C' } as never);
    expect((await l.records()).map((r) => r.serial)).toEqual(['A', 'C']);
    writeFileSync(l.path, '{"serial":"A"}\nnot json\n{"serial":"B"}\n');
    await expect(l.records()).rejects.toMatchObject({ code: 'OUTPOST_E_FACTORY_LEDGER' });
  });
});
