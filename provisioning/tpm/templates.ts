import { TPM_ALG, TPM_ECC, TPMA_OBJECT as A } from './constants.js';
import { POLICY_A_SHA256 } from './policy.js';
import type { TpmPublic } from './structures.js';

/**
 * Frozen public-area templates. Any byte change gives a different primary key (and a different
 * Name), so each template is pinned by a test against tpm2-tools (`tpm2_createek`, the TCG SRK).
 */

const AES128CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB } as const;
const NULL_SYM = { algorithm: TPM_ALG.NULL } as const;
const NULL_SCHEME = { scheme: TPM_ALG.NULL } as const;
const EK_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt;

/** TCG EK Credential Profile template L-1: RSA-2048 EK (cert at NV 0x01C00002). */
export const EK_RSA2048_TEMPLATE: TpmPublic = {
  type: TPM_ALG.RSA,
  nameAlg: TPM_ALG.SHA256,
  attributes: EK_ATTRS,
  authPolicy: POLICY_A_SHA256,
  symmetric: AES128CFB,
  scheme: NULL_SCHEME,
  keyBits: 2048,
  exponent: 0,
  modulus: Buffer.alloc(256),
};

/** TCG EK Credential Profile template L-2: ECC NIST P-256 EK (cert at NV 0x01C0000A). */
export const EK_P256_TEMPLATE: TpmPublic = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  attributes: EK_ATTRS,
  authPolicy: POLICY_A_SHA256,
  symmetric: AES128CFB,
  scheme: NULL_SCHEME,
  curve: TPM_ECC.NIST_P256,
  kdf: NULL_SCHEME,
  x: Buffer.alloc(32),
  y: Buffer.alloc(32),
};

/** TCG provisioning guidance ECC P-256 SRK, with noDA: a restricted decryption (storage) key, empty auth. */
export const SRK_ECC_TEMPLATE: TpmPublic = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  attributes: A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.decrypt,
  authPolicy: Buffer.alloc(0),
  symmetric: AES128CFB,
  scheme: NULL_SCHEME,
  curve: TPM_ECC.NIST_P256,
  kdf: NULL_SCHEME,
  x: Buffer.alloc(32),
  y: Buffer.alloc(32),
};

/** Attributes every Outpost device key has: non-exportable, generated inside, signing only, no dictionary-attack counting. */
export const DEVICE_KEY_ATTRIBUTES = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.sign;

/** The device identity key: ECC P-256, ECDSA/SHA-256, created under the SRK. */
export const DEVICE_KEY_TEMPLATE: TpmPublic = {
  type: TPM_ALG.ECC,
  nameAlg: TPM_ALG.SHA256,
  attributes: DEVICE_KEY_ATTRIBUTES,
  authPolicy: Buffer.alloc(0),
  symmetric: NULL_SYM,
  scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
  curve: TPM_ECC.NIST_P256,
  kdf: NULL_SCHEME,
  x: Buffer.alloc(0),
  y: Buffer.alloc(0),
};

/** A sealed data object bound to `authPolicy` (no password use: userWithAuth clear), noDA. */
export function sealedTemplate(authPolicy: Buffer): TpmPublic {
  return {
    type: TPM_ALG.KEYEDHASH,
    nameAlg: TPM_ALG.SHA256,
    attributes: A.fixedTPM | A.fixedParent | A.noDA,
    authPolicy,
    scheme: NULL_SCHEME,
    unique: Buffer.alloc(0),
  };
}

/**
 * True when `actual` (read from the TPM) was made from `template`: every field but the unique
 * value (the public key the TPM filled in) is equal.
 */
export function matchesTemplate(actual: TpmPublic, template: TpmPublic): boolean {
  if (actual.type !== template.type || actual.nameAlg !== template.nameAlg || actual.attributes !== template.attributes) return false;
  if (!actual.authPolicy.equals(template.authPolicy)) return false;
  const sym = (a: { algorithm: number; keyBits?: number; mode?: number }, b: typeof a) => a.algorithm === b.algorithm && a.keyBits === b.keyBits && a.mode === b.mode;
  const sch = (a: { scheme: number; hashAlg?: number }, b: typeof a) => a.scheme === b.scheme && a.hashAlg === b.hashAlg;
  if (actual.type === TPM_ALG.RSA && template.type === TPM_ALG.RSA) {
    return sym(actual.symmetric, template.symmetric) && sch(actual.scheme, template.scheme) && actual.keyBits === template.keyBits && actual.exponent === template.exponent;
  }
  if (actual.type === TPM_ALG.ECC && template.type === TPM_ALG.ECC) {
    return sym(actual.symmetric, template.symmetric) && sch(actual.scheme, template.scheme) && actual.curve === template.curve && sch(actual.kdf, template.kdf);
  }
  if (actual.type === TPM_ALG.KEYEDHASH && template.type === TPM_ALG.KEYEDHASH) return sch(actual.scheme, template.scheme);
  return false;
}
