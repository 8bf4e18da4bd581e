import { createHash } from 'node:crypto';
import { TPM_ALG, TPM_CC, TPM_RH, TPM_SE } from './constants.js';
import { passwordAuth, policyAuth, type AuthCommand } from './command.js';
import { Tpm2 } from './commands.js';
import type { TpmClient } from './client.js';
import { TpmWriter } from './marshal.js';
import { writePcrSelections, type PcrSelection } from './structures.js';

/** Policy digests computed in software (Part 1 §19.7, Part 3 §23), and policy sessions on the TPM. SHA-256 only. */

const ZERO = Buffer.alloc(32);

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
}

/** Digest of the PCR values named by a selection: H(value_1 ‖ … ‖ value_n) in selection order. */
export function pcrValuesDigest(values: readonly Uint8Array[]): Buffer {
  return sha256(...values);
}

/** policyDigest after TPM2_PolicyPCR(selection, pcrDigest). */
export function policyPcrDigest(selections: readonly PcrSelection[], pcrDigest: Uint8Array, previous: Uint8Array = ZERO): Buffer {
  const w = new TpmWriter();
  writePcrSelections(w, selections);
  return sha256(previous, u32(TPM_CC.PolicyPCR), w.toBuffer(), pcrDigest);
}

/** policyDigest after TPM2_PolicySecret(authObject) with the given name (a permanent handle's name is the handle). */
export function policySecretDigest(authName: Uint8Array, policyRef: Uint8Array = new Uint8Array(0), previous: Uint8Array = ZERO): Buffer {
  return sha256(sha256(previous, u32(TPM_CC.PolicySecret), authName), policyRef);
}

/** policyDigest after TPM2_PolicyOR over the branch digests. */
export function policyOrDigest(branches: readonly Uint8Array[]): Buffer {
  return sha256(ZERO, u32(TPM_CC.PolicyOR), ...branches);
}

/** The name of a permanent handle (owner, endorsement…): its 4-byte handle value. */
export function permanentName(handle: number): Buffer {
  return u32(handle);
}

/** PolicySecret(TPM_RH_ENDORSEMENT): the authPolicy of the TCG low-range EK templates. */
export const POLICY_A_SHA256 = policySecretDigest(permanentName(TPM_RH.ENDORSEMENT));

/** Starts an unbound, unsalted policy session (SHA-256) and returns its handle, tracked for flushing. */
export async function startPolicySession(client: TpmClient, trial = false): Promise<number> {
  const nonce = await client.run(Tpm2.getRandom(16));
  const { handle } = await client.run(Tpm2.startAuthSession({ nonceCaller: nonce, type: trial ? TPM_SE.TRIAL : TPM_SE.POLICY, authHash: TPM_ALG.SHA256 }));
  return client.track(handle);
}

/**
 * A policy session satisfying PolicySecret(endorsement) (the EK's policy), ready to authorize one command.
 * The returned auth has continueSession clear, so the TPM flushes the session after that command;
 * `client.forget` is called by the caller once the command ran.
 */
export async function endorsementPolicySession(client: TpmClient, endorsementAuth: AuthCommand = passwordAuth()): Promise<{ handle: number; auth: AuthCommand }> {
  const handle = await startPolicySession(client);
  try {
    await client.run(Tpm2.policySecret(TPM_RH.ENDORSEMENT, endorsementAuth, handle));
  } catch (e) {
    await client.flush(handle).catch(() => undefined);
    throw e;
  }
  return { handle, auth: policyAuth(handle) };
}
