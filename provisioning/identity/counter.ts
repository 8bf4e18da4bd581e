import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_ALG, TPM_RH, TPMA_NV, hex32 } from '../tpm/constants.js';
import { passwordAuth } from '../tpm/command.js';
import { Tpm2 } from '../tpm/commands.js';
import type { TpmClient } from '../tpm/client.js';
import { TPM_RC, rcOf } from '../tpm/rc.js';
import type { NvPublic } from '../tpm/structures.js';
import { nvPublicIfDefined } from './nv.js';

export const DEFAULT_COUNTER_INDEX = 0x01000100;

/** OWNERWRITE|AUTHWRITE|NT_COUNTER|OWNERREAD|AUTHREAD|NO_DA: readable and advanceable with an empty password, never by DA-counted auth. */
export const COUNTER_ATTRIBUTES = TPMA_NV.OWNERWRITE | TPMA_NV.AUTHWRITE | TPMA_NV.NT_COUNTER | TPMA_NV.OWNERREAD | TPMA_NV.AUTHREAD | TPMA_NV.NO_DA;

export interface SecurityVersionCounterOptions {
  /** NV index in the owner range (0x01000000..0x013FFFFF); default 0x01000100. */
  readonly index?: number;
  /** Largest single advance allowed (each step is one NV write); default 64. */
  readonly maxStep?: bigint;
}

/**
 * Anti-rollback counter in a TPM NV counter index (TPM_NT_COUNTER): it can only go up, and even
 * undefining and redefining the index cannot lower it (a new counter starts at the highest value
 * any counter on this TPM ever had).
 * Invariants: `read()` never decreases across calls, reboots or re-definitions; `advanceTo(v)`
 * leaves `read() >= v` and never moves backwards (v ≤ current is a no-op); an index that exists
 * but is not an 8-byte counter is refused, never redefined.
 *
 * Values are absolute: the first increment of a fresh index starts at 1 on a TPM that never had
 * a counter, higher on one that had. Provisioning defines the counter and records its start value.
 */
export class TpmSecurityVersionCounter {
  readonly index: number;
  private readonly maxStep: bigint;

  constructor(
    private readonly client: TpmClient,
    options: SecurityVersionCounterOptions = {},
  ) {
    this.index = options.index ?? DEFAULT_COUNTER_INDEX;
    this.maxStep = options.maxStep ?? 64n;
    if (!Number.isInteger(this.index) || this.index < 0x01000000 || this.index > 0x013fffff) {
      throw new OutpostError('OUTPOST_E_IDENTITY_COUNTER', 'the counter index must be in the owner NV range 0x01000000..0x013FFFFF', { details: { index: this.index } });
    }
  }

  private check(pub: NvPublic): void {
    if ((pub.attributes & 0xf0) !== TPMA_NV.NT_COUNTER || pub.dataSize !== 8) {
      throw new OutpostError('OUTPOST_E_IDENTITY_COUNTER', `NV index ${hex32(this.index)} exists but is not a counter`, {
        details: { index: hex32(this.index), attributes: hex32(pub.attributes), size: pub.dataSize },
      });
    }
  }

  /** Current value; 0 when the index is not defined or was never incremented. */
  async read(): Promise<bigint> {
    const pub = await nvPublicIfDefined(this.client, this.index);
    if (pub === undefined) return 0n;
    this.check(pub);
    try {
      const authHandle = pub.attributes & TPMA_NV.AUTHREAD ? this.index : TPM_RH.OWNER;
      const data = await this.client.run(Tpm2.nvRead(authHandle, this.index, passwordAuth(), 8, 0));
      return data.readBigUInt64BE(0);
    } catch (e) {
      if (rcOf(e) === TPM_RC.NV_UNINITIALIZED) return 0n;
      throw e;
    }
  }

  /** Defines the index when missing (an existing counter is kept); returns whether it was created. */
  async ensureDefined(): Promise<boolean> {
    const pub = await nvPublicIfDefined(this.client, this.index);
    if (pub) {
      this.check(pub);
      return false;
    }
    await this.client.run(
      Tpm2.nvDefineSpace(TPM_RH.OWNER, passwordAuth(), new Uint8Array(0), {
        nvIndex: this.index,
        nameAlg: TPM_ALG.SHA256,
        attributes: COUNTER_ATTRIBUTES,
        authPolicy: Buffer.alloc(0),
        dataSize: 8,
      }),
    );
    return true;
  }

  /** Increments until the value is at least `v` (defining the index first if needed). */
  async advanceTo(v: bigint): Promise<void> {
    if (v < 0n) throw new OutpostError('OUTPOST_E_IDENTITY_COUNTER', 'a security version cannot be negative', { details: { requested: v.toString() } });
    let current = await this.read();
    if (current >= v) return;
    if (v - current > this.maxStep) {
      throw new OutpostError('OUTPOST_E_IDENTITY_COUNTER', 'refusing to advance the security counter by more than maxStep at once', {
        details: { current: current.toString(), requested: v.toString(), maxStep: this.maxStep.toString() },
      });
    }
    await this.ensureDefined();
    const pub = await nvPublicIfDefined(this.client, this.index);
    const authHandle = pub && pub.attributes & TPMA_NV.AUTHWRITE ? this.index : TPM_RH.OWNER;
    for (let i = 0n; current < v && i <= this.maxStep; i++) {
      await this.client.run(Tpm2.nvIncrement(authHandle, this.index, passwordAuth()));
      current = await this.read();
    }
  }
}
