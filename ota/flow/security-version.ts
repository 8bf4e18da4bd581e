import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../atomic-file.js';

/**
 * The anti-rollback floor: a monotonic counter. Bundles whose `[meta.outpost] security-version` is
 * below it are refused; the updater advances it only after a commit. Implementations: a file (here),
 * a TPM NV counter (provisioning/, wired by services/).
 */
export interface SecurityVersionStore {
  read(): Promise<bigint>;
  /** Raises the counter to `v`; a no-op when it is already ≥ v. Never lowers it. */
  advanceTo(v: bigint): Promise<void>;
}

/**
 * File-backed security version. Invariants: the file holds one decimal integer, replaced atomically;
 * a missing file reads as 0; an unreadable or malformed file is an error (never silently 0), so a
 * damaged counter cannot reopen old versions.
 */
export class FileSecurityVersionStore implements SecurityVersionStore {
  constructor(private readonly file: string) {}

  async read(): Promise<bigint> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0n;
      throw new OutpostError('OUTPOST_E_OTA_SECURITY_VERSION', `cannot read the security version ${this.file}`, { cause: e, details: { file: this.file } });
    }
    const t = text.trim();
    if (!/^\d{1,19}$/.test(t)) throw new OutpostError('OUTPOST_E_OTA_SECURITY_VERSION', `security version file ${this.file} is damaged`, { details: { file: this.file } });
    return BigInt(t);
  }

  async advanceTo(v: bigint): Promise<void> {
    if (v <= (await this.read())) return;
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      await writeFileAtomic(this.file, `${v}\n`, 0o600);
    } catch (e) {
      throw new OutpostError('OUTPOST_E_OTA_SECURITY_VERSION', `cannot advance the security version in ${this.file}`, { cause: e, details: { file: this.file } });
    }
  }
}

/** A monotonic hardware counter as the identity code exposes it (provisioning/identity/counter-open.ts). */
export interface MonotonicCounter {
  read(): Promise<bigint>;
  advanceTo(v: bigint): Promise<void>;
}

/**
 * Security version in a monotonic counter whose values are absolute (a TPM NV counter starts at
 * whatever the TPM's highest counter ever was): security version = counter − `base`, where `base`
 * is the value provisioning recorded (identity.json `counter.start`). Invariants: the counter is
 * opened for each operation and closed after it (/dev/tpm0 is exclusive); a counter below its base
 * is an error, never a negative or zero floor.
 */
export class CounterSecurityVersionStore implements SecurityVersionStore {
  constructor(
    private readonly open: () => Promise<{ counter: MonotonicCounter; close(): Promise<void> }>,
    private readonly base: bigint,
  ) {}

  private async with<T>(fn: (c: MonotonicCounter) => Promise<T>): Promise<T> {
    let h: { counter: MonotonicCounter; close(): Promise<void> };
    try {
      h = await this.open();
    } catch (e) {
      throw new OutpostError('OUTPOST_E_OTA_SECURITY_VERSION', 'cannot open the security version counter', { cause: e });
    }
    try {
      return await fn(h.counter);
    } finally {
      await h.close();
    }
  }

  read(): Promise<bigint> {
    return this.with(async (c) => {
      const v = await c.read();
      if (v < this.base) {
        throw new OutpostError('OUTPOST_E_OTA_SECURITY_VERSION', 'the security version counter is below the start value recorded at provisioning', {
          details: { counter: v.toString(), base: this.base.toString() },
        });
      }
      return v - this.base;
    });
  }

  advanceTo(v: bigint): Promise<void> {
    return this.with(async (c) => {
      try {
        await c.advanceTo(this.base + v);
      } catch (e) {
        throw new OutpostError('OUTPOST_E_OTA_SECURITY_VERSION', `cannot advance the security version counter to ${v}`, { cause: e, details: { target: v.toString() } });
      }
    });
  }
}
