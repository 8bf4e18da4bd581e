import { X509Certificate, createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { pemDecodeAll } from '../x509/der.js';

/** How the CA accepted a TPM: its EK certificate chained to a pinned vendor CA, or its EK is on the allow-list. */
export type EkTrustMethod = 'certificate' | 'allow-list';

export interface EkVerdict {
  readonly method: EkTrustMethod;
  readonly ekSpkiSha256: string;
  readonly certificateIssuer?: string;
}

/**
 * The factory's trust in TPM vendors. Every certificate in the vendor-roots bundle is a trust
 * anchor (vendor roots and the intermediates the operator accepts: some vendors' roots are not
 * self-signed). The allow-list holds SHA-256 hashes (hex) of EK SubjectPublicKeyInfos, for TPMs
 * without a usable EK certificate; it applies only when the operator configured one.
 * Invariants: at least one of the two is configured; a certificate whose key is not the EK is
 * never accepted, allow-list or not.
 */
export class EkTrust {
  private constructor(
    private readonly anchors: readonly X509Certificate[],
    private readonly allowList: ReadonlySet<string> | undefined,
  ) {}

  static async load(options: { vendorRoots?: readonly string[]; allowList?: string }): Promise<EkTrust> {
    const anchors: X509Certificate[] = [];
    for (const file of options.vendorRoots ?? []) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        throw new OutpostError('OUTPOST_E_IDENTITY_TRUST_CONFIG', 'cannot read a vendor EK roots file', { cause: e, details: { file } });
      }
      const ders = pemDecodeAll(text, 'CERTIFICATE');
      if (ders.length === 0) throw new OutpostError('OUTPOST_E_IDENTITY_TRUST_CONFIG', 'a vendor EK roots file holds no PEM certificate', { details: { file } });
      for (const d of ders) anchors.push(new X509Certificate(d));
    }
    let allow: Set<string> | undefined;
    if (options.allowList !== undefined) {
      let text: string;
      try {
        text = await readFile(options.allowList, 'utf8');
      } catch (e) {
        throw new OutpostError('OUTPOST_E_IDENTITY_TRUST_CONFIG', 'cannot read the EK allow-list', { cause: e, details: { file: options.allowList } });
      }
      allow = new Set();
      text.split('\n').forEach((raw, i) => {
        const line = raw.replace(/#.*/, '').trim().toLowerCase();
        if (line === '') return;
        if (!/^[0-9a-f]{64}$/.test(line)) {
          throw new OutpostError('OUTPOST_E_IDENTITY_TRUST_CONFIG', `EK allow-list line ${i + 1} is not a SHA-256 hex digest`, { details: { file: options.allowList, line: i + 1 } });
        }
        allow?.add(line);
      });
    }
    return EkTrust.of(anchors, allow);
  }

  static of(anchors: readonly X509Certificate[], allowList?: ReadonlySet<string>): EkTrust {
    if (anchors.length === 0 && allowList === undefined) {
      throw new OutpostError('OUTPOST_E_IDENTITY_TRUST_CONFIG', 'configure vendor EK roots (--ek-roots) or an EK allow-list (--ek-allow-list)', {});
    }
    return new EkTrust(anchors, allowList);
  }

  /** Decides on a TPM from its EK public key (SPKI DER) and, when it has one, its EK certificate. */
  verify(ekSpki: Buffer, ekCertificate: Buffer | undefined, now: number): EkVerdict {
    const ekSpkiSha256 = createHash('sha256').update(ekSpki).digest('hex');
    let chainError: OutpostError | undefined;
    if (ekCertificate !== undefined) {
      const cert = new X509Certificate(ekCertificate);
      if (!cert.publicKey.export({ type: 'spki', format: 'der' }).equals(ekSpki)) {
        throw new OutpostError('OUTPOST_E_IDENTITY_EK_MISMATCH', 'the EK certificate is for another key than the TPM\'s EK', { details: { ekSpkiSha256 } });
      }
      chainError = this.anchors.length === 0 ? undefined : this.chainError(cert, now);
      if (this.anchors.length > 0 && chainError === undefined) return { method: 'certificate', ekSpkiSha256, certificateIssuer: cert.issuer };
    }
    if (this.allowList !== undefined) {
      if (this.allowList.has(ekSpkiSha256)) return { method: 'allow-list', ekSpkiSha256 };
      throw new OutpostError('OUTPOST_E_IDENTITY_EK_NOT_ALLOWED', `the TPM has no EK certificate that chains to a vendor root, and its EK (sha256 ${ekSpkiSha256}) is not on the allow-list`, {
        ...(chainError ? { cause: chainError } : {}),
        details: { ekSpkiSha256 },
      });
    }
    if (chainError) throw chainError;
    throw new OutpostError('OUTPOST_E_IDENTITY_EK_CERT_MISSING', `the TPM has no EK certificate; refusing it (to accept it, put its EK sha256 ${ekSpkiSha256} on an EK allow-list)`, {
      details: { ekSpkiSha256 },
    });
  }

  /** Walks issuer links through the anchors; undefined when the leaf reaches a valid anchor. */
  private chainError(leaf: X509Certificate, now: number): OutpostError | undefined {
    const valid = (c: X509Certificate) => Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
    let cur = leaf;
    for (let depth = 0; depth < 8; depth++) {
      if (!valid(cur)) {
        return new OutpostError('OUTPOST_E_IDENTITY_EK_CHAIN', 'a certificate in the EK chain is expired or not yet valid', {
          details: { subject: cur.subject, validFrom: cur.validFrom, validTo: cur.validTo },
        });
      }
      if (this.anchors.some((a) => a.raw.equals(cur.raw))) return undefined;
      const issuer = this.anchors.find((a) => a.ca && cur.checkIssued(a) && cur.verify(a.publicKey));
      if (issuer === undefined) {
        return new OutpostError('OUTPOST_E_IDENTITY_EK_CHAIN', 'the EK certificate does not chain to a configured vendor root', {
          details: { subject: cur.subject, issuer: cur.issuer },
        });
      }
      cur = issuer;
    }
    return new OutpostError('OUTPOST_E_IDENTITY_EK_CHAIN', 'the EK certificate chain is too long', { details: { subject: leaf.subject } });
  }
}
