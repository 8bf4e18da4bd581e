import { X509Certificate, createHash } from 'node:crypto';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_HR, TPM_RH, hex32 } from '../tpm/constants.js';
import { passwordAuth } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { TPM_RC, rcOf } from '../tpm/rc.js';
import { spkiDer, type TpmPublic } from '../tpm/structures.js';
import { EK_P256_TEMPLATE, EK_RSA2048_TEMPLATE, matchesTemplate } from '../tpm/templates.js';
import { trimDer } from '../x509/x509.js';
import { nvBufferMax, nvPublicIfDefined, nvReadAll } from './nv.js';

/** Endorsement key and its certificate, read from the TPM (TCG EK Credential Profile 2.x). */

export interface EkCertSlot {
  readonly index: number;
  readonly label: string;
  /** The TCG template of the EK this certificate is for, when Outpost can re-derive it (low range). */
  readonly template?: TpmPublic;
  /** Where that EK is conventionally persisted. */
  readonly persistent?: number;
}

/** Every NV index where a TPM vendor may store an EK certificate, in order of preference. */
export const EK_CERT_SLOTS: readonly EkCertSlot[] = [
  { index: 0x01c00002, label: 'RSA-2048 EK (low range)', template: EK_RSA2048_TEMPLATE, persistent: 0x81010001 },
  { index: 0x01c0000a, label: 'ECC P-256 EK (low range)', template: EK_P256_TEMPLATE, persistent: 0x81010002 },
  { index: 0x01c00012, label: 'RSA-2048 EK (high range)' },
  { index: 0x01c00014, label: 'ECC P-256 EK (high range)' },
  { index: 0x01c00016, label: 'ECC P-384 EK (high range)' },
  { index: 0x01c00018, label: 'ECC P-521 EK (high range)' },
  { index: 0x01c0001c, label: 'RSA-3072 EK (high range)' },
  { index: 0x01c0001e, label: 'RSA-4096 EK (high range)' },
];

export interface EkCertificate {
  readonly slot: EkCertSlot;
  readonly der: Buffer;
}

/** SHA-256 of a DER SubjectPublicKeyInfo, hex: how Outpost names an EK (ledger, allow-list, device certificate). */
export function spkiSha256(spki: Buffer): string {
  return createHash('sha256').update(spki).digest('hex');
}

/** Reads every EK certificate present in NV. Indices that are absent are skipped; unparsable contents are skipped too. */
export async function readEkCertificates(client: TpmClient): Promise<EkCertificate[]> {
  const out: EkCertificate[] = [];
  let chunk: number | undefined;
  for (const slot of EK_CERT_SLOTS) {
    const pub = await nvPublicIfDefined(client, slot.index);
    if (pub === undefined || pub.dataSize === 0) continue;
    chunk ??= await nvBufferMax(client);
    const raw = await nvReadAll(client, slot.index, pub, chunk);
    try {
      const der = trimDer(raw);
      new X509Certificate(der);
      out.push({ slot, der });
    } catch {
      continue;
    }
  }
  return out;
}

/** An EK ready for ActivateCredential; `transient` handles must be flushed by the caller. */
export interface EndorsementKey {
  readonly handle: number;
  readonly transient: boolean;
  readonly public: TpmPublic;
  readonly raw: Buffer;
  readonly name: Buffer;
  readonly spkiSha256: string;
  readonly certificate?: EkCertificate;
}

async function readPublicIfExists(client: TpmClient, handle: number) {
  try {
    return await client.run(Tpm2.readPublic(handle));
  } catch (e) {
    if (rcOf(e) === TPM_RC.HANDLE) return undefined;
    throw e;
  }
}

/** The EK made from a TCG template: the persistent one when it matches, else re-derived as a transient primary. */
async function ekFromTemplate(client: TpmClient, template: TpmPublic, persistent: number): Promise<EndorsementKey> {
  const p = await readPublicIfExists(client, persistent);
  if (p && matchesTemplate(p.public, template)) {
    return { handle: persistent, transient: false, public: p.public, raw: p.raw, name: p.name, spkiSha256: spkiSha256(spkiDer(p.public)) };
  }
  const created = await client.run(Tpm2.createPrimary(TPM_RH.ENDORSEMENT, passwordAuth(), template));
  client.track(created.handle);
  return { handle: created.handle, transient: true, public: created.public, raw: created.raw, name: created.name, spkiSha256: spkiSha256(spkiDer(created.public)) };
}

/**
 * Finds the EK to prove this TPM with: the first EK certificate whose key is one of the TPM's EKs
 * (low-range certificates: the TCG template, re-derived; high-range: a persistent EK in the
 * endorsement range with the same key). With no certificate at all, the RSA-2048 TCG EK is used
 * (the CA then decides with its allow-list). Certificates that match no EK raise EK_MISMATCH.
 */
export async function findEndorsementKey(client: TpmClient, certs: readonly EkCertificate[]): Promise<EndorsementKey> {
  const mismatched: string[] = [];
  for (const cert of certs) {
    const certSpki = new X509Certificate(cert.der).publicKey.export({ type: 'spki', format: 'der' });
    const want = spkiSha256(certSpki);
    if (cert.slot.template && cert.slot.persistent !== undefined) {
      const ek = await ekFromTemplate(client, cert.slot.template, cert.slot.persistent);
      if (ek.spkiSha256 === want) return { ...ek, certificate: cert };
      if (ek.transient) await client.flush(ek.handle);
    } else {
      for (const h of await client.handles(TPM_HR.PERSISTENT + 0x10000)) {
        if (h >>> 16 !== 0x8101) break;
        const p = await readPublicIfExists(client, h);
        if (p && (p.public.type === 0x0001 || p.public.type === 0x0023) && spkiSha256(spkiDer(p.public)) === want) {
          return { handle: h, transient: false, public: p.public, raw: p.raw, name: p.name, spkiSha256: want, certificate: cert };
        }
      }
    }
    mismatched.push(hex32(cert.slot.index));
  }
  if (mismatched.length > 0) {
    throw new OutpostError('OUTPOST_E_IDENTITY_EK_MISMATCH', 'the EK certificates in NV do not match any endorsement key of this TPM', {
      details: { indices: mismatched },
    });
  }
  return ekFromTemplate(client, EK_RSA2048_TEMPLATE, 0x81010001);
}
