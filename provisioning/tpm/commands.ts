import { TPM_ALG, TPM_CAP, TPM_CC, TPM_RH, TPM_ST } from './constants.js';
import { command, noResult, type AuthCommand, type TpmCommand } from './command.js';
import type { TpmReader, TpmWriter } from './marshal.js';
import {
  parsePublic,
  readNvPublic,
  readPcrSelections,
  readPublic,
  readSignature,
  writeNvPublic,
  writePcrSelections,
  writePublic,
  type NvPublic,
  type PcrSelection,
  type TpmPublic,
  type TpmSignature,
} from './structures.js';

/**
 * Pure builders of the TPM 2.0 commands Outpost uses (Part 3), each with its response parser.
 * Nothing here does I/O; TpmClient sends them. Golden-vector tests pin their bytes.
 */

export interface PublicOut {
  readonly public: TpmPublic;
  /** The exact TPMT_PUBLIC bytes returned by the TPM. */
  readonly raw: Buffer;
  readonly name: Buffer;
}

function readTpm2bPublic(r: TpmReader): { public: TpmPublic; raw: Buffer } {
  const raw = r.tpm2b();
  return { raw, public: parsePublic(raw) };
}

function writeSensitiveCreate(w: TpmWriter, userAuth: Uint8Array, data: Uint8Array): void {
  w.sized((s) => s.tpm2b(userAuth).tpm2b(data));
}

function skipCreationOut(r: TpmReader): void {
  r.tpm2b(); // creationData
  r.tpm2b(); // creationHash
  r.u16(); // creationTicket.tag
  r.u32(); // creationTicket.hierarchy
  r.tpm2b(); // creationTicket.digest
}

export const Tpm2 = {
  startup(su: number): TpmCommand<void> {
    return command(TPM_CC.Startup, 'Startup', { params: (w) => w.u16(su) }, noResult);
  },

  shutdown(su: number): TpmCommand<void> {
    return command(TPM_CC.Shutdown, 'Shutdown', { params: (w) => w.u16(su) }, noResult);
  },

  getRandom(bytes: number): TpmCommand<Buffer> {
    return command(TPM_CC.GetRandom, 'GetRandom', { params: (w) => w.u16(bytes) }, (r) => r.tpm2b());
  },

  getCapabilityHandles(first: number, count: number): TpmCommand<{ more: boolean; handles: number[] }> {
    return command(TPM_CC.GetCapability, 'GetCapability', { params: (w) => w.u32(TPM_CAP.HANDLES).u32(first).u32(count) }, (r) => {
      const more = r.u8() !== 0;
      r.u32();
      const n = r.u32();
      const handles: number[] = [];
      for (let i = 0; i < n; i++) handles.push(r.u32());
      return { more, handles };
    });
  },

  getCapabilityProperties(first: number, count: number): TpmCommand<{ more: boolean; properties: Map<number, number> }> {
    return command(TPM_CC.GetCapability, 'GetCapability', { params: (w) => w.u32(TPM_CAP.TPM_PROPERTIES).u32(first).u32(count) }, (r) => {
      const more = r.u8() !== 0;
      r.u32();
      const n = r.u32();
      const properties = new Map<number, number>();
      for (let i = 0; i < n; i++) properties.set(r.u32(), r.u32());
      return { more, properties };
    });
  },

  readPublic(handle: number): TpmCommand<PublicOut & { qualifiedName: Buffer }> {
    return command(TPM_CC.ReadPublic, 'ReadPublic', { handles: [handle] }, (r) => {
      const p = readTpm2bPublic(r);
      return { ...p, name: r.tpm2b(), qualifiedName: r.tpm2b() };
    });
  },

  createPrimary(
    hierarchy: number,
    auth: AuthCommand,
    template: TpmPublic,
    opts: { userAuth?: Uint8Array; data?: Uint8Array; outsideInfo?: Uint8Array; creationPcrs?: readonly PcrSelection[] } = {},
  ): TpmCommand<PublicOut & { handle: number }> {
    return command(
      TPM_CC.CreatePrimary,
      'CreatePrimary',
      {
        handles: [hierarchy],
        sessions: [auth],
        responseHandles: 1,
        params: (w) => {
          writeSensitiveCreate(w, opts.userAuth ?? new Uint8Array(0), opts.data ?? new Uint8Array(0));
          w.sized((p) => writePublic(p, template));
          w.tpm2b(opts.outsideInfo ?? new Uint8Array(0));
          writePcrSelections(w, opts.creationPcrs ?? []);
        },
      },
      (r, handles) => {
        const p = readTpm2bPublic(r);
        skipCreationOut(r);
        return { ...p, handle: handles[0] ?? 0, name: r.tpm2b() };
      },
    );
  },

  create(
    parent: number,
    auth: AuthCommand,
    template: TpmPublic,
    opts: { userAuth?: Uint8Array; data?: Uint8Array } = {},
  ): TpmCommand<{ outPrivate: Buffer; public: TpmPublic; raw: Buffer }> {
    return command(
      TPM_CC.Create,
      'Create',
      {
        handles: [parent],
        sessions: [auth],
        params: (w) => {
          writeSensitiveCreate(w, opts.userAuth ?? new Uint8Array(0), opts.data ?? new Uint8Array(0));
          w.sized((p) => writePublic(p, template));
          w.tpm2b();
          writePcrSelections(w, []);
        },
      },
      (r) => {
        const outPrivate = r.tpm2b();
        const p = readTpm2bPublic(r);
        skipCreationOut(r);
        return { outPrivate, ...p };
      },
    );
  },

  load(parent: number, auth: AuthCommand, inPrivate: Uint8Array, inPublicRaw: Uint8Array): TpmCommand<{ handle: number; name: Buffer }> {
    return command(
      TPM_CC.Load,
      'Load',
      { handles: [parent], sessions: [auth], responseHandles: 1, params: (w) => w.tpm2b(inPrivate).tpm2b(inPublicRaw) },
      (r, handles) => ({ handle: handles[0] ?? 0, name: r.tpm2b() }),
    );
  },

  /** Sign a digest with an unrestricted key (null hash-check ticket). */
  sign(key: number, auth: AuthCommand, digest: Uint8Array, scheme: number = TPM_ALG.ECDSA, hash: number = TPM_ALG.SHA256): TpmCommand<TpmSignature> {
    return command(
      TPM_CC.Sign,
      'Sign',
      { handles: [key], sessions: [auth], params: (w) => w.tpm2b(digest).u16(scheme).u16(hash).u16(TPM_ST.HASHCHECK).u32(TPM_RH.NULL).tpm2b() },
      (r) => readSignature(r),
    );
  },

  evictControl(authHierarchy: number, auth: AuthCommand, object: number, persistent: number): TpmCommand<void> {
    return command(TPM_CC.EvictControl, 'EvictControl', { handles: [authHierarchy, object], sessions: [auth], params: (w) => w.u32(persistent) }, noResult);
  },

  flushContext(handle: number): TpmCommand<void> {
    return command(TPM_CC.FlushContext, 'FlushContext', { params: (w) => w.u32(handle) }, noResult);
  },

  nvReadPublic(index: number): TpmCommand<{ public: NvPublic; name: Buffer }> {
    return command(TPM_CC.NV_ReadPublic, 'NV_ReadPublic', { handles: [index] }, (r) => ({ public: r.sized(readNvPublic), name: r.tpm2b() }));
  },

  nvRead(authHandle: number, index: number, auth: AuthCommand, size: number, offset: number): TpmCommand<Buffer> {
    return command(TPM_CC.NV_Read, 'NV_Read', { handles: [authHandle, index], sessions: [auth], params: (w) => w.u16(size).u16(offset) }, (r) => r.tpm2b());
  },

  nvDefineSpace(authHandle: number, auth: AuthCommand, nvAuth: Uint8Array, pub: NvPublic): TpmCommand<void> {
    return command(
      TPM_CC.NV_DefineSpace,
      'NV_DefineSpace',
      { handles: [authHandle], sessions: [auth], params: (w) => w.tpm2b(nvAuth).sized((p) => writeNvPublic(p, pub)) },
      noResult,
    );
  },

  nvUndefineSpace(authHandle: number, index: number, auth: AuthCommand): TpmCommand<void> {
    return command(TPM_CC.NV_UndefineSpace, 'NV_UndefineSpace', { handles: [authHandle, index], sessions: [auth] }, noResult);
  },

  nvIncrement(authHandle: number, index: number, auth: AuthCommand): TpmCommand<void> {
    return command(TPM_CC.NV_Increment, 'NV_Increment', { handles: [authHandle, index], sessions: [auth] }, noResult);
  },

  startAuthSession(opts: {
    nonceCaller: Uint8Array;
    type: number;
    tpmKey?: number;
    bind?: number;
    encryptedSalt?: Uint8Array;
    authHash?: number;
  }): TpmCommand<{ handle: number; nonceTPM: Buffer }> {
    return command(
      TPM_CC.StartAuthSession,
      'StartAuthSession',
      {
        handles: [opts.tpmKey ?? TPM_RH.NULL, opts.bind ?? TPM_RH.NULL],
        responseHandles: 1,
        params: (w) =>
          w
            .tpm2b(opts.nonceCaller)
            .tpm2b(opts.encryptedSalt ?? new Uint8Array(0))
            .u8(opts.type)
            .u16(TPM_ALG.NULL)
            .u16(opts.authHash ?? TPM_ALG.SHA256),
      },
      (r, handles) => ({ handle: handles[0] ?? 0, nonceTPM: r.tpm2b() }),
    );
  },

  policySecret(authHandle: number, auth: AuthCommand, session: number, opts: { nonceTPM?: Uint8Array; policyRef?: Uint8Array } = {}): TpmCommand<void> {
    return command(
      TPM_CC.PolicySecret,
      'PolicySecret',
      {
        handles: [authHandle, session],
        sessions: [auth],
        params: (w) =>
          w
            .tpm2b(opts.nonceTPM ?? new Uint8Array(0))
            .tpm2b()
            .tpm2b(opts.policyRef ?? new Uint8Array(0))
            .i32(0),
      },
      (r) => {
        r.tpm2b(); // timeout
        r.u16(); // ticket tag
        r.u32(); // ticket hierarchy
        r.tpm2b(); // ticket digest
      },
    );
  },

  policyPCR(session: number, pcrDigest: Uint8Array, selections: readonly PcrSelection[]): TpmCommand<void> {
    return command(TPM_CC.PolicyPCR, 'PolicyPCR', { handles: [session], params: (w) => { w.tpm2b(pcrDigest); writePcrSelections(w, selections); } }, noResult);
  },

  policyOR(session: number, digests: readonly Uint8Array[]): TpmCommand<void> {
    return command(TPM_CC.PolicyOR, 'PolicyOR', { handles: [session], params: (w) => { w.u32(digests.length); for (const d of digests) w.tpm2b(d); } }, noResult);
  },

  policyGetDigest(session: number): TpmCommand<Buffer> {
    return command(TPM_CC.PolicyGetDigest, 'PolicyGetDigest', { handles: [session] }, (r) => r.tpm2b());
  },

  pcrRead(selections: readonly PcrSelection[]): TpmCommand<{ updateCounter: number; selections: PcrSelection[]; digests: Buffer[] }> {
    return command(TPM_CC.PCR_Read, 'PCR_Read', { params: (w) => writePcrSelections(w, selections) }, (r) => {
      const updateCounter = r.u32();
      const sel = readPcrSelections(r);
      const n = r.u32();
      const digests: Buffer[] = [];
      for (let i = 0; i < n; i++) digests.push(r.tpm2b());
      return { updateCounter, selections: sel, digests };
    });
  },

  pcrExtend(pcr: number, auth: AuthCommand, digests: ReadonlyArray<{ hash: number; digest: Uint8Array }>): TpmCommand<void> {
    return command(
      TPM_CC.PCR_Extend,
      'PCR_Extend',
      { handles: [pcr], sessions: [auth], params: (w) => { w.u32(digests.length); for (const d of digests) w.u16(d.hash).bytes(d.digest); } },
      noResult,
    );
  },

  activateCredential(activate: number, key: number, auths: readonly [AuthCommand, AuthCommand], credentialBlob: Uint8Array, secret: Uint8Array): TpmCommand<Buffer> {
    return command(
      TPM_CC.ActivateCredential,
      'ActivateCredential',
      { handles: [activate, key], sessions: auths, params: (w) => w.tpm2b(credentialBlob).tpm2b(secret) },
      (r) => r.tpm2b(),
    );
  },

  unseal(item: number, auth: AuthCommand): TpmCommand<Buffer> {
    return command(TPM_CC.Unseal, 'Unseal', { handles: [item], sessions: [auth] }, (r) => r.tpm2b());
  },

  dictionaryAttackLockReset(auth: AuthCommand): TpmCommand<void> {
    return command(TPM_CC.DictionaryAttackLockReset, 'DictionaryAttackLockReset', { handles: [TPM_RH.LOCKOUT], sessions: [auth] }, noResult);
  },

  dictionaryAttackParameters(auth: AuthCommand, maxTries: number, recoveryTime: number, lockoutRecovery: number): TpmCommand<void> {
    return command(
      TPM_CC.DictionaryAttackParameters,
      'DictionaryAttackParameters',
      { handles: [TPM_RH.LOCKOUT], sessions: [auth], params: (w) => w.u32(maxTries).u32(recoveryTime).u32(lockoutRecovery) },
      noResult,
    );
  },
} as const;
