import { X509Certificate, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { safeEqual } from './verity.js';

const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  anyEku: '2.5.29.37.0',
  keyUsage: '2.5.29.15',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecPublicKey: '1.2.840.10045.2.1',
} as const;

const DIGESTS: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};
const SIGNATURES: Record<string, string | null> = {
  [OID.rsaEncryption]: null, // digest comes from the SignerInfo digestAlgorithm
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  [OID.ecPublicKey]: null,
  [OID.ecdsaSha256]: 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

/** A parsed CMS SignedData with one signer, as RAUC writes it. Nothing in it is trusted yet. */
export interface ParsedCms {
  /** Node digest name for the content (`sha256`). */
  readonly digest: string;
  /** The encapsulated content (verity/crypt bundles: the manifest); absent for detached (plain) signatures. */
  readonly eContent: Buffer | null;
  readonly messageDigest: Buffer;
  /** DER of the signed attributes with the SET tag, which is what the signature covers. */
  readonly signedAttrs: Buffer;
  readonly signature: Buffer;
  readonly signatureDigest: string;
  readonly signer: X509Certificate;
  readonly certificates: readonly X509Certificate[];
  readonly signingTime: Date | null;
}

function sigError(message: string, details: Record<string, unknown> = {}, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_SIGNATURE', message, { details, ...(cause !== undefined ? { cause } : {}) });
}
function signerError(message: string, details: Record<string, unknown> = {}): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_SIGNER', message, { details });
}

function toBuf(ab: ArrayBuffer | ArrayBufferView): Buffer {
  return ab instanceof ArrayBuffer ? Buffer.from(ab) : Buffer.from(ab.buffer, ab.byteOffset, ab.byteLength);
}

/** Parses the DER CMS found at the end of a bundle. Throws OUTPOST_E_OTA_BUNDLE_SIGNATURE when malformed. */
export function parseCms(der: Buffer): ParsedCms {
  let sd: pkijs.SignedData;
  try {
    const ci = pkijs.ContentInfo.fromBER(der);
    if (ci.contentType !== OID.signedData) throw new Error(`content type ${ci.contentType}`);
    sd = new pkijs.SignedData({ schema: ci.content });
  } catch (e) {
    throw sigError('bundle signature is not a CMS SignedData structure', {}, e);
  }
  if (sd.signerInfos.length !== 1) throw sigError('bundle signature must have exactly one signer', { signers: sd.signerInfos.length });
  const si = sd.signerInfos[0] as pkijs.SignerInfo;
  const digest = DIGESTS[si.digestAlgorithm.algorithmId];
  if (!digest) throw sigError('unsupported CMS digest algorithm', { oid: si.digestAlgorithm.algorithmId });
  const sigAlg = si.signatureAlgorithm.algorithmId;
  if (!(sigAlg in SIGNATURES)) throw sigError('unsupported CMS signature algorithm (ECDSA or RSA PKCS#1 v1.5 expected)', { oid: sigAlg });
  if (!si.signedAttrs) throw sigError('CMS signer has no signed attributes');
  const attr = (oid: string) => si.signedAttrs?.attributes.find((a) => a.type === oid)?.values[0];
  const md = attr(OID.messageDigest);
  if (!(md instanceof asn1js.OctetString)) throw sigError('CMS signed attributes lack messageDigest');
  const ct = attr(OID.contentType);
  const eContentType = sd.encapContentInfo.eContentType;
  if (!(ct instanceof asn1js.ObjectIdentifier) || ct.valueBlock.toString() !== eContentType) throw sigError('CMS contentType attribute does not match the content');
  const st = attr(OID.signingTime);
  const signingTime = st instanceof asn1js.UTCTime || st instanceof asn1js.GeneralizedTime ? st.toDate() : null;
  const certificates: X509Certificate[] = [];
  for (const c of sd.certificates ?? []) {
    if (c instanceof pkijs.Certificate) certificates.push(new X509Certificate(toBuf(c.toSchema().toBER(false))));
  }
  const signer = findSigner(si, sd, certificates);
  const ec = sd.encapContentInfo.eContent;
  return {
    digest,
    eContent: ec ? toBuf(ec.getValue()) : null,
    messageDigest: toBuf(md.getValue()),
    signedAttrs: toBuf(si.signedAttrs.encodedValue),
    signature: toBuf(si.signature.getValue()),
    signatureDigest: SIGNATURES[sigAlg] ?? digest,
    signer,
    certificates,
    signingTime,
  };
}

function findSigner(si: pkijs.SignerInfo, sd: pkijs.SignedData, certs: X509Certificate[]): X509Certificate {
  const raw = (sd.certificates ?? []).filter((c): c is pkijs.Certificate => c instanceof pkijs.Certificate);
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as pkijs.Certificate;
    if (si.sid instanceof pkijs.IssuerAndSerialNumber) {
      if (c.issuer.isEqual(si.sid.issuer) && c.serialNumber.isEqual(si.sid.serialNumber)) return certs[i] as X509Certificate;
    } else {
      const skid = c.extensions?.find((e) => e.extnID === '2.5.29.14')?.parsedValue;
      const want = (si.sid as asn1js.Constructed).valueBlock as unknown as { valueHexView?: Uint8Array };
      if (skid instanceof asn1js.OctetString && want.valueHexView && Buffer.compare(toBuf(skid.getValue()), Buffer.from(want.valueHexView)) === 0) {
        return certs[i] as X509Certificate;
      }
    }
  }
  throw signerError('the signing certificate is not included in the bundle signature');
}

/** keyUsage bits of a certificate, or null when the extension is absent. */
function keyUsageBits(cert: X509Certificate): number | null {
  const c = pkijs.Certificate.fromBER(cert.raw);
  const ext = c.extensions?.find((e) => e.extnID === OID.keyUsage);
  if (!ext) return null;
  const bits = ext.parsedValue as asn1js.BitString | undefined;
  const v = bits?.valueBlock.valueHexView ?? new Uint8Array();
  return ((v[0] ?? 0) << 8) | (v[1] ?? 0);
}
const KU_DIGITAL_SIGNATURE = 0x8000;
const KU_KEY_CERT_SIGN = 0x0400;

function describe(c: X509Certificate): string {
  return c.subject.replace(/\n/g, ', ');
}

/**
 * Verifies a parsed CMS against the digest of its content and a keyring, as RAUC with
 * `check-purpose=codesign` does: signature over the signed attributes, messageDigest equal to the
 * content digest, a chain from the signer to a keyring certificate (each link issued and signed by
 * the next, CAs marked as such), every certificate valid at `now`, and the signer carrying the
 * codeSigning extended key usage (and digitalSignature when keyUsage is present).
 */
export function verifyCms(cms: ParsedCms, contentDigest: Buffer, keyring: readonly X509Certificate[], now: Date): { chain: X509Certificate[] } {
  if (!safeEqual(cms.messageDigest, contentDigest)) {
    throw sigError(cms.eContent ? 'manifest digest does not match the signature (manifest modified)' : 'payload digest mismatch: the bundle was modified after signing');
  }
  let ok = false;
  try {
    ok = cryptoVerify(cms.signatureDigest, cms.signedAttrs, cms.signer.publicKey, cms.signature);
  } catch (e) {
    throw sigError('bundle signature could not be checked with the signer key', {}, e);
  }
  if (!ok) throw sigError('bundle signature is invalid (signed attributes or signature modified, or wrong signer key)');
  return { chain: validateChain(cms.signer, cms.certificates, keyring, now) };
}

export function validateChain(signer: X509Certificate, pool: readonly X509Certificate[], keyring: readonly X509Certificate[], now: Date): X509Certificate[] {
  if (keyring.length === 0) throw signerError('the keyring holds no certificate');
  const eku = signer.keyUsage;
  if (!eku || !eku.includes(OID.codeSigning)) {
    throw signerError(`signer "${describe(signer)}" lacks the codeSigning extended key usage`, { subject: describe(signer), eku: eku ?? [] });
  }
  const ku = keyUsageBits(signer);
  if (ku !== null && (ku & KU_DIGITAL_SIGNATURE) === 0) throw signerError(`signer "${describe(signer)}" keyUsage lacks digitalSignature`);
  const isAnchor = (c: X509Certificate) => keyring.some((k) => k.fingerprint256 === c.fingerprint256);
  const chain: X509Certificate[] = [signer];
  let cur = signer;
  for (let depth = 0; depth < 8; depth++) {
    checkValidity(cur, now);
    if (isAnchor(cur)) return chain;
    const candidates = [...keyring, ...pool].filter((c) => c.fingerprint256 !== cur.fingerprint256 && cur.checkIssued(c));
    const issuer = candidates.find((c) => safeVerify(cur, c.publicKey));
    if (!issuer) throw signerError(`signer "${describe(signer)}" does not chain to a certificate in the keyring`, { subject: describe(signer), at: describe(cur) });
    if (!issuer.ca) throw signerError(`issuer "${describe(issuer)}" is not a CA certificate`);
    const iku = keyUsageBits(issuer);
    if (iku !== null && (iku & KU_KEY_CERT_SIGN) === 0) throw signerError(`issuer "${describe(issuer)}" keyUsage lacks keyCertSign`);
    const ieku = issuer.keyUsage;
    if (ieku && !ieku.includes(OID.codeSigning) && !ieku.includes(OID.anyEku)) {
      throw signerError(`issuer "${describe(issuer)}" restricts extended key usage without codeSigning`);
    }
    chain.push(issuer);
    cur = issuer;
  }
  throw signerError('certificate chain is longer than 8');
}

function safeVerify(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.verify(key);
  } catch {
    return false;
  }
}

function checkValidity(c: X509Certificate, now: Date): void {
  const from = Date.parse(c.validFrom);
  const to = Date.parse(c.validTo);
  if (!(now.getTime() >= from)) throw signerError(`certificate "${describe(c)}" is not valid yet (from ${c.validFrom})`, { subject: describe(c), validFrom: c.validFrom });
  if (!(now.getTime() <= to)) throw signerError(`certificate "${describe(c)}" expired on ${c.validTo}`, { subject: describe(c), validTo: c.validTo });
}

/** Parses every PEM certificate in a keyring file's text. */
export function parseKeyring(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

/** DER SET OF ordering: by encoding, shorter ones compared as if padded with zeros. */
function derSetOrder(a: Buffer, b: Buffer): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x - y;
  }
  return 0;
}

/**
 * Signs like `rauc bundle`: CMS SignedData, sha256, signed attributes (contentType, signingTime,
 * messageDigest), signer identified by issuer and serial, signer and intermediate certificates
 * included. Detached when `eContent` is null (plain bundles), encapsulated otherwise (verity manifest).
 */
export function signCms(opts: { contentDigest: Buffer; eContent: Buffer | null; cert: X509Certificate; key: KeyObject; intermediates?: readonly X509Certificate[]; signingTime: Date }): Buffer {
  const { cert, key } = opts;
  if (!createPublicKey(key).equals(cert.publicKey)) throw new OutpostError('OUTPOST_E_OTA_BUILD', 'the signing key does not belong to the signing certificate');
  const pcert = pkijs.Certificate.fromBER(cert.raw);
  const keyType = key.asymmetricKeyType;
  if (keyType !== 'ec' && keyType !== 'rsa') {
    throw new OutpostError('OUTPOST_E_OTA_BUILD', `signing key type ${keyType ?? 'unknown'} is not supported (RAUC signs with ECDSA or RSA)`);
  }
  const attrs = [
    new pkijs.Attribute({ type: OID.contentType, values: [new asn1js.ObjectIdentifier({ value: OID.data })] }),
    new pkijs.Attribute({ type: OID.signingTime, values: [new asn1js.UTCTime({ valueDate: opts.signingTime })] }),
    new pkijs.Attribute({ type: OID.messageDigest, values: [new asn1js.OctetString({ valueHex: opts.contentDigest })] }),
  ]
    .map((a) => ({ a, der: toBuf(a.toSchema().toBER(false)) }))
    .sort((x, y) => derSetOrder(x.der, y.der));
  const setDer = toBuf(new asn1js.Set({ value: attrs.map((x) => x.a.toSchema()) }).toBER(false));
  const signature = cryptoSign('sha256', setDer, key);
  const signerInfo = new pkijs.SignerInfo({
    version: 1,
    sid: new pkijs.IssuerAndSerialNumber({ issuer: pcert.issuer, serialNumber: pcert.serialNumber }),
    digestAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: '2.16.840.1.101.3.4.2.1' }),
    signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes: attrs.map((x) => x.a) }),
    signatureAlgorithm:
      keyType === 'ec'
        ? new pkijs.AlgorithmIdentifier({ algorithmId: OID.ecdsaSha256 })
        : new pkijs.AlgorithmIdentifier({ algorithmId: OID.rsaEncryption, algorithmParams: new asn1js.Null() }),
    signature: new asn1js.OctetString({ valueHex: signature }),
  });
  const sd = new pkijs.SignedData({
    version: 1,
    digestAlgorithms: [new pkijs.AlgorithmIdentifier({ algorithmId: '2.16.840.1.101.3.4.2.1' })],
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: OID.data,
      ...(opts.eContent ? { eContent: new asn1js.OctetString({ valueHex: opts.eContent }) } : {}),
    }),
    certificates: [pcert, ...(opts.intermediates ?? []).map((c) => pkijs.Certificate.fromBER(c.raw))],
    signerInfos: [signerInfo],
  });
  const ci = new pkijs.ContentInfo({ contentType: OID.signedData, content: sd.toSchema(true) });
  return toBuf(ci.toSchema().toBER(false));
}
