import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';

export interface StateLockDeps {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Longest wait for another holder (a read-modify-write takes milliseconds; the default is generous for a loaded unit). */
  readonly waitMs?: number;
}

/** The Linux abstract socket name that stands for the OTA data directory `dir`. */
export function lockName(dir: string): string {
  return `\0outpost-ota-state-${createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 24)}`;
}

/**
 * The one mutex of the OTA processes (the agent, mark-good, resume, an operator's CLI) around every
 * read-modify-write of shared update state: the boot environment and the flow record. Each holder reads
 * right before it writes, so no process writes back a copy it read before another process's write.
 * The lock is a bound Linux abstract unix socket named after the OTA data directory: binding is
 * exclusive and the kernel releases it when the holder exits or dies, so there is no stale lock to take
 * over after a crash or power cut (all OTA processes share the host's network namespace: no unit may use
 * PrivateNetwork=). Invariants: waiting is bounded (then OUTPOST_E_OTA_BUSY); within one process the
 * lock is re-entrant and sections run one after another.
 */
export class StateLock {
  private depth = 0;
  private queue: Promise<void> = Promise.resolve();
  readonly name: string;

  constructor(
    dataDir: string,
    private readonly deps: StateLockDeps,
  ) {
    this.name = lockName(dataDir);
  }

  /** Runs `fn` holding the lock. */
  async with<T>(fn: () => Promise<T>): Promise<T> {
    if (this.depth > 0) return fn();
    const turn = this.queue.then(() => this.hold(fn));
    this.queue = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  private async hold<T>(fn: () => Promise<T>): Promise<T> {
    const server = await this.acquire();
    this.depth++;
    try {
      return await fn();
    } finally {
      this.depth--;
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private async acquire(): Promise<Server> {
    const deadline = this.deps.now() + (this.deps.waitMs ?? 60_000);
    for (let attempt = 0, delay = 5; attempt < 100_000; attempt++) {
      const server = createServer();
      const err = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
        server.once('error', (e: NodeJS.ErrnoException) => resolve(e));
        server.listen({ path: this.name, exclusive: true }, () => resolve(null));
      });
      if (err === null) {
        server.unref();
        return server;
      }
      if (err.code !== 'EADDRINUSE') throw new OutpostError('OUTPOST_E_OTA_STATE', 'cannot take the OTA state lock', { cause: err });
      if (this.deps.now() >= deadline) throw new OutpostError('OUTPOST_E_OTA_BUSY', 'another OTA process holds the state lock', { details: { waitedMs: this.deps.waitMs ?? 60_000 } });
      await this.deps.sleep(delay);
      delay = Math.min(delay * 2, 100);
    }
    throw new OutpostError('OUTPOST_E_OTA_BUSY', 'the OTA state lock could not be taken');
  }
}
