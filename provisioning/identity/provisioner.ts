import { X509Certificate, createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { pino } from 'pino';
import { systemClock, type Clock } from '../../hal/clock.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { checkSerial, type Enroller } from '../factory/authority.js';
import { TPM_PT, TPMA_PERMANENT, hex32 } from '../tpm/constants.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { TPM_RC, rcOf } from '../tpm/rc.js';
import { parsePublic, spkiDer } from '../tpm/structures.js';
import { pemDecodeAll } from '../x509/der.js';
import { activateCredential } from './activation.js';
import { TpmSecurityVersionCounter } from './counter.js';
import { tpmSignedCsr } from './csr.js';
import { findEndorsementKey, readEkCertificates, type EndorsementKey } from './ek.js';
import { DEFAULT_DEVICE_KEY_HANDLE, DEFAULT_SRK_HANDLE, createDeviceKey, ensureSrk, isDeviceKey, persistKey, readPersistent, type PersistentObject } from './keys.js';
import type { IdentityRecord, IdentityStore } from './store.js';

export const PROVISION_STEPS = ['check-tpm', 'read-ek', 'srk', 'device-key', 'persist-key', 'challenge', 'activate', 'csr', 'certify', 'counter', 'store'] as const;
export type ProvisionStep = (typeof PROVISION_STEPS)[number];

export interface ProvisionerOptions {
  readonly srkHandle?: number;
  readonly keyHandle?: number;
  /** NV index of the anti-rollback counter to define at the factory; null to skip. */
  readonly counterIndex?: number | null;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Called as each step starts (progress bars; tests inject crashes here). */
  readonly onStep?: (step: ProvisionStep) => void | Promise<void>;
}

export interface ProvisionResult {
  readonly status: 'provisioned' | 'already-provisioned';
  readonly record: IdentityRecord;
  /** True when the device key was created in this run (false on re-runs after a crash). */
  readonly keyCreated: boolean;
}

export interface TpmInfo {
  readonly manufacturer: string;
  readonly firmware: string;
  readonly permanent: number;
  readonly lockoutCounter: number;
}

export async function tpmInfo(client: TpmClient): Promise<TpmInfo> {
  const fixed = (await client.run(Tpm2.getCapabilityProperties(TPM_PT.MANUFACTURER, 8))).properties;
  const variable = (await client.run(Tpm2.getCapabilityProperties(TPM_PT.PERMANENT, 16))).properties;
  const m = fixed.get(TPM_PT.MANUFACTURER) ?? 0;
  const ascii = Buffer.from([m >>> 24, (m >>> 16) & 0xff, (m >>> 8) & 0xff, m & 0xff]).toString('latin1').replace(/[^\x20-\x7e]/g, '').trim();
  const fw1 = fixed.get(TPM_PT.FIRMWARE_VERSION_1) ?? 0;
  const fw2 = fixed.get(TPM_PT.FIRMWARE_VERSION_2) ?? 0;
  return {
    manufacturer: ascii || hex32(m),
    firmware: `${fw1 >>> 16}.${fw1 & 0xffff}.${fw2 >>> 16}.${fw2 & 0xffff}`,
    permanent: variable.get(TPM_PT.PERMANENT) ?? 0,
    lockoutCounter: variable.get(TPM_PT.LOCKOUT_COUNTER) ?? 0,
  };
}

/**
 * The whole factory flow for one unit, safe to re-run after a crash at any step:
 * it reads before it creates, reuses what a previous run left (SRK, key file, persisted key,
 * issued certificate), never overwrites a handle or file that is not provably ours, and writes
 * the identity record last. Transient objects (a re-derived EK) are flushed on every path.
 */
export class Provisioner {
  private readonly srkHandle: number;
  private readonly keyHandle: number;
  private readonly logger: Logger;
  private readonly clock: Clock;

  constructor(
    private readonly client: TpmClient,
    private readonly store: IdentityStore,
    private readonly enroller: Enroller,
    private readonly options: ProvisionerOptions = {},
  ) {
    this.srkHandle = options.srkHandle ?? DEFAULT_SRK_HANDLE;
    this.keyHandle = options.keyHandle ?? DEFAULT_DEVICE_KEY_HANDLE;
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'provisioner' });
    this.clock = options.clock ?? systemClock;
  }

  private async step(s: ProvisionStep, serial: string): Promise<void> {
    this.logger.debug({ serial, step: s }, 'provisioning step');
    await this.options.onStep?.(s);
  }

  async provision(serial: string): Promise<ProvisionResult> {
    checkSerial(serial);
    await this.step('check-tpm', serial);
    const info = await tpmInfo(this.client);
    if (info.permanent & TPMA_PERMANENT.inLockout) {
      throw new OutpostError('OUTPOST_E_IDENTITY_TPM_STATE', 'the TPM is in dictionary-attack lockout; clear it (tpm2_dictionarylockout --clear-lockout) or wait, then re-run', {
        details: { serial, lockoutCounter: info.lockoutCounter },
      });
    }
    if (info.permanent & (TPMA_PERMANENT.ownerAuthSet | TPMA_PERMANENT.endorsementAuthSet)) {
      throw new OutpostError('OUTPOST_E_IDENTITY_TPM_STATE', 'the TPM has an owner or endorsement password set: it was taken by someone else; clear the TPM before provisioning', {
        details: { serial, ownerAuthSet: Boolean(info.permanent & TPMA_PERMANENT.ownerAuthSet), endorsementAuthSet: Boolean(info.permanent & TPMA_PERMANENT.endorsementAuthSet) },
      });
    }
    const done = await this.alreadyProvisioned(serial);
    if (done) return { status: 'already-provisioned', record: done, keyCreated: false };

    await this.step('read-ek', serial);
    const certs = await readEkCertificates(this.client);
    const ek = await findEndorsementKey(this.client, certs);
    try {
      return await this.withEk(serial, ek, info);
    } finally {
      if (ek.transient) await this.client.flush(ek.handle).catch(() => undefined);
    }
  }

  private async withEk(serial: string, ek: EndorsementKey, info: TpmInfo): Promise<ProvisionResult> {
    await this.step('srk', serial);
    await ensureSrk(this.client, this.srkHandle);

    await this.step('device-key', serial);
    const { key, created } = await this.ensureDeviceKey(serial);

    await this.step('challenge', serial);
    const challenge = await this.enroller.challenge({ serial, ekPublic: ek.raw, deviceKeyPublic: key.raw, ...(ek.certificate ? { ekCertificate: ek.certificate.der } : {}) });

    await this.step('activate', serial);
    const secret = await activateCredential(this.client, ek, this.keyHandle, challenge);

    await this.step('csr', serial);
    const csr = await tpmSignedCsr(this.client, this.keyHandle, key.public, serial);

    await this.step('certify', serial);
    const issued = await this.enroller.complete({ id: challenge.id, secret, csr });

    await this.step('counter', serial);
    let counter: IdentityRecord['counter'];
    if (this.options.counterIndex !== null) {
      const c = new TpmSecurityVersionCounter(this.client, this.options.counterIndex === undefined ? {} : { index: this.options.counterIndex });
      if ((await c.read()) === 0n) await c.advanceTo(1n);
      counter = { index: hex32(c.index), start: (await c.read()).toString() };
    }

    await this.step('store', serial);
    const cert = new X509Certificate(issued.certificatePem);
    const record: IdentityRecord = {
      version: 1,
      serial,
      keyHandle: hex32(this.keyHandle),
      srkHandle: hex32(this.srkHandle),
      keyName: key.name.toString('hex'),
      subject: cert.subject.replace(/\n/g, ', '),
      notAfter: new Date(cert.validTo).toISOString(),
      certSha256: issued.record.certSha256,
      certSerial: issued.record.certSerial,
      ekSpkiSha256: issued.record.ekSpkiSha256,
      ekMethod: issued.record.ekMethod,
      ...(counter ? { counter } : {}),
      tpm: { manufacturer: info.manufacturer, firmware: info.firmware },
      provisionedAt: new Date(this.clock.now()).toISOString(),
    };
    await this.store.writeIdentity({ certificatePem: issued.certificatePem, chainPem: issued.chainPem, rootPem: issued.rootPem, record });
    this.logger.info({ serial, keyHandle: record.keyHandle, reused: issued.reused, keyCreated: created }, 'unit provisioned');
    return { status: 'provisioned', record, keyCreated: created };
  }

  /** The recorded identity when it is complete and matches the key in this TPM; undefined when work remains. */
  private async alreadyProvisioned(serial: string): Promise<IdentityRecord | undefined> {
    const record = await this.store.readRecord();
    if (record === undefined) return undefined;
    if (record.serial !== serial) {
      throw new OutpostError('OUTPOST_E_FACTORY_DUPLICATE', `this unit is already provisioned as serial ${record.serial}`, { details: { serial, recorded: record.serial } });
    }
    const key = await readPersistent(this.client, Number.parseInt(record.keyHandle, 16));
    const pem = await this.store.readCertificatePem();
    const der = pem === undefined ? undefined : pemDecodeAll(pem, 'CERTIFICATE')[0];
    if (key && key.name.toString('hex') === record.keyName && der && createHash('sha256').update(der).digest('hex') === record.certSha256) {
      if (new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' }).equals(spkiDer(key.public))) return record;
    }
    this.logger.warn({ serial }, 'identity record does not match the TPM; provisioning again');
    return undefined;
  }

  /**
   * The persisted device key: reused when it is the one in our key file; re-persisted from the key
   * file after a crash between the two; created (key file first) when neither exists.
   */
  private async ensureDeviceKey(serial: string): Promise<{ key: PersistentObject; created: boolean }> {
    const file = await this.store.readKey();
    const existing = await readPersistent(this.client, this.keyHandle);
    if (existing) {
      if (file && Buffer.compare(file.publicArea, existing.raw) === 0 && isDeviceKey(existing.public)) {
        await this.step('persist-key', serial);
        return { key: existing, created: false };
      }
      throw new OutpostError('OUTPOST_E_IDENTITY_HANDLE_TAKEN', `persistent handle ${hex32(this.keyHandle)} holds a key that is not recorded in this unit's key file; nothing was changed`, {
        details: { handle: hex32(this.keyHandle), keyFile: this.store.path('key'), hasKeyFile: file !== undefined },
      });
    }
    let created = false;
    let blob = file;
    if (blob === undefined || blob.parent !== this.srkHandle) {
      const k = await createDeviceKey(this.client, this.srkHandle);
      blob = { parent: this.srkHandle, emptyAuth: true, publicArea: k.publicArea, privateBlob: k.privateBlob };
      await this.store.writeKey(blob);
      created = true;
    } else if (!isDeviceKey(parsePublic(blob.publicArea))) {
      throw new OutpostError('OUTPOST_E_IDENTITY_RECORD', 'the device key file holds a key without the device-key attributes', { details: { file: this.store.path('key') } });
    }
    await this.step('persist-key', serial);
    try {
      await persistKey(this.client, this.srkHandle, blob, this.keyHandle);
    } catch (e) {
      if (rcOf(e) === TPM_RC.INTEGRITY || rcOf(e) === 0x09c) {
        throw new OutpostError('OUTPOST_E_IDENTITY_RECORD', 'the device key file was made by another TPM (it does not load under this SRK); remove the identity directory to start over', {
          cause: e,
          details: { file: this.store.path('key') },
        });
      }
      throw e;
    }
    const key = await readPersistent(this.client, this.keyHandle);
    if (key === undefined) throw new OutpostError('OUTPOST_E_TPM_HANDLE', 'the device key vanished right after it was persisted', { details: { handle: hex32(this.keyHandle) } });
    return { key, created };
  }
}
