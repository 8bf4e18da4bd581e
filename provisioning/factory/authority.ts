import { X509Certificate, createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../hal/clock.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { isDeviceKey } from '../identity/keys.js';
import { makeCredential } from '../tpm/credential.js';
import { objectName, parsePublic, spkiDer } from '../tpm/structures.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { pemDecodeAll, pemEncode } from '../x509/der.js';
import { parseAndVerifyCsr } from '../x509/x509.js';
import { FactoryCa } from './ca.js';
import type { EkTrust } from './ek-trust.js';
import type { Ledger, LedgerRecord } from './ledger.js';

/** What a unit sends to start enrolment. Public areas are TPMT_PUBLIC bytes as the TPM returned them. */
export interface EnrollmentRequest {
  readonly serial: string;
  readonly ekPublic: Buffer;
  readonly ekCertificate?: Buffer;
  readonly deviceKeyPublic: Buffer;
}

export interface EnrollmentChallenge {
  readonly id: string;
  readonly credentialBlob: Buffer;
  readonly encryptedSecret: Buffer;
}

export interface EnrollmentAnswer {
  readonly id: string;
  /** What TPM2_ActivateCredential returned. */
  readonly secret: Buffer;
  /** PKCS#10 request signed by the device key inside the TPM. */
  readonly csr: Buffer;
}

export interface IssuedIdentity {
  readonly certificatePem: string;
  /** Device certificate, issuing CA, root. */
  readonly chainPem: string;
  readonly rootPem: string;
  readonly record: LedgerRecord;
  /** True when an earlier certificate for the same serial, TPM and key was returned again. */
  readonly reused: boolean;
}

/** The factory side of enrolment, as a unit sees it (in-process at the station, or over a network later). */
export interface Enroller {
  challenge(req: EnrollmentRequest): Promise<EnrollmentChallenge>;
  complete(answer: EnrollmentAnswer): Promise<IssuedIdentity>;
}

export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkSerial(serial: string): void {
  if (!SERIAL_PATTERN.test(serial)) {
    throw new OutpostError('OUTPOST_E_FACTORY_SERIAL', `serial "${serial}" must be 1..64 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit)`, { details: { serial } });
  }
}

interface Pending {
  readonly serial: string;
  readonly ekSpkiSha256: string;
  readonly ekMethod: LedgerRecord['ekMethod'];
  readonly keyName: Buffer;
  readonly deviceSpki: Buffer;
  readonly nonce: Buffer;
  readonly expires: number;
}

/**
 * The factory CA's enrolment logic. A device certificate is issued only after (1) the EK is
 * trusted (certificate chain or allow-list), (2) the device key has the required attributes,
 * (3) the TPM proved with ActivateCredential that this key lives next to that EK, and (4) the
 * CSR is signed by that key. Every issuance is appended to the ledger before it is returned.
 * Invariants: a challenge is used at most once and expires; a serial stays bound to one EK and an
 * EK to one serial; asking again for the same serial, EK and key returns the same certificate.
 */
export class EnrollmentAuthority implements Enroller {
  private readonly pending = new Map<string, Pending>();
  private readonly ttlMs: number;

  constructor(
    private readonly deps: { ca: FactoryCa; trust: EkTrust; ledger: Ledger; clock: Clock; station?: string; challengeTtlMs?: number },
  ) {
    this.ttlMs = deps.challengeTtlMs ?? 120_000;
  }

  async challenge(req: EnrollmentRequest): Promise<EnrollmentChallenge> {
    checkSerial(req.serial);
    const now = this.deps.clock.now();
    for (const [id, p] of this.pending) if (p.expires < now) this.pending.delete(id);
    const ek = parsePublic(req.ekPublic);
    const verdict = this.deps.trust.verify(spkiDer(ek), req.ekCertificate, now);
    const key = parsePublic(req.deviceKeyPublic);
    if (!isDeviceKey(key)) {
      throw new OutpostError('OUTPOST_E_FACTORY_KEY_POLICY', 'the device key lacks the required attributes (ECC P-256 ECDSA, fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign|noDA)', {
        details: { serial: req.serial, attributes: `0x${key.attributes.toString(16)}` },
      });
    }
    const records = await this.deps.ledger.records();
    const otherEk = records.find((r) => r.serial === req.serial && r.ekSpkiSha256 !== verdict.ekSpkiSha256);
    if (otherEk) {
      throw new OutpostError('OUTPOST_E_FACTORY_DUPLICATE', `serial ${req.serial} is already recorded with another TPM`, {
        details: { serial: req.serial, recordedEk: otherEk.ekSpkiSha256, ek: verdict.ekSpkiSha256 },
      });
    }
    const otherSerial = records.find((r) => r.ekSpkiSha256 === verdict.ekSpkiSha256 && r.serial !== req.serial);
    if (otherSerial) {
      throw new OutpostError('OUTPOST_E_FACTORY_DUPLICATE', `this TPM is already recorded as serial ${otherSerial.serial}`, {
        details: { serial: req.serial, recordedSerial: otherSerial.serial, ek: verdict.ekSpkiSha256 },
      });
    }
    const keyName = objectName(req.deviceKeyPublic);
    const nonce = randomBytes(32);
    const made = makeCredential(ek, keyName, nonce);
    const id = randomUUID();
    this.pending.set(id, {
      serial: req.serial,
      ekSpkiSha256: verdict.ekSpkiSha256,
      ekMethod: verdict.method,
      keyName,
      deviceSpki: spkiDer(key),
      nonce,
      expires: now + this.ttlMs,
    });
    return { id, credentialBlob: made.credentialBlob, encryptedSecret: made.encryptedSecret };
  }

  async complete(answer: EnrollmentAnswer): Promise<IssuedIdentity> {
    const p = this.pending.get(answer.id);
    this.pending.delete(answer.id);
    const now = this.deps.clock.now();
    if (p === undefined || p.expires < now) {
      throw new OutpostError('OUTPOST_E_FACTORY_CHALLENGE', 'unknown, expired or already used enrolment challenge', { details: { id: answer.id } });
    }
    if (answer.secret.length !== p.nonce.length || !timingSafeEqual(answer.secret, p.nonce)) {
      throw new OutpostError('OUTPOST_E_FACTORY_ACTIVATION', 'the activated secret is wrong: the key is not in the TPM holding this EK', { details: { serial: p.serial } });
    }
    let csr;
    try {
      csr = parseAndVerifyCsr(answer.csr);
    } catch (e) {
      throw new OutpostError('OUTPOST_E_FACTORY_CSR', 'the certificate request is malformed or badly signed', { cause: e, details: { serial: p.serial } });
    }
    if (!csr.spki.equals(p.deviceSpki)) throw new OutpostError('OUTPOST_E_FACTORY_CSR', 'the certificate request is not for the activated device key', { details: { serial: p.serial } });
    if (csr.commonName !== p.serial) {
      throw new OutpostError('OUTPOST_E_FACTORY_CSR', 'the certificate request names another serial', { details: { serial: p.serial, commonName: csr.commonName } });
    }
    const keyNameHex = p.keyName.toString('hex');
    const records = await this.deps.ledger.records();
    const same = records.filter((r) => r.serial === p.serial && r.ekSpkiSha256 === p.ekSpkiSha256);
    const previous = same.find((r) => r.deviceKeyName === keyNameHex);
    const issuedPath = join(FactoryCa.paths(this.deps.ca.dir).issued, `${p.serial}-${keyNameHex.slice(4, 20)}.pem`);
    if (previous) {
      const pem = await readFile(issuedPath, 'utf8').catch(() => undefined);
      const der = pem === undefined ? undefined : pemDecodeAll(pem, 'CERTIFICATE')[0];
      if (der && createHash('sha256').update(der).digest('hex') === previous.certSha256) return this.result(der, previous, true);
    }
    const der = this.deps.ca.issueDeviceCertificate({ serial: p.serial, spki: p.deviceSpki, ekSpkiSha256: p.ekSpkiSha256, now });
    const cert = new X509Certificate(der);
    const replaced = same.filter((r) => r.deviceKeyName !== keyNameHex).at(-1);
    const record: LedgerRecord = {
      time: new Date(now).toISOString(),
      serial: p.serial,
      ekSpkiSha256: p.ekSpkiSha256,
      ekMethod: p.ekMethod,
      deviceKeyName: keyNameHex,
      certSha256: createHash('sha256').update(der).digest('hex'),
      certSerial: cert.serialNumber,
      notAfter: new Date(cert.validTo).toISOString(),
      ...(this.deps.station ? { station: this.deps.station } : {}),
      ...(replaced ? { replaces: replaced.certSha256 } : {}),
    };
    await writeFileAtomic(issuedPath, pemEncode('CERTIFICATE', der));
    await this.deps.ledger.append(record);
    return this.result(der, record, false);
  }

  private result(der: Buffer, record: LedgerRecord, reused: boolean): IssuedIdentity {
    const certificatePem = pemEncode('CERTIFICATE', der);
    return { certificatePem, chainPem: certificatePem + this.deps.ca.chainPem(), rootPem: pemEncode('CERTIFICATE', this.deps.ca.rootCert.raw), record, reused };
  }
}
