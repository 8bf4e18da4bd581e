import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { decodeTss2Key, encodeTss2Key, type Tss2Key } from './tss2-key.js';

/** The identity record on the data partition (identity.json): written last, so its presence means "provisioned". */
export interface IdentityRecord {
  readonly version: 1;
  readonly serial: string;
  readonly keyHandle: string;
  readonly srkHandle: string;
  /** TPM Name of the device key (hex): what `identity show` compares with the TPM. */
  readonly keyName: string;
  readonly subject: string;
  readonly notAfter: string;
  readonly certSha256: string;
  readonly certSerial: string;
  readonly ekSpkiSha256: string;
  readonly ekMethod: 'certificate' | 'allow-list';
  readonly counter?: { readonly index: string; readonly start: string };
  readonly tpm: { readonly manufacturer: string; readonly firmware: string };
  readonly provisionedAt: string;
}

export const IDENTITY_FILES = {
  key: 'device-key.tss2.pem',
  certificate: 'device-cert.pem',
  chain: 'chain.pem',
  root: 'root-ca.pem',
  record: 'identity.json',
} as const;

/**
 * The identity files of one unit, under `<dataDir>/identity`. The key file (the TPM-wrapped
 * private blob, useless elsewhere) is written before the key is persisted, so a crash never leaves
 * a persisted key Outpost cannot recognise. Every write is atomic and fsync'ed.
 */
export class IdentityStore {
  constructor(readonly dir: string) {}

  path(name: keyof typeof IDENTITY_FILES): string {
    return join(this.dir, IDENTITY_FILES[name]);
  }

  private async readOptional(name: keyof typeof IDENTITY_FILES): Promise<string | undefined> {
    try {
      return await readFile(this.path(name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new OutpostError('OUTPOST_E_IDENTITY_RECORD', 'cannot read an identity file', { cause: e, details: { file: this.path(name) } });
    }
  }

  async readKey(): Promise<Tss2Key | undefined> {
    const text = await this.readOptional('key');
    if (text === undefined) return undefined;
    try {
      return decodeTss2Key(text);
    } catch (e) {
      throw new OutpostError('OUTPOST_E_IDENTITY_RECORD', 'the device key file is not a TSS2 key', { cause: e, details: { file: this.path('key') } });
    }
  }

  async writeKey(key: Tss2Key): Promise<void> {
    await writeFileAtomic(this.path('key'), encodeTss2Key(key), 0o600);
  }

  async readRecord(): Promise<IdentityRecord | undefined> {
    const text = await this.readOptional('record');
    if (text === undefined) return undefined;
    try {
      const r = JSON.parse(text) as IdentityRecord;
      if (r.version !== 1 || typeof r.serial !== 'string' || typeof r.keyName !== 'string') throw new Error('not a version-1 identity record');
      return r;
    } catch (e) {
      throw new OutpostError('OUTPOST_E_IDENTITY_RECORD', 'the identity record is corrupt', { cause: e, details: { file: this.path('record') } });
    }
  }

  async readCertificatePem(): Promise<string | undefined> {
    return this.readOptional('certificate');
  }

  /** Certificates first, the record last: the record is the commit point. */
  async writeIdentity(files: { certificatePem: string; chainPem: string; rootPem: string; record: IdentityRecord }): Promise<void> {
    await writeFileAtomic(this.path('certificate'), files.certificatePem);
    await writeFileAtomic(this.path('chain'), files.chainPem);
    await writeFileAtomic(this.path('root'), files.rootPem);
    await writeFileAtomic(this.path('record'), `${JSON.stringify(files.record, null, 2)}\n`);
  }
}
