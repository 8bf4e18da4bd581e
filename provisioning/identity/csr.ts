import { createHash } from 'node:crypto';
import { TPM_ALG } from '../tpm/constants.js';
import { passwordAuth } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { spkiDer, type TpmPublic } from '../tpm/structures.js';
import { assembleCsr, csrInfo, ecdsaDer, encodeName } from '../x509/x509.js';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** A PKCS#10 request for CN=<serial>, signed inside the TPM by the key at `keyHandle`. */
export async function tpmSignedCsr(client: TpmClient, keyHandle: number, keyPublic: TpmPublic, serial: string): Promise<Buffer> {
  const info = csrInfo(encodeName([['CN', serial]]), spkiDer(keyPublic));
  const sig = await client.run(Tpm2.sign(keyHandle, passwordAuth(), createHash('sha256').update(info).digest()));
  if (sig.sigAlg !== TPM_ALG.ECDSA) throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'the device key did not return an ECDSA signature', { details: { sigAlg: sig.sigAlg } });
  return assembleCsr(info, ecdsaDer(sig.r, sig.s));
}
