import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { writeFileAtomic } from '../atomic-file.js';

export interface LockHolder {
  readonly name: string;
  readonly pid: number;
  readonly reason: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** Whether a process exists (EPERM means it exists but belongs to someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The update lock applications hold to defer installation (a maintenance window, a running batch).
 * A holder is a file `<lockDir>/<name>.lock` containing `{"pid": N, "reason": "…"}` (or just the
 * PID); it counts while that process lives, so a crashed application never blocks updates forever.
 * Invariants: stale files (dead PID, unparsable) are removed when listed; names are file-name safe.
 */
export class UpdateLock {
  constructor(private readonly dir: string) {}

  async holders(): Promise<LockHolder[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const out: LockHolder[] = [];
    for (const n of names.filter((x) => x.endsWith('.lock'))) {
      const file = path.join(this.dir, n);
      const text = await readFile(file, 'utf8').catch(() => '');
      let pid = NaN;
      let reason = '';
      try {
        const j = JSON.parse(text) as { pid?: unknown; reason?: unknown };
        pid = typeof j === 'number' ? j : Number(j.pid);
        reason = typeof j.reason === 'string' ? j.reason : '';
      } catch {
        pid = Number(text.trim());
      }
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) out.push({ name: n.slice(0, -5), pid, reason });
      else await rm(file, { force: true });
    }
    return out;
  }

  async hold(name: string, pid: number, reason: string): Promise<void> {
    if (!NAME.test(name)) throw new OutpostError('OUTPOST_E_CLI_USAGE', `lock name "${name}" must be 1-64 letters, digits, _ . -`);
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(path.join(this.dir, `${name}.lock`), JSON.stringify({ pid, reason }));
  }

  async release(name: string): Promise<void> {
    await rm(path.join(this.dir, `${name}.lock`), { force: true });
  }
}
