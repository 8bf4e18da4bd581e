import { createHash, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { DerError, children, decodeOid, der, readTlv, type DerNode } from './der.js';

/** X.509 certificates and PKCS#10 requests, ECDSA P-256/SHA-256 only: what the factory CA issues and checks. */

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  serialNumber: '2.5.4.5',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  /** Outpost: SHA-256 of the EK's SubjectPublicKeyInfo, in device certificates (a UUID-derived OID, RFC 4122 / X.667). */
  outpostEkHash: '2.25.211730185347093437612873498036226318791',
} as const;

const ATTR: Record<string, string> = { CN: OID.commonName, O: OID.organization, OU: OID.organizationalUnit, serialNumber: OID.serialNumber };

export type NameAttrs = ReadonlyArray<readonly [keyof typeof ATTR | string, string]>;

/** RDNSequence DER from [['O', 'Acme'], ['CN', 'SN123']]. */
export function encodeName(attrs: NameAttrs): Buffer {
  return der.seq(
    ...attrs.map(([k, v]) => {
      const oid = ATTR[k];
      if (oid === undefined) throw new RangeError(`unsupported name attribute ${k}`);
      return der.set(der.seq(der.oid(oid), k === 'serialNumber' ? der.printable(v) : der.utf8(v)));
    }),
  );
}

/** KeyUsage bits (RFC 5280 §4.2.1.3). */
export const KU = { digitalSignature: 0x80, keyEncipherment: 0x20, keyAgreement: 0x08, keyCertSign: 0x04, cRLSign: 0x02 } as const;

function ext(oid: string, critical: boolean, value: Uint8Array): Buffer {
  return der.seq(der.oid(oid), ...(critical ? [der.bool(true)] : []), der.octet(value));
}

export const extensions = {
  basicConstraints: (ca: boolean, pathLen?: number) =>
    ext(OID.basicConstraints, true, ca ? der.seq(der.bool(true), ...(pathLen !== undefined ? [der.int(pathLen)] : [])) : der.seq()),
  keyUsage(bits: number): Buffer {
    let unused = 0;
    while (unused < 7 && !(bits & (1 << unused))) unused++;
    return ext(OID.keyUsage, true, Buffer.from([0x03, 0x02, unused, bits & 0xff]));
  },
  extKeyUsage: (...oids: string[]) => ext(OID.extKeyUsage, false, der.seq(...oids.map((o) => der.oid(o)))),
  subjectAltName(names: { uris?: string[]; dns?: string[]; ips?: string[] }): Buffer {
    const gn = [
      ...(names.uris ?? []).map((u) => der.implicit(6, Buffer.from(u, 'latin1'))),
      ...(names.dns ?? []).map((d) => der.implicit(2, Buffer.from(d, 'latin1'))),
      ...(names.ips ?? []).map((ip) => der.implicit(7, ipBytes(ip))),
    ];
    return ext(OID.subjectAltName, false, der.seq(...gn));
  },
  subjectKeyIdentifier: (spki: Buffer) => ext(OID.subjectKeyIdentifier, false, der.octet(keyIdentifier(spki))),
  authorityKeyIdentifier: (issuerSpki: Buffer) => ext(OID.authorityKeyIdentifier, false, der.seq(der.implicit(0, keyIdentifier(issuerSpki)))),
  ekHash: (sha256: Buffer) => ext(OID.outpostEkHash, false, der.octet(sha256)),
};

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  throw new RangeError('only IPv4 addresses are supported in subjectAltName');
}

/** Key identifier method 1 (RFC 5280 §4.2.1.2): SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(spki: Buffer): Buffer {
  const [, bits] = children(readTlv(spki));
  if (bits === undefined) throw new DerError('SubjectPublicKeyInfo without key');
  return createHash('sha1').update(bits.content.subarray(1)).digest();
}

const ECDSA_SHA256 = der.seq(der.oid(OID.ecdsaWithSha256));

export interface CertificateSpec {
  readonly serial: Buffer;
  readonly issuer: Buffer;
  readonly subject: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly spki: Buffer;
  readonly extensions: readonly Buffer[];
}

/** An X.509 v3 certificate, signed with the issuer's EC P-256 private key (ECDSA/SHA-256). */
export function issueCertificate(spec: CertificateSpec, issuerKey: KeyObject): Buffer {
  const tbs = der.seq(
    der.explicit(0, der.int(2)),
    der.int(spec.serial),
    ECDSA_SHA256,
    spec.issuer,
    der.seq(der.time(spec.notBefore), der.time(spec.notAfter)),
    spec.subject,
    spec.spki,
    der.explicit(3, der.seq(...spec.extensions)),
  );
  const sig = cryptoSign('sha256', tbs, issuerKey);
  return der.seq(tbs, ECDSA_SHA256, der.bitString(sig));
}

/** CertificationRequestInfo for a subject and key, with no attributes. */
export function csrInfo(subject: Buffer, spki: Buffer): Buffer {
  return der.seq(der.int(0), subject, spki, Buffer.from([0xa0, 0x00]));
}

/** A PKCS#10 request from its info and an ECDSA signature (DER Ecdsa-Sig-Value) over SHA-256(info). */
export function assembleCsr(info: Buffer, derSignature: Buffer): Buffer {
  return der.seq(info, ECDSA_SHA256, der.bitString(derSignature));
}

/** DER Ecdsa-Sig-Value from raw r and s (as a TPM returns them). */
export function ecdsaDer(r: Uint8Array, s: Uint8Array): Buffer {
  return der.seq(der.int(r), der.int(s));
}

export interface ParsedCsr {
  readonly spki: Buffer;
  readonly subject: Buffer;
  readonly commonName: string | undefined;
}

/** Parses a PKCS#10 request and verifies its self-signature; throws DerError or Error('bad signature'). */
export function parseAndVerifyCsr(csr: Buffer): ParsedCsr {
  const top = readTlv(csr);
  if (top.raw.length !== csr.length) throw new DerError('trailing bytes after the request');
  const [info, alg, sig] = children(top);
  if (info === undefined || alg === undefined || sig === undefined) throw new DerError('request is not SEQUENCE { info, algorithm, signature }');
  const algOid = children(alg)[0];
  if (algOid === undefined || decodeOid(algOid.content) !== OID.ecdsaWithSha256) throw new DerError('request is not signed with ecdsa-with-SHA256');
  const parts = children(info);
  const subject = parts[1];
  const spki = parts[2];
  if (subject === undefined || spki === undefined) throw new DerError('request info lacks subject or key');
  const key = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
  if (!cryptoVerify('sha256', info.raw, key, sig.content.subarray(1))) throw new Error('bad signature');
  return { spki: Buffer.from(spki.raw), subject: Buffer.from(subject.raw), commonName: commonNameOf(subject) };
}

function commonNameOf(name: DerNode): string | undefined {
  for (const rdn of children(name)) {
    for (const atv of children(rdn)) {
      const [oid, value] = children(atv);
      if (oid && value && decodeOid(oid.content) === OID.commonName) return value.content.toString('utf8');
    }
  }
  return undefined;
}

/** The `raw` bytes of the first DER element in `buf` (EK certificates in NV may be padded). */
export function trimDer(buf: Buffer): Buffer {
  return Buffer.from(readTlv(buf).raw);
}

/** Extension value (the OCTET STRING content) of `oid` in a DER certificate, or undefined. */
export function certificateExtension(certDer: Buffer, oid: string): Buffer | undefined {
  const [tbs] = children(readTlv(certDer));
  if (tbs === undefined) return undefined;
  for (const field of children(tbs)) {
    if (field.tag !== 0xa3) continue;
    const [list] = children(field);
    if (list === undefined) return undefined;
    for (const e of children(list)) {
      const parts = children(e);
      const first = parts[0];
      const last = parts[parts.length - 1];
      if (first && last && decodeOid(first.content) === oid) return Buffer.from(last.content);
    }
  }
  return undefined;
}
