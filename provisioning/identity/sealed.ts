import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_ALG } from '../tpm/constants.js';
import { passwordAuth, policyAuth } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { pcrValuesDigest, policyPcrDigest, startPolicySession } from '../tpm/policy.js';
import type { PcrSelection } from '../tpm/structures.js';
import { sealedTemplate } from '../tpm/templates.js';

/**
 * A small secret (≤ 128 bytes, e.g. a data-at-rest key) sealed under the SRK to the current values
 * of some SHA-256 PCRs. The blob is useless on another TPM and unseals only while those PCRs hold
 * the same values. Caveat: a plain PolicyPCR breaks when the measured software changes (an OTA
 * update changing PCR values must re-seal); never seal the identity key.
 */
export interface SealedBlob {
  readonly pcrs: readonly number[];
  readonly privateBlob: Buffer;
  readonly publicArea: Buffer;
}

export const MAX_SEALED_BYTES = 128;

function selection(pcrs: readonly number[]): PcrSelection[] {
  return [{ hash: TPM_ALG.SHA256, pcrs: [...pcrs].sort((a, b) => a - b) }];
}

export async function sealToPcrs(client: TpmClient, srk: number, secret: Buffer, pcrs: readonly number[]): Promise<SealedBlob> {
  if (secret.length === 0 || secret.length > MAX_SEALED_BYTES) {
    throw new OutpostError('OUTPOST_E_IDENTITY_SEAL', `a sealed secret must be 1..${MAX_SEALED_BYTES} bytes`, { details: { length: secret.length } });
  }
  if (pcrs.length === 0 || pcrs.some((p) => !Number.isInteger(p) || p < 0 || p > 23)) {
    throw new OutpostError('OUTPOST_E_IDENTITY_SEAL', 'PCR indices must be 0..23 and at least one', { details: { pcrs } });
  }
  const sel = selection(pcrs);
  const read = await client.run(Tpm2.pcrRead(sel));
  if (read.digests.length !== pcrs.length) {
    throw new OutpostError('OUTPOST_E_IDENTITY_SEAL', 'the TPM has no active SHA-256 bank for these PCRs', { details: { pcrs } });
  }
  const policy = policyPcrDigest(sel, pcrValuesDigest(read.digests));
  const k = await client.run(Tpm2.create(srk, passwordAuth(), sealedTemplate(policy), { data: secret }));
  return { pcrs: sel[0]?.pcrs ?? [], privateBlob: k.outPrivate, publicArea: k.raw };
}

/** Unseals with a PolicyPCR session; OUTPOST_E_TPM_POLICY_FAIL when a PCR changed since sealing. */
export async function unsealWithPcrs(client: TpmClient, srk: number, blob: SealedBlob): Promise<Buffer> {
  const loaded = await client.run(Tpm2.load(srk, passwordAuth(), blob.privateBlob, blob.publicArea));
  return client.withTransient(client.track(loaded.handle), async (item) => {
    const session = await startPolicySession(client);
    try {
      await client.run(Tpm2.policyPCR(session, new Uint8Array(0), selection(blob.pcrs)));
      const out = await client.run(Tpm2.unseal(item, policyAuth(session)));
      client.forget(session);
      return out;
    } catch (e) {
      await client.flush(session).catch(() => undefined);
      throw e;
    }
  });
}
