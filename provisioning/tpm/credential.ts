import { createCipheriv, createECDH, createHash, createHmac, publicEncrypt, constants, randomBytes } from 'node:crypto';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_ALG, digestSize, nodeHashName } from './constants.js';
import { TpmWriter } from './marshal.js';
import { curveInfo, publicKeyObject, type TpmPublic } from './structures.js';

/**
 * The CA side of TPM credential activation, in software (Part 1 §24, TPM2_MakeCredential without a TPM).
 * The credential can only be recovered by TPM2_ActivateCredential on the TPM holding the EK's
 * private part, and only while an object with exactly `objectName` is loaded there.
 */

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

function hashName(alg: number): string {
  const h = nodeHashName(alg);
  if (h === undefined) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'unsupported name algorithm', { details: { nameAlg: alg } });
  return h;
}

function label(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'latin1');
}

/** KDFa (SP 800-108 counter mode with HMAC), Part 1 §11.4.10.2. */
export function kdfa(hashAlg: number, key: Uint8Array, lbl: string, contextU: Uint8Array, contextV: Uint8Array, bits: number): Buffer {
  const h = hashName(hashAlg);
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const block = createHmac(h, key).update(u32(i)).update(label(lbl)).update(contextU).update(contextV).update(u32(bits)).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

/** KDFe (SP 800-56A concatenation KDF), Part 1 §11.4.10.3. */
export function kdfe(hashAlg: number, z: Uint8Array, lbl: string, partyU: Uint8Array, partyV: Uint8Array, bits: number): Buffer {
  const h = hashName(hashAlg);
  const out: Buffer[] = [];
  let have = 0;
  for (let i = 1; have * 8 < bits; i++) {
    const block = createHash(h).update(u32(i)).update(z).update(label(lbl)).update(partyU).update(partyV).digest();
    out.push(block);
    have += block.length;
  }
  return Buffer.concat(out).subarray(0, Math.ceil(bits / 8));
}

function pad(b: Buffer, size: number): Buffer {
  return b.length >= size ? b : Buffer.concat([Buffer.alloc(size - b.length), b]);
}

/** Seed and its encryption to the EK (RSA-OAEP or ECDH), Part 1 Annex B.10.3 / C.6.4. */
function secretForEk(ek: TpmPublic): { seed: Buffer; encryptedSecret: Buffer } {
  const nameHash = hashName(ek.nameAlg);
  const seedSize = digestSize(ek.nameAlg);
  if (ek.type === TPM_ALG.RSA) {
    const seed = randomBytes(seedSize);
    const encryptedSecret = publicEncrypt(
      { key: publicKeyObject(ek), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: nameHash, oaepLabel: label('IDENTITY') },
      seed,
    );
    return { seed, encryptedSecret };
  }
  if (ek.type === TPM_ALG.ECC) {
    const { crv, size } = curveInfo(ek.curve);
    const curveName = { 'P-256': 'prime256v1', 'P-384': 'secp384r1', 'P-521': 'secp521r1' }[crv] ?? crv;
    const ecdh = createECDH(curveName);
    const ephemeral = ecdh.generateKeys();
    const ex = ephemeral.subarray(1, 1 + size);
    const ey = ephemeral.subarray(1 + size);
    const z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), pad(ek.x, size), pad(ek.y, size)]));
    const seed = kdfe(ek.nameAlg, z, 'IDENTITY', ex, pad(ek.x, size), seedSize * 8);
    const w = new TpmWriter();
    w.tpm2b(ex).tpm2b(ey);
    return { seed, encryptedSecret: w.toBuffer() };
  }
  throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'an EK must be an RSA or ECC decryption key', { details: { type: ek.type } });
}

function symKeyBits(ek: TpmPublic): number {
  if (ek.type === TPM_ALG.KEYEDHASH || ek.symmetric.algorithm !== TPM_ALG.AES || ek.symmetric.mode !== TPM_ALG.CFB) {
    throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'the EK must use AES-CFB as its symmetric algorithm', { details: { type: ek.type } });
  }
  return ek.symmetric.keyBits ?? 128;
}

export interface MadeCredential {
  /** TPM2B_ID_OBJECT content: integrityHMAC (TPM2B) ‖ encIdentity. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET content: the seed encrypted to the EK. */
  readonly encryptedSecret: Buffer;
}

/** TPM2_MakeCredential in software: wraps `credential` (≤ the EK name digest size) for the object `objectName`. */
export function makeCredential(ek: TpmPublic, objectName: Uint8Array, credential: Uint8Array): MadeCredential {
  if (credential.length === 0 || credential.length > digestSize(ek.nameAlg)) {
    throw new RangeError(`credential must be 1..${digestSize(ek.nameAlg)} bytes`);
  }
  const bits = symKeyBits(ek);
  const { seed, encryptedSecret } = secretForEk(ek);
  const symKey = kdfa(ek.nameAlg, seed, 'STORAGE', objectName, new Uint8Array(0), bits);
  const plain = new TpmWriter().tpm2b(credential).toBuffer();
  const cipher = createCipheriv(`aes-${bits}-cfb`, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([cipher.update(plain), cipher.final()]);
  const hmacKey = kdfa(ek.nameAlg, seed, 'INTEGRITY', new Uint8Array(0), new Uint8Array(0), digestSize(ek.nameAlg) * 8);
  const outerHmac = createHmac(hashName(ek.nameAlg), hmacKey).update(encIdentity).update(objectName).digest();
  return { credentialBlob: new TpmWriter().tpm2b(outerHmac).bytes(encIdentity).toBuffer(), encryptedSecret };
}
