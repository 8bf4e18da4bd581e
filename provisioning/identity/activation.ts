import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPMA_OBJECT } from '../tpm/constants.js';
import { passwordAuth, type AuthCommand } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { POLICY_A_SHA256, endorsementPolicySession } from '../tpm/policy.js';
import type { EndorsementKey } from './ek.js';

/** The credential challenge the factory CA sends: MakeCredential output for (EK, device key Name). */
export interface CredentialChallenge {
  readonly credentialBlob: Buffer;
  readonly encryptedSecret: Buffer;
}

/**
 * Device side of the proof: TPM2_ActivateCredential(deviceKey, EK). The TPM releases the CA's
 * secret only if the EK's private key is in this TPM and an object with the Name the CA used is
 * loaded here. The EK is authorised by PolicySecret(endorsement) (low-range templates) or, for
 * EKs with userWithAuth (high-range templates), by its empty password.
 */
export async function activateCredential(client: TpmClient, ek: EndorsementKey, keyHandle: number, challenge: CredentialChallenge): Promise<Buffer> {
  let ekAuth: AuthCommand;
  let session: number | undefined;
  if (ek.public.attributes & TPMA_OBJECT.userWithAuth) ekAuth = passwordAuth();
  else if (ek.public.authPolicy.equals(POLICY_A_SHA256)) {
    const s = await endorsementPolicySession(client);
    session = s.handle;
    ekAuth = s.auth;
  } else {
    throw new OutpostError('OUTPOST_E_IDENTITY_TPM_STATE', 'the EK has a policy Outpost cannot satisfy (neither PolicySecret(endorsement) nor userWithAuth)', {
      details: { authPolicy: ek.public.authPolicy.toString('hex') },
    });
  }
  try {
    const secret = await client.run(Tpm2.activateCredential(keyHandle, ek.handle, [passwordAuth(), ekAuth], challenge.credentialBlob, challenge.encryptedSecret));
    if (session !== undefined) client.forget(session);
    return secret;
  } catch (e) {
    if (session !== undefined) await client.flush(session).catch(() => undefined);
    throw e;
  }
}
