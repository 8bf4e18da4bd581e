import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';

export interface DriverLockHolder {
  readonly pid: number;
  readonly bootId: string;
  readonly since: number;
}

/**
 * One process drives the update flow at a time: at boot, `outpost-ota-resume.service`, a fleet install
 * through the OTA agent and an operator's `outpost ota install` may all start together, and two drivers
 * of one update race on its files. Invariants: the lock file is created exclusively (O_EXCL); a lock
 * whose process is gone, or that was taken in an earlier boot (PIDs repeat across boots), is stale and
 * taken over; `release` removes the file only while it still names this process.
 */
export class DriverLock {
  constructor(
    private readonly file: string,
    private readonly deps: { bootId: () => Promise<string>; now: () => number; pid?: number; alive?: (pid: number) => boolean },
  ) {}

  private get pid(): number {
    return this.deps.pid ?? process.pid;
  }

  /** Takes the lock, or answers who holds it. */
  async acquire(): Promise<{ acquired: true } | { acquired: false; holder: DriverLockHolder }> {
    const bootId = await this.deps.bootId();
    await mkdir(path.dirname(this.file), { recursive: true });
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const fh = await open(this.file, 'wx', 0o600);
        try {
          await fh.writeFile(`${JSON.stringify({ pid: this.pid, bootId, since: this.deps.now() })}\n`);
          await fh.sync();
        } finally {
          await fh.close();
        }
        return { acquired: true };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = await this.holder();
      if (holder && holder.bootId === bootId && holder.pid !== this.pid && this.alive(holder.pid)) return { acquired: false, holder };
      // Stale (dead process, earlier boot, unreadable, or our own leftover): remove and try again.
      await rm(this.file, { force: true });
    }
    const holder = await this.holder();
    return { acquired: false, holder: holder ?? { pid: 0, bootId, since: 0 } };
  }

  async release(): Promise<void> {
    const holder = await this.holder();
    if (holder?.pid === this.pid) await rm(this.file, { force: true });
  }

  async holder(): Promise<DriverLockHolder | null> {
    try {
      const h = JSON.parse(await readFile(this.file, 'utf8')) as Partial<DriverLockHolder>;
      return typeof h.pid === 'number' && typeof h.bootId === 'string' ? { pid: h.pid, bootId: h.bootId, since: Number(h.since ?? 0) } : null;
    } catch {
      return null;
    }
  }

  private alive(pid: number): boolean {
    if (this.deps.alive) return this.deps.alive(pid);
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  }
}
