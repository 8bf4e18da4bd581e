import { OutpostError } from '../../src/errors/outpost-error.js';
import type { ErrorCode } from '../../src/errors/catalog.js';
import { hex32 } from './constants.js';

/** TPM response-code decoding (Part 2 §6.6): names, format-1 parameter/handle/session numbers, retryable warnings. */

const FMT1: Record<number, string> = {
  0x01: 'ASYMMETRIC', 0x02: 'ATTRIBUTES', 0x03: 'HASH', 0x04: 'VALUE', 0x05: 'HIERARCHY', 0x07: 'KEY_SIZE', 0x08: 'MGF',
  0x09: 'MODE', 0x0a: 'TYPE', 0x0b: 'HANDLE', 0x0c: 'KDF', 0x0d: 'RANGE', 0x0e: 'AUTH_FAIL', 0x0f: 'NONCE', 0x10: 'PP',
  0x12: 'SCHEME', 0x15: 'SIZE', 0x16: 'SYMMETRIC', 0x17: 'TAG', 0x18: 'SELECTOR', 0x1a: 'INSUFFICIENT', 0x1b: 'SIGNATURE',
  0x1c: 'KEY', 0x1d: 'POLICY_FAIL', 0x1f: 'INTEGRITY', 0x20: 'TICKET', 0x21: 'RESERVED_BITS', 0x22: 'BAD_AUTH',
  0x23: 'EXPIRED', 0x24: 'POLICY_CC', 0x25: 'BINDING', 0x26: 'CURVE', 0x27: 'ECC_POINT',
};

const VER1: Record<number, string> = {
  0x00: 'INITIALIZE', 0x01: 'FAILURE', 0x03: 'SEQUENCE', 0x0b: 'PRIVATE', 0x19: 'HMAC', 0x20: 'DISABLED', 0x21: 'EXCLUSIVE',
  0x24: 'AUTH_TYPE', 0x25: 'AUTH_MISSING', 0x26: 'POLICY', 0x27: 'PCR', 0x28: 'PCR_CHANGED', 0x2d: 'UPGRADE',
  0x2e: 'TOO_MANY_CONTEXTS', 0x2f: 'AUTH_UNAVAILABLE', 0x30: 'REBOOT', 0x31: 'UNBALANCED', 0x42: 'COMMAND_SIZE',
  0x43: 'COMMAND_CODE', 0x44: 'AUTHSIZE', 0x45: 'AUTH_CONTEXT', 0x46: 'NV_RANGE', 0x47: 'NV_SIZE', 0x48: 'NV_LOCKED',
  0x49: 'NV_AUTHORIZATION', 0x4a: 'NV_UNINITIALIZED', 0x4b: 'NV_SPACE', 0x4c: 'NV_DEFINED', 0x50: 'BAD_CONTEXT',
  0x51: 'CPHASH', 0x52: 'PARENT', 0x53: 'NEEDS_TEST', 0x54: 'NO_RESULT', 0x55: 'SENSITIVE',
};

const WARN: Record<number, string> = {
  0x01: 'CONTEXT_GAP', 0x02: 'OBJECT_MEMORY', 0x03: 'SESSION_MEMORY', 0x04: 'MEMORY', 0x05: 'SESSION_HANDLES',
  0x06: 'OBJECT_HANDLES', 0x07: 'LOCALITY', 0x08: 'YIELDED', 0x09: 'CANCELED', 0x0a: 'TESTING', 0x20: 'NV_RATE',
  0x21: 'LOCKOUT', 0x22: 'RETRY', 0x23: 'NV_UNAVAILABLE',
};

export interface DecodedRc {
  readonly rc: number;
  /** e.g. TPM_RC_AUTH_FAIL; TPM_RC_UNKNOWN_0x… for codes outside the tables. */
  readonly name: string;
  /** The code without its parameter/handle/session number: 0x08e for 0x98e. */
  readonly base: number;
  readonly warning: boolean;
  readonly parameter?: number;
  readonly handle?: number;
  readonly session?: number;
}

export function decodeRc(rc: number): DecodedRc {
  rc >>>= 0;
  if (rc === 0) return { rc, name: 'TPM_RC_SUCCESS', base: 0, warning: false };
  if (rc & 0x80) {
    const n = rc & 0x3f;
    const base = 0x80 + n;
    const name = `TPM_RC_${FMT1[n] ?? `UNKNOWN_${hex32(base)}`}`;
    const num = (rc >> 8) & 0xf;
    if (rc & 0x40) return { rc, name, base, warning: false, parameter: num };
    if (num === 0) return { rc, name, base, warning: false };
    return num & 0x8 ? { rc, name, base, warning: false, session: num & 0x7 } : { rc, name, base, warning: false, handle: num };
  }
  if (rc & 0x100) {
    const n = rc & 0x7f;
    if (rc & 0x800) return { rc, name: `TPM_RC_${WARN[n] ?? `UNKNOWN_${hex32(rc)}`}`, base: 0x900 + n, warning: true };
    return { rc, name: `TPM_RC_${VER1[n] ?? `UNKNOWN_${hex32(rc)}`}`, base: 0x100 + n, warning: false };
  }
  return { rc, name: `TPM_RC_UNKNOWN_${hex32(rc)}`, base: rc, warning: false };
}

/** Warnings after which the same command may simply be sent again. */
export const RETRYABLE_RC: ReadonlySet<number> = new Set([0x922, 0x908, 0x90a, 0x920]);

export const TPM_RC = {
  SUCCESS: 0x000,
  INITIALIZE: 0x100,
  FAILURE: 0x101,
  AUTH_UNAVAILABLE: 0x12f,
  NV_UNINITIALIZED: 0x14a,
  NV_DEFINED: 0x14c,
  HANDLE: 0x08b,
  AUTH_FAIL: 0x08e,
  POLICY_FAIL: 0x09d,
  INTEGRITY: 0x09f,
  BAD_AUTH: 0x0a2,
  LOCKOUT: 0x921,
  RETRY: 0x922,
  OBJECT_MEMORY: 0x902,
} as const;

function codeFor(base: number): ErrorCode {
  switch (base) {
    case 0x08e:
    case 0x0a2:
      return 'OUTPOST_E_TPM_AUTH_FAIL';
    case 0x921:
      return 'OUTPOST_E_TPM_LOCKOUT';
    case 0x902:
    case 0x903:
    case 0x904:
      return 'OUTPOST_E_TPM_OBJECT_MEMORY';
    case 0x08b:
      return 'OUTPOST_E_TPM_HANDLE';
    case 0x14a:
      return 'OUTPOST_E_TPM_NV_UNINITIALIZED';
    case 0x14c:
      return 'OUTPOST_E_TPM_NV_DEFINED';
    case 0x09d:
    case 0x126:
    case 0x128:
      return 'OUTPOST_E_TPM_POLICY_FAIL';
    case 0x09f:
      return 'OUTPOST_E_TPM_INTEGRITY';
    case 0x101:
      return 'OUTPOST_E_TPM_FAILURE';
    default:
      return 'OUTPOST_E_TPM_COMMAND';
  }
}

/** The OutpostError for a TPM response code; details carry the rc, its name and the position it names. */
export function tpmRcError(rc: number, command: string, extra: Record<string, unknown> = {}): OutpostError {
  const d = decodeRc(rc);
  const where = d.parameter !== undefined ? ` (parameter ${d.parameter})` : d.handle !== undefined ? ` (handle ${d.handle})` : d.session !== undefined ? ` (session ${d.session})` : '';
  return new OutpostError(codeFor(d.base), `TPM2_${command} failed: ${d.name}${where}`, {
    details: {
      command,
      rc: `0x${d.rc.toString(16).padStart(3, '0')}`,
      rcName: d.name,
      ...(d.parameter !== undefined ? { parameter: d.parameter } : {}),
      ...(d.handle !== undefined ? { handle: d.handle } : {}),
      ...(d.session !== undefined ? { session: d.session } : {}),
      ...extra,
    },
  });
}

/** The TPM response code carried by an error raised by the client, if any (masked to its base code). */
export function rcOf(e: unknown): number | undefined {
  if (!(e instanceof OutpostError)) return undefined;
  const rc = e.details['rc'];
  return typeof rc === 'string' ? decodeRc(Number.parseInt(rc, 16)).base : undefined;
}
