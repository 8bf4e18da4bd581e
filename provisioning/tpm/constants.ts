/** TPM 2.0 constants used by Outpost (TPM 2.0 Library spec Part 2). Values only; no state. */

export const TPM_ST = { NO_SESSIONS: 0x8001, SESSIONS: 0x8002, HASHCHECK: 0x8024, ATTEST_CREATION: 0x801a } as const;

export const TPM_SU = { CLEAR: 0x0000, STATE: 0x0001 } as const;

export const TPM_CC = {
  NV_UndefineSpace: 0x122,
  EvictControl: 0x120,
  NV_DefineSpace: 0x12a,
  CreatePrimary: 0x131,
  NV_Increment: 0x134,
  DictionaryAttackLockReset: 0x139,
  DictionaryAttackParameters: 0x13a,
  Startup: 0x144,
  Shutdown: 0x145,
  ActivateCredential: 0x147,
  NV_Read: 0x14e,
  PolicySecret: 0x151,
  Create: 0x153,
  Load: 0x157,
  Sign: 0x15d,
  Unseal: 0x15e,
  FlushContext: 0x165,
  NV_ReadPublic: 0x169,
  PolicyOR: 0x171,
  ReadPublic: 0x173,
  StartAuthSession: 0x176,
  GetCapability: 0x17a,
  GetRandom: 0x17b,
  PCR_Read: 0x17e,
  PolicyPCR: 0x17f,
  PCR_Extend: 0x182,
  PolicyGetDigest: 0x189,
} as const;

export type TpmCommandName = keyof typeof TPM_CC;

/** Permanent and reserved handles. */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  PW: 0x40000009,
  LOCKOUT: 0x4000000a,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** First handle of each handle range (the top byte is the handle type). */
export const TPM_HR = {
  PCR: 0x00000000,
  NV_INDEX: 0x01000000,
  HMAC_SESSION: 0x02000000,
  POLICY_SESSION: 0x03000000,
  TRANSIENT: 0x80000000,
  PERSISTENT: 0x81000000,
} as const;

export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  KEYEDHASH: 0x0008,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  RSASSA: 0x0014,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CFB: 0x0043,
} as const;

export const TPM_ECC = { NIST_P256: 0x0003, NIST_P384: 0x0004, NIST_P521: 0x0005 } as const;

export const TPM_SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

export const TPM_CAP = { ALGS: 0, HANDLES: 1, COMMANDS: 2, PCRS: 5, TPM_PROPERTIES: 6 } as const;

/** TPM_PT property tags (PT_FIXED = 0x100, PT_VAR = 0x200). */
export const TPM_PT = {
  FAMILY_INDICATOR: 0x100,
  REVISION: 0x102,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  VENDOR_STRING_2: 0x107,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  INPUT_BUFFER: 0x10d,
  HR_TRANSIENT_MIN: 0x10e,
  HR_PERSISTENT_MIN: 0x10f,
  NV_BUFFER_MAX: 0x12c,
  MAX_COMMAND_SIZE: 0x11e,
  PERMANENT: 0x200,
  STARTUP_CLEAR: 0x201,
  LOCKOUT_COUNTER: 0x20e,
  MAX_AUTH_FAIL: 0x20f,
  LOCKOUT_INTERVAL: 0x210,
  LOCKOUT_RECOVERY: 0x211,
} as const;

/** TPMA_PERMANENT bits (TPM_PT_PERMANENT). */
export const TPMA_PERMANENT = {
  ownerAuthSet: 1 << 0,
  endorsementAuthSet: 1 << 1,
  lockoutAuthSet: 1 << 2,
  disableClear: 1 << 8,
  inLockout: 1 << 9,
  tpmGeneratedEPS: 1 << 10,
} as const;

/** TPMA_OBJECT bits. */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
} as const;

/** TPMA_NV bits; the index type (TPM_NT) sits in bits 4..7. */
export const TPMA_NV = {
  PPWRITE: 1 << 0,
  OWNERWRITE: 1 << 1,
  AUTHWRITE: 1 << 2,
  POLICYWRITE: 1 << 3,
  NT_COUNTER: 0x1 << 4,
  POLICY_DELETE: 1 << 10,
  WRITELOCKED: 1 << 11,
  WRITEALL: 1 << 12,
  WRITEDEFINE: 1 << 13,
  WRITE_STCLEAR: 1 << 14,
  PPREAD: 1 << 16,
  OWNERREAD: 1 << 17,
  AUTHREAD: 1 << 18,
  POLICYREAD: 1 << 19,
  NO_DA: 1 << 25,
  ORDERLY: 1 << 26,
  CLEAR_STCLEAR: 1 << 27,
  READLOCKED: 1 << 28,
  WRITTEN: 1 << 29,
  PLATFORMCREATE: 1 << 30,
} as const;

/** TPMA_SESSION bits. */
export const TPMA_SESSION = { continueSession: 0x01, auditExclusive: 0x02, auditReset: 0x04, decrypt: 0x20, encrypt: 0x40, audit: 0x80 } as const;

/** Digest sizes of the hash algorithms Outpost uses. */
export function digestSize(alg: number): number {
  switch (alg) {
    case TPM_ALG.SHA1:
      return 20;
    case TPM_ALG.SHA256:
      return 32;
    case TPM_ALG.SHA384:
      return 48;
    case TPM_ALG.SHA512:
      return 64;
    default:
      return 0;
  }
}

/** Node's name of a TPM hash algorithm, or undefined when unsupported. */
export function nodeHashName(alg: number): 'sha1' | 'sha256' | 'sha384' | 'sha512' | undefined {
  switch (alg) {
    case TPM_ALG.SHA1:
      return 'sha1';
    case TPM_ALG.SHA256:
      return 'sha256';
    case TPM_ALG.SHA384:
      return 'sha384';
    case TPM_ALG.SHA512:
      return 'sha512';
    default:
      return undefined;
  }
}

/** Name of a command code, for logs and error details. */
export function commandName(cc: number): string {
  for (const [name, code] of Object.entries(TPM_CC)) if (code === cc) return name;
  return `0x${cc.toString(16)}`;
}

export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
