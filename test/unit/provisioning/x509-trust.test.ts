import { X509Certificate, createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EkTrust } from '../../../provisioning/factory/ek-trust.js';
import { decodeTss2Key, encodeTss2Key } from '../../../provisioning/identity/tss2-key.js';
import { der, readTlv } from '../../../provisioning/x509/der.js';
import { KU, assembleCsr, csrInfo, encodeName, extensions, issueCertificate, parseAndVerifyCsr, trimDer } from '../../../provisioning/x509/x509.js';

const DAY = 86_400_000;
const now = Date.parse('2030-01-01T00:00:00Z');

function ec(): { key: KeyObject; spki: Buffer } {
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: k.privateKey, spki: k.publicKey.export({ type: 'spki', format: 'der' }) };
}

function cert(subject: string, spki: Buffer, issuer: string, issuerKey: KeyObject, ca: boolean, from = now - DAY, to = now + 365 * DAY): X509Certificate {
  return new X509Certificate(
    issueCertificate(
      { serial: randomBytes(8), issuer: encodeName([['CN', issuer]]), subject: encodeName([['CN', subject]]), notBefore: new Date(from), notAfter: new Date(to), spki, extensions: [extensions.basicConstraints(ca)] },
      issuerKey,
    ),
  );
}

/** A vendor PKI: root → intermediate → EK certificate (EC keys stand in for the EK here). */
function vendor() {
  const root = ec();
  const inter = ec();
  const ek = ec();
  const rootCert = cert('Vendor Root', root.spki, 'Vendor Root', root.key, true);
  const interCert = cert('Vendor EK CA', inter.spki, 'Vendor Root', root.key, true);
  const ekCert = cert('', ek.spki, 'Vendor EK CA', inter.key, false);
  return { root, inter, ek, rootCert, interCert, ekCert };
}

describe('EK trust', () => {
  it('accepts an EK certificate that chains through a pinned intermediate to the pinned root', () => {
    const v = vendor();
    const verdict = EkTrust.of([v.rootCert, v.interCert]).verify(v.ek.spki, v.ekCert.raw, now);
    expect(verdict).toMatchObject({ method: 'certificate', ekSpkiSha256: createHash('sha256').update(v.ek.spki).digest('hex') });
  });

  it('refuses another vendor, an expired certificate, a certificate for another key, and no certificate', () => {
    const v = vendor();
    const other = vendor();
    expect(() => EkTrust.of([other.rootCert, other.interCert]).verify(v.ek.spki, v.ekCert.raw, now)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_EK_CHAIN' }));
    const expired = cert('', v.ek.spki, 'Vendor EK CA', v.inter.key, false, now - 10 * DAY, now - DAY);
    expect(() => EkTrust.of([v.rootCert, v.interCert]).verify(v.ek.spki, expired.raw, now)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_EK_CHAIN' }));
    expect(() => EkTrust.of([v.rootCert, v.interCert]).verify(other.ek.spki, v.ekCert.raw, now)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_EK_MISMATCH' }));
    expect(() => EkTrust.of([v.rootCert]).verify(v.ek.spki, undefined, now)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_EK_CERT_MISSING' }));
    // only the root pinned: the intermediate is not trusted implicitly
    expect(() => EkTrust.of([v.rootCert]).verify(v.ek.spki, v.ekCert.raw, now)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_EK_CHAIN' }));
  });

  it('uses the allow-list only when configured, for missing or untrusted certificates', () => {
    const v = vendor();
    const hash = createHash('sha256').update(v.ek.spki).digest('hex');
    expect(EkTrust.of([], new Set([hash])).verify(v.ek.spki, undefined, now).method).toBe('allow-list');
    expect(EkTrust.of([vendor().rootCert], new Set([hash])).verify(v.ek.spki, v.ekCert.raw, now).method).toBe('allow-list');
    expect(() => EkTrust.of([], new Set(['00'.repeat(32)])).verify(v.ek.spki, undefined, now)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_EK_NOT_ALLOWED' }));
    expect(() => EkTrust.of([])).toThrow(expect.objectContaining({ code: 'OUTPOST_E_IDENTITY_TRUST_CONFIG' }));
  });
});

describe('X.509 and PKCS#10 encoding', () => {
  it('encodes DER integers minimally and positive', () => {
    expect(der.int(0).toString('hex')).toBe('020100');
    expect(der.int(0x80).toString('hex')).toBe('02020080');
    expect(der.int(Buffer.from([0, 0, 0x7f])).toString('hex')).toBe('02017f');
    expect(der.int(0x81000001).toString('hex')).toBe('02050081000001');
  });

  it('round-trips a CSR and detects tampering', () => {
    const k = ec();
    const info = csrInfo(encodeName([['CN', 'GW-1']]), k.spki);
    const csr = assembleCsr(info, sign('sha256', info, k.key));
    const parsed = parseAndVerifyCsr(csr);
    expect(parsed.commonName).toBe('GW-1');
    expect(parsed.spki.equals(k.spki)).toBe(true);
    const tampered = Buffer.from(csr);
    tampered[csr.indexOf(Buffer.from('GW-1'))] = 0x48; // 'H'
    expect(() => parseAndVerifyCsr(tampered)).toThrow('bad signature');
    expect(() => parseAndVerifyCsr(csr.subarray(0, 40))).toThrow();
  });

  it('issues certificates Node parses with the requested extensions; trims padded DER', () => {
    const ca = ec();
    const c = new X509Certificate(
      issueCertificate(
        {
          serial: Buffer.from([1]),
          issuer: encodeName([['CN', 'CA']]),
          subject: encodeName([['O', 'Acme'], ['CN', 'GW-9']]),
          notBefore: new Date(now),
          notAfter: new Date(Date.parse('2051-01-01T00:00:00Z')),
          spki: ec().spki,
          extensions: [extensions.keyUsage(KU.digitalSignature), extensions.subjectAltName({ uris: ['urn:outpost:gw:GW-9'], ips: ['127.0.0.1'] })],
        },
        ca.key,
      ),
    );
    expect(c.subject).toBe('O=Acme\nCN=GW-9');
    expect(c.subjectAltName).toContain('URI:urn:outpost:gw:GW-9');
    expect(c.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(new Date(c.validTo).getUTCFullYear()).toBe(2051); // GeneralizedTime from 2050 on
    expect(c.verify(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toBe(false);
    expect(trimDer(Buffer.concat([c.raw, Buffer.alloc(16, 0xff)])).equals(c.raw)).toBe(true);
  });
});

describe('TSS2 PRIVATE KEY files', () => {
  it('round-trips and stores the parent as a positive INTEGER', () => {
    const k = { parent: 0x81000001, emptyAuth: true, publicArea: randomBytes(88), privateBlob: randomBytes(126) };
    const pem = encodeTss2Key(k);
    expect(pem).toMatch(/^-----BEGIN TSS2 PRIVATE KEY-----\n/);
    expect(decodeTss2Key(pem)).toEqual(k);
    const body = Buffer.from(pem.split('\n').slice(1, -2).join(''), 'base64');
    expect(readTlv(body).raw.length).toBe(body.length);
    expect(body.includes(Buffer.from('02050081000001', 'hex'))).toBe(true);
    expect(() => decodeTss2Key('-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n')).toThrow();
  });
});
