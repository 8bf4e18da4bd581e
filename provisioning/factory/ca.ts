import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Clock } from '../../hal/clock.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../fs-atomic.js';
import { children, pemEncode, readTlv } from '../x509/der.js';
import { KU, OID, encodeName, extensions, issueCertificate } from '../x509/x509.js';

/**
 * The factory PKI: an offline Device Root CA and a Factory Issuing CA that certifies device keys.
 * Directory layout (every key 0600):
 *   root/root-ca.key.pem   root private key: move it to offline custody after `ca init`
 *   root/root-ca.pem       root certificate (the trust anchor brokers are given)
 *   issuing/issuing-ca.key.pem, issuing/issuing-ca.pem
 *   chain.pem              issuing CA + root, what devices present after their own certificate
 *   ca.json                organization and validity settings
 * Invariants: an opened CA's issuing certificate verifies under its root and matches its private
 * key; device certificates never outlive the issuing CA.
 */
export interface CaSettings {
  readonly version: 1;
  readonly organization: string;
  readonly deviceValidityDays: number;
  readonly createdAt: string;
}

const DAY = 86_400_000;

function keyPair(): { privateKey: KeyObject; spki: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, spki: publicKey.export({ type: 'spki', format: 'der' }) };
}

function serialNumber(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f || 0x01;
  return b;
}

export class FactoryCa {
  private constructor(
    readonly dir: string,
    readonly settings: CaSettings,
    private readonly issuingKey: KeyObject,
    readonly issuingCert: X509Certificate,
    readonly rootCert: X509Certificate,
  ) {}

  static paths(dir: string) {
    return {
      rootKey: join(dir, 'root', 'root-ca.key.pem'),
      rootCert: join(dir, 'root', 'root-ca.pem'),
      issuingKey: join(dir, 'issuing', 'issuing-ca.key.pem'),
      issuingCert: join(dir, 'issuing', 'issuing-ca.pem'),
      chain: join(dir, 'chain.pem'),
      settings: join(dir, 'ca.json'),
      issued: join(dir, 'issued'),
      ledger: join(dir, 'ledger.jsonl'),
    };
  }

  /** Creates the root and issuing CA; refuses a directory that already holds a CA. */
  static async init(
    dir: string,
    options: { organization: string; clock: Clock; rootValidityYears?: number; issuingValidityYears?: number; deviceValidityDays?: number },
  ): Promise<FactoryCa> {
    const p = FactoryCa.paths(dir);
    if (existsSync(p.settings) || existsSync(p.rootKey) || existsSync(p.issuingKey)) {
      throw new OutpostError('OUTPOST_E_FACTORY_CA', 'this directory already holds a factory CA; refusing to overwrite it', { details: { dir } });
    }
    if (!/^[\x20-\x7e]{1,64}$/.test(options.organization)) {
      throw new OutpostError('OUTPOST_E_FACTORY_CA', 'the organization name must be 1..64 printable ASCII characters', { details: { organization: options.organization } });
    }
    const now = new Date(options.clock.now());
    const notBefore = new Date(now.getTime() - 60_000);
    const root = keyPair();
    const rootName = encodeName([['O', options.organization], ['CN', `${options.organization} Device Root CA`]]);
    const rootDer = issueCertificate(
      {
        serial: serialNumber(),
        issuer: rootName,
        subject: rootName,
        notBefore,
        notAfter: new Date(now.getTime() + (options.rootValidityYears ?? 30) * 365 * DAY),
        spki: root.spki,
        extensions: [extensions.basicConstraints(true, 1), extensions.keyUsage(KU.keyCertSign | KU.cRLSign), extensions.subjectKeyIdentifier(root.spki)],
      },
      root.privateKey,
    );
    const issuing = keyPair();
    const issuingName = encodeName([['O', options.organization], ['CN', `${options.organization} Factory Issuing CA`]]);
    const issuingDer = issueCertificate(
      {
        serial: serialNumber(),
        issuer: rootName,
        subject: issuingName,
        notBefore,
        notAfter: new Date(now.getTime() + (options.issuingValidityYears ?? 20) * 365 * DAY),
        spki: issuing.spki,
        extensions: [
          extensions.basicConstraints(true, 0),
          extensions.keyUsage(KU.keyCertSign | KU.cRLSign),
          extensions.subjectKeyIdentifier(issuing.spki),
          extensions.authorityKeyIdentifier(root.spki),
        ],
      },
      root.privateKey,
    );
    const settings: CaSettings = { version: 1, organization: options.organization, deviceValidityDays: options.deviceValidityDays ?? 20 * 365, createdAt: now.toISOString() };
    const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }) as string;
    await writeFileAtomic(p.rootKey, pem(root.privateKey), 0o600);
    await writeFileAtomic(p.rootCert, pemEncode('CERTIFICATE', rootDer));
    await writeFileAtomic(p.issuingKey, pem(issuing.privateKey), 0o600);
    await writeFileAtomic(p.issuingCert, pemEncode('CERTIFICATE', issuingDer));
    await writeFileAtomic(p.chain, pemEncode('CERTIFICATE', issuingDer) + pemEncode('CERTIFICATE', rootDer));
    await writeFileAtomic(p.settings, `${JSON.stringify(settings, null, 2)}\n`);
    return FactoryCa.open(dir);
  }

  /** Opens the issuing side (the root private key is not needed and may be offline). */
  static async open(dir: string): Promise<FactoryCa> {
    const p = FactoryCa.paths(dir);
    let settings: CaSettings;
    let key: KeyObject;
    let issuing: X509Certificate;
    let root: X509Certificate;
    try {
      settings = JSON.parse(await readFile(p.settings, 'utf8')) as CaSettings;
      key = createPrivateKey(await readFile(p.issuingKey, 'utf8'));
      issuing = new X509Certificate(await readFile(p.issuingCert));
      root = new X509Certificate(await readFile(p.rootCert));
    } catch (e) {
      throw new OutpostError('OUTPOST_E_FACTORY_CA', 'the factory CA directory is missing or incomplete (run `outpost factory ca init`)', { cause: e, details: { dir } });
    }
    if (settings.version !== 1 || !(settings.deviceValidityDays > 0)) {
      throw new OutpostError('OUTPOST_E_FACTORY_CA', 'ca.json is not a version-1 factory CA settings file', { details: { dir } });
    }
    if (!issuing.verify(root.publicKey) || !issuing.checkPrivateKey(key)) {
      throw new OutpostError('OUTPOST_E_FACTORY_CA', 'the issuing CA certificate does not match its root or its private key', { details: { dir } });
    }
    return new FactoryCa(dir, settings, key, issuing, root);
  }

  /** Issues a device certificate: O=<org>, CN=<serial>, SAN urn:outpost:gw:<serial>, clientAuth, the EK hash extension. */
  issueDeviceCertificate(req: { serial: string; spki: Buffer; ekSpkiSha256: string; now: number }): Buffer {
    const issuingSpki = this.issuingCert.publicKey.export({ type: 'spki', format: 'der' });
    const issuingNotAfter = new Date(this.issuingCert.validTo).getTime();
    return issueCertificate(
      {
        serial: serialNumber(),
        issuer: Buffer.from(this.issuingSubjectDer()),
        subject: encodeName([['O', this.settings.organization], ['CN', req.serial]]),
        notBefore: new Date(req.now - 60_000),
        notAfter: new Date(Math.min(req.now + this.settings.deviceValidityDays * DAY, issuingNotAfter)),
        spki: req.spki,
        extensions: [
          extensions.basicConstraints(false),
          extensions.keyUsage(KU.digitalSignature),
          extensions.extKeyUsage(OID.clientAuth),
          extensions.subjectAltName({ uris: [`urn:outpost:gw:${req.serial}`] }),
          extensions.subjectKeyIdentifier(req.spki),
          extensions.authorityKeyIdentifier(issuingSpki),
          extensions.ekHash(Buffer.from(req.ekSpkiSha256, 'hex')),
        ],
      },
      this.issuingKey,
    );
  }

  /** The issuing CA's subject Name as DER (copied from its certificate, so issuer == subject byte for byte). */
  private issuingSubjectDer(): Buffer {
    return subjectDer(this.issuingCert.raw);
  }

  /** PEM of issuing CA + root: what follows a device certificate in its chain. */
  chainPem(): string {
    return pemEncode('CERTIFICATE', this.issuingCert.raw) + pemEncode('CERTIFICATE', this.rootCert.raw);
  }
}


/** The subject Name DER of a certificate (TBSCertificate field 6, after the optional version). */
export function subjectDer(certDer: Buffer): Buffer {
  const [tbs] = children(readTlv(certDer));
  if (tbs === undefined) throw new Error('not a certificate');
  const fields = children(tbs);
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4];
  if (subject === undefined) throw new Error('certificate without subject');
  return Buffer.from(subject.raw);
}
