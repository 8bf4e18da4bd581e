import { TPM_PT, TPM_RH, TPMA_NV } from '../tpm/constants.js';
import { passwordAuth } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { TPM_RC, rcOf } from '../tpm/rc.js';
import type { NvPublic } from '../tpm/structures.js';

/** NV helpers: existence checks and whole-index reads in NV_BUFFER_MAX chunks. */

/** NV_ReadPublic, or undefined when the index is not defined. */
export async function nvPublicIfDefined(client: TpmClient, index: number): Promise<NvPublic | undefined> {
  try {
    return (await client.run(Tpm2.nvReadPublic(index))).public;
  } catch (e) {
    if (rcOf(e) === TPM_RC.HANDLE) return undefined;
    throw e;
  }
}

/** TPM_PT_NV_BUFFER_MAX (1024 on swtpm; some parts allow less), cached by the caller. */
export async function nvBufferMax(client: TpmClient): Promise<number> {
  const { properties } = await client.run(Tpm2.getCapabilityProperties(TPM_PT.NV_BUFFER_MAX, 1));
  return properties.get(TPM_PT.NV_BUFFER_MAX) ?? 512;
}

/** Reads a whole index with an empty password: as the index itself when AUTHREAD is set, else as the owner. */
export async function nvReadAll(client: TpmClient, index: number, pub: NvPublic, chunk: number): Promise<Buffer> {
  const authHandle = pub.attributes & TPMA_NV.AUTHREAD ? index : TPM_RH.OWNER;
  const parts: Buffer[] = [];
  for (let off = 0; off < pub.dataSize; off += chunk) {
    const n = Math.min(chunk, pub.dataSize - off);
    parts.push(await client.run(Tpm2.nvRead(authHandle, index, passwordAuth(), n, off)));
  }
  return Buffer.concat(parts);
}
