import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_RH, hex32 } from '../tpm/constants.js';
import { passwordAuth } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { TPM_RC, rcOf } from '../tpm/rc.js';
import type { TpmPublic } from '../tpm/structures.js';
import { DEVICE_KEY_TEMPLATE, SRK_ECC_TEMPLATE, matchesTemplate } from '../tpm/templates.js';

/** The owner-hierarchy keys: the SRK and the device identity key, both persistent and noDA. */

export const DEFAULT_SRK_HANDLE = 0x81000001;
export const DEFAULT_DEVICE_KEY_HANDLE = 0x81000002;

export interface PersistentObject {
  readonly handle: number;
  readonly public: TpmPublic;
  readonly raw: Buffer;
  readonly name: Buffer;
}

/** ReadPublic, or undefined when nothing is at the handle. */
export async function readPersistent(client: TpmClient, handle: number): Promise<PersistentObject | undefined> {
  try {
    const p = await client.run(Tpm2.readPublic(handle));
    return { handle, public: p.public, raw: p.raw, name: p.name };
  } catch (e) {
    if (rcOf(e) === TPM_RC.HANDLE) return undefined;
    throw e;
  }
}

export function checkPersistentHandle(handle: number, what: string): void {
  if (!Number.isInteger(handle) || handle < 0x81000000 || handle > 0x817fffff) {
    throw new OutpostError('OUTPOST_E_CLI_USAGE', `${what} must be an owner persistent handle 0x81000000..0x817FFFFF`, { details: { handle } });
  }
}

/**
 * The ECC SRK at `handle`: reused when an object with the TCG template is there, created and
 * persisted when the handle is free, refused (HANDLE_TAKEN) when another object holds it.
 * The SRK is a primary key from a fixed template, so re-creating it always gives the same key.
 */
export async function ensureSrk(client: TpmClient, handle = DEFAULT_SRK_HANDLE): Promise<PersistentObject & { created: boolean }> {
  const existing = await readPersistent(client, handle);
  if (existing) {
    if (matchesTemplate(existing.public, SRK_ECC_TEMPLATE)) return { ...existing, created: false };
    throw new OutpostError('OUTPOST_E_IDENTITY_HANDLE_TAKEN', `persistent handle ${hex32(handle)} holds a storage key that is not the ECC P-256 noDA SRK`, {
      details: { handle: hex32(handle), attributes: hex32(existing.public.attributes), type: existing.public.type },
    });
  }
  const created = await client.run(Tpm2.createPrimary(TPM_RH.OWNER, passwordAuth(), SRK_ECC_TEMPLATE));
  await client.withTransient(client.track(created.handle), async (h) => {
    await client.run(Tpm2.evictControl(TPM_RH.OWNER, passwordAuth(), h, handle));
  });
  return { handle, public: created.public, raw: created.raw, name: created.name, created: true };
}

/** A device key created under the SRK, not yet loaded: the blobs to keep on flash. */
export interface KeyBlob {
  readonly privateBlob: Buffer;
  readonly publicArea: Buffer;
  readonly public: TpmPublic;
}

export async function createDeviceKey(client: TpmClient, srk: number): Promise<KeyBlob> {
  const k = await client.run(Tpm2.create(srk, passwordAuth(), DEVICE_KEY_TEMPLATE));
  return { privateBlob: k.outPrivate, publicArea: k.raw, public: k.public };
}

/** Loads a key blob under `parent` and persists it at `handle`; the transient copy is flushed. */
export async function persistKey(client: TpmClient, parent: number, blob: { privateBlob: Buffer; publicArea: Buffer }, handle: number): Promise<Buffer> {
  const loaded = await client.run(Tpm2.load(parent, passwordAuth(), blob.privateBlob, blob.publicArea));
  await client.withTransient(client.track(loaded.handle), async (h) => {
    await client.run(Tpm2.evictControl(TPM_RH.OWNER, passwordAuth(), h, handle));
  });
  return loaded.name;
}

/** True when a public area is an acceptable Outpost device key (template attributes, ECC P-256 ECDSA). */
export function isDeviceKey(p: TpmPublic): boolean {
  return matchesTemplate(p, DEVICE_KEY_TEMPLATE);
}
