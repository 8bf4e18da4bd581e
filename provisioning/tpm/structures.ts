import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_ALG, TPM_ECC, nodeHashName } from './constants.js';
import { TpmReader, TpmWriter } from './marshal.js';

/** TPM structures Outpost marshals: TPMT_PUBLIC (RSA, ECC, KEYEDHASH), TPMS_NV_PUBLIC, TPML_PCR_SELECTION, TPMT_SIGNATURE. */

export interface SymDef {
  readonly algorithm: number;
  readonly keyBits?: number;
  readonly mode?: number;
}

export interface Scheme {
  readonly scheme: number;
  readonly hashAlg?: number;
}

export type PublicParams =
  | { readonly type: typeof TPM_ALG.RSA; readonly symmetric: SymDef; readonly scheme: Scheme; readonly keyBits: number; readonly exponent: number; readonly modulus: Buffer }
  | { readonly type: typeof TPM_ALG.ECC; readonly symmetric: SymDef; readonly scheme: Scheme; readonly curve: number; readonly kdf: Scheme; readonly x: Buffer; readonly y: Buffer }
  | { readonly type: typeof TPM_ALG.KEYEDHASH; readonly scheme: Scheme; readonly unique: Buffer };

/** A TPMT_PUBLIC. Templates are built as values of this type; parsed ones keep their exact bytes in `raw`. */
export type TpmPublic = {
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Buffer;
} & PublicParams;

function writeSym(w: TpmWriter, s: SymDef): void {
  w.u16(s.algorithm);
  if (s.algorithm !== TPM_ALG.NULL) w.u16(s.keyBits ?? 0).u16(s.mode ?? 0);
}

function readSym(r: TpmReader): SymDef {
  const algorithm = r.u16();
  if (algorithm === TPM_ALG.NULL) return { algorithm };
  return { algorithm, keyBits: r.u16(), mode: r.u16() };
}

/** RSAES (0x15) and NULL carry no hash; every other scheme does (ECDAA adds a count, unsupported here). */
function writeScheme(w: TpmWriter, s: Scheme): void {
  w.u16(s.scheme);
  if (s.scheme !== TPM_ALG.NULL && s.scheme !== 0x0015) w.u16(s.hashAlg ?? TPM_ALG.SHA256);
}

function readScheme(r: TpmReader): Scheme {
  const scheme = r.u16();
  if (scheme === TPM_ALG.NULL || scheme === 0x0015) return { scheme };
  if (scheme === 0x001a) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'ECDAA schemes are not supported', { details: { scheme } });
  return { scheme, hashAlg: r.u16() };
}

export function writePublic(w: TpmWriter, p: TpmPublic): void {
  w.u16(p.type).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy);
  switch (p.type) {
    case TPM_ALG.RSA:
      writeSym(w, p.symmetric);
      writeScheme(w, p.scheme);
      w.u16(p.keyBits).u32(p.exponent).tpm2b(p.modulus);
      return;
    case TPM_ALG.ECC:
      writeSym(w, p.symmetric);
      writeScheme(w, p.scheme);
      w.u16(p.curve);
      writeScheme(w, p.kdf);
      w.tpm2b(p.x).tpm2b(p.y);
      return;
    case TPM_ALG.KEYEDHASH:
      w.u16(p.scheme.scheme);
      if (p.scheme.scheme === TPM_ALG.HMAC) w.u16(p.scheme.hashAlg ?? TPM_ALG.SHA256);
      else if (p.scheme.scheme !== TPM_ALG.NULL) throw new RangeError('only HMAC and NULL keyed-hash schemes are supported');
      w.tpm2b(p.unique);
      return;
  }
}

export function readPublic(r: TpmReader): TpmPublic {
  const type = r.u16();
  const nameAlg = r.u16();
  const attributes = r.u32();
  const authPolicy = r.tpm2b();
  const head = { nameAlg, attributes, authPolicy };
  switch (type) {
    case TPM_ALG.RSA: {
      const symmetric = readSym(r);
      const scheme = readScheme(r);
      return { ...head, type, symmetric, scheme, keyBits: r.u16(), exponent: r.u32(), modulus: r.tpm2b() };
    }
    case TPM_ALG.ECC: {
      const symmetric = readSym(r);
      const scheme = readScheme(r);
      const curve = r.u16();
      const kdf = readScheme(r);
      return { ...head, type, symmetric, scheme, curve, kdf, x: r.tpm2b(), y: r.tpm2b() };
    }
    case TPM_ALG.KEYEDHASH: {
      const s = r.u16();
      const scheme = s === TPM_ALG.NULL ? { scheme: s } : { scheme: s, hashAlg: r.u16() };
      if (s !== TPM_ALG.NULL && s !== TPM_ALG.HMAC) r.u16(); // XOR: kdf
      return { ...head, type, scheme, unique: r.tpm2b() };
    }
    default:
      throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'unsupported public area type', { details: { type } });
  }
}

/** The marshalled TPMT_PUBLIC (not the TPM2B around it). */
export function marshalPublic(p: TpmPublic): Buffer {
  const w = new TpmWriter();
  writePublic(w, p);
  return w.toBuffer();
}

export function parsePublic(tpmtPublic: Buffer): TpmPublic {
  const r = new TpmReader(tpmtPublic, 'TPMT_PUBLIC');
  const p = readPublic(r);
  r.end();
  return p;
}

/** Name of an object: nameAlg ‖ H_nameAlg(TPMT_PUBLIC). */
export function objectName(tpmtPublic: Buffer): Buffer {
  const alg = tpmtPublic.readUInt16BE(2);
  const h = nodeHashName(alg);
  if (h === undefined) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'unsupported name algorithm', { details: { nameAlg: alg } });
  const w = new TpmWriter(2);
  w.u16(alg);
  return Buffer.concat([w.toBuffer(), createHash(h).update(tpmtPublic).digest()]);
}

const CURVES: Record<number, { crv: string; size: number }> = {
  [TPM_ECC.NIST_P256]: { crv: 'P-256', size: 32 },
  [TPM_ECC.NIST_P384]: { crv: 'P-384', size: 48 },
  [TPM_ECC.NIST_P521]: { crv: 'P-521', size: 66 },
};

export function curveInfo(curve: number): { crv: string; size: number } {
  const c = CURVES[curve];
  if (c === undefined) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'unsupported ECC curve', { details: { curve } });
  return c;
}

/** The public key of an RSA or ECC object as a Node KeyObject. */
export function publicKeyObject(p: TpmPublic): KeyObject {
  const b64 = (b: Buffer) => b.toString('base64url');
  if (p.type === TPM_ALG.RSA) {
    const e = Buffer.alloc(4);
    e.writeUInt32BE(p.exponent === 0 ? 65537 : p.exponent);
    let i = 0;
    while (i < 3 && e[i] === 0) i++;
    return createPublicKey({ key: { kty: 'RSA', n: b64(p.modulus), e: b64(e.subarray(i)) }, format: 'jwk' });
  }
  if (p.type === TPM_ALG.ECC) {
    const { crv, size } = curveInfo(p.curve);
    const pad = (b: Buffer) => (b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]));
    return createPublicKey({ key: { kty: 'EC', crv, x: b64(pad(p.x)), y: b64(pad(p.y)) }, format: 'jwk' });
  }
  throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'a keyed-hash object has no public key', { details: { type: p.type } });
}

/** DER SubjectPublicKeyInfo of an RSA or ECC object. */
export function spkiDer(p: TpmPublic): Buffer {
  return publicKeyObject(p).export({ type: 'spki', format: 'der' });
}

/** TPMS_NV_PUBLIC. */
export interface NvPublic {
  readonly nvIndex: number;
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Buffer;
  readonly dataSize: number;
}

export function writeNvPublic(w: TpmWriter, p: NvPublic): void {
  w.u32(p.nvIndex).u16(p.nameAlg).u32(p.attributes).tpm2b(p.authPolicy).u16(p.dataSize);
}

export function readNvPublic(r: TpmReader): NvPublic {
  return { nvIndex: r.u32(), nameAlg: r.u16(), attributes: r.u32(), authPolicy: r.tpm2b(), dataSize: r.u16() };
}

/** One bank of a TPML_PCR_SELECTION. */
export interface PcrSelection {
  readonly hash: number;
  readonly pcrs: readonly number[];
}

export function writePcrSelections(w: TpmWriter, sel: readonly PcrSelection[]): void {
  w.u32(sel.length);
  for (const s of sel) {
    const bits = Buffer.alloc(Math.max(3, Math.ceil((Math.max(-1, ...s.pcrs) + 1) / 8)));
    for (const pcr of s.pcrs) bits[pcr >> 3] = (bits[pcr >> 3] ?? 0) | (1 << (pcr & 7));
    w.u16(s.hash).u8(bits.length).bytes(bits);
  }
}

export function readPcrSelections(r: TpmReader): PcrSelection[] {
  const n = r.u32();
  const out: PcrSelection[] = [];
  for (let i = 0; i < n; i++) {
    const hash = r.u16();
    const bits = r.bytes(r.u8());
    const pcrs: number[] = [];
    for (let b = 0; b < bits.length * 8; b++) if ((bits[b >> 3] ?? 0) & (1 << (b & 7))) pcrs.push(b);
    out.push({ hash, pcrs });
  }
  return out;
}

/** TPMT_SIGNATURE, for the ECDSA and RSASSA/RSAPSS schemes. */
export type TpmSignature =
  | { readonly sigAlg: typeof TPM_ALG.ECDSA; readonly hash: number; readonly r: Buffer; readonly s: Buffer }
  | { readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS; readonly hash: number; readonly sig: Buffer };

export function readSignature(r: TpmReader): TpmSignature {
  const sigAlg = r.u16();
  if (sigAlg === TPM_ALG.ECDSA) return { sigAlg, hash: r.u16(), r: r.tpm2b(), s: r.tpm2b() };
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) return { sigAlg, hash: r.u16(), sig: r.tpm2b() };
  throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'unsupported signature algorithm', { details: { sigAlg } });
}
