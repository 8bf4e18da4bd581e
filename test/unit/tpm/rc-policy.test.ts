import { describe, expect, it } from 'vitest';
import { TPM_ALG, TPM_RH } from '../../../provisioning/tpm/constants.js';
import { hex } from '../../../provisioning/tpm/marshal.js';
import { parseTpmAddress } from '../../../provisioning/tpm/open.js';
import { POLICY_A_SHA256, pcrValuesDigest, permanentName, policyOrDigest, policyPcrDigest, policySecretDigest } from '../../../provisioning/tpm/policy.js';
import { RETRYABLE_RC, decodeRc, rcOf, tpmRcError } from '../../../provisioning/tpm/rc.js';

describe('response codes', () => {
  it.each([
    [0x98e, 'TPM_RC_AUTH_FAIL', { session: 1 }],
    [0x9a2, 'TPM_RC_BAD_AUTH', { session: 1 }],
    [0x1d5, 'TPM_RC_SIZE', { parameter: 1 }],
    [0x18b, 'TPM_RC_HANDLE', { handle: 1 }],
    [0x28b, 'TPM_RC_HANDLE', { handle: 2 }],
    [0x99d, 'TPM_RC_POLICY_FAIL', { session: 1 }],
    [0x1df, 'TPM_RC_INTEGRITY', { parameter: 1 }],
    [0x921, 'TPM_RC_LOCKOUT', {}],
    [0x922, 'TPM_RC_RETRY', {}],
    [0x902, 'TPM_RC_OBJECT_MEMORY', {}],
    [0x14a, 'TPM_RC_NV_UNINITIALIZED', {}],
    [0x100, 'TPM_RC_INITIALIZE', {}],
    [0x12f, 'TPM_RC_AUTH_UNAVAILABLE', {}],
  ])('decodes 0x%s', (rc, name, where) => {
    const d = decodeRc(rc);
    expect(d.name).toBe(name);
    expect(d).toMatchObject(where);
  });

  it('retries exactly RETRY, YIELDED, TESTING and NV_RATE', () => {
    expect([...RETRYABLE_RC].sort()).toEqual([0x908, 0x90a, 0x920, 0x922]);
    expect(RETRYABLE_RC.has(decodeRc(0x921).base)).toBe(false);
  });

  it('maps codes to named OutpostErrors carrying the rc', () => {
    expect(tpmRcError(0x921, 'Sign')).toMatchObject({ code: 'OUTPOST_E_TPM_LOCKOUT', details: { rc: '0x921', command: 'Sign' } });
    expect(tpmRcError(0x902, 'Load').code).toBe('OUTPOST_E_TPM_OBJECT_MEMORY');
    expect(tpmRcError(0x99d, 'Unseal').code).toBe('OUTPOST_E_TPM_POLICY_FAIL');
    expect(tpmRcError(0x1df, 'ActivateCredential').code).toBe('OUTPOST_E_TPM_INTEGRITY');
    expect(tpmRcError(0x1d5, 'Create')).toMatchObject({ code: 'OUTPOST_E_TPM_COMMAND', details: { parameter: 1, rcName: 'TPM_RC_SIZE' } });
    expect(rcOf(tpmRcError(0x28b, 'EvictControl'))).toBe(0x08b);
  });
});

describe('policy digests', () => {
  it('PolicySecret(endorsement) is the TCG EK policy A', () => {
    expect(hex(POLICY_A_SHA256)).toBe('837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa');
    expect(hex(policySecretDigest(permanentName(TPM_RH.ENDORSEMENT)))).toBe(hex(POLICY_A_SHA256));
  });

  it('PolicyPCR(sha256:23 = zeros) equals the digest swtpm computed for tpm2_policypcr', () => {
    const pcrDigest = pcrValuesDigest([Buffer.alloc(32)]);
    expect(hex(pcrDigest)).toBe('66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925');
    expect(hex(policyPcrDigest([{ hash: TPM_ALG.SHA256, pcrs: [23] }], pcrDigest))).toBe('3c87a4b3fb85ebeea58c5fb36ac22d3f280cec27a9f6dd0fa23be9ce560deec8');
  });

  it('PolicyOR hashes the branch digests in order', () => {
    const a = policyOrDigest([POLICY_A_SHA256, Buffer.alloc(32, 1)]);
    const b = policyOrDigest([Buffer.alloc(32, 1), POLICY_A_SHA256]);
    expect(a.length).toBe(32);
    expect(hex(a)).not.toBe(hex(b));
  });
});

describe('TPM addresses', () => {
  it('parses devices and swtpm sockets', () => {
    expect(parseTpmAddress('/dev/tpmrm0')).toEqual({ kind: 'device', path: '/dev/tpmrm0' });
    expect(parseTpmAddress('device:/dev/tpm0')).toEqual({ kind: 'device', path: '/dev/tpm0' });
    expect(parseTpmAddress('swtpm:127.0.0.1:2321')).toEqual({ kind: 'swtpm', host: '127.0.0.1', port: 2321 });
    expect(parseTpmAddress('swtpm:2321')).toEqual({ kind: 'swtpm', host: '127.0.0.1', port: 2321 });
    expect(parseTpmAddress('auto', (p) => p === '/dev/tpm0')).toEqual({ kind: 'device', path: '/dev/tpm0' });
  });

  it.each(['swtpm:host', 'swtpm:h:99999', 'tpm0', 'device:tpm0', 'http://x'])('refuses %s', (spec) => {
    expect(() => parseTpmAddress(spec)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_TPM_SPEC' }));
  });

  it('reports a missing TPM for auto', () => {
    expect(() => parseTpmAddress('auto', () => false)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_TPM_TRANSPORT' }));
  });
});

