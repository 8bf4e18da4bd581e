import { mkdir, open, rename, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import { OutpostError } from '../errors/outpost-error.js';
import type { Upstream, UpstreamRecord } from './upstream.js';

/**
 * The file upstream: records appended as JSON lines to one file, rotated to `<file>.1` past
 * `maxBytes` (so at most twice `maxBytes` on disk).
 * Invariants: records are written in enqueue order; `enqueue` resolves after the batch holding
 * the record was written and fdatasync'ed; expired records (TTL) are not written; one batch is
 * written at a time.
 */
export class FileUpstream implements Upstream {
  private handle: FileHandle | null = null;
  private size = 0;
  private pending: Array<{ line: string; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing: Promise<void> | null = null;
  private readonly stats = { records_total: 0, bytes_total: 0, expired_total: 0, rotations_total: 0, write_errors_total: 0 };

  constructor(
    private readonly file: string,
    private readonly maxBytes: number,
    private readonly deps: { clock: Clock; logger: Logger; gatewayId: string },
  ) {}

  async start(): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    this.handle = await open(this.file, 'a');
    this.size = (await stat(this.file)).size;
  }

  enqueue(record: UpstreamRecord): Promise<void> {
    if (!this.handle) return Promise.reject(new OutpostError('OUTPOST_E_UPSTREAM_CLOSED', 'upstream is not running'));
    if (this.deps.clock.now() > record.enqueuedAt + record.ttlSeconds * 1000) {
      this.stats.expired_total++;
      return Promise.resolve();
    }
    const line = `${JSON.stringify({ gateway: this.deps.gatewayId, route: record.route, priority: record.priority, kind: record.message.kind, body: record.message.body })}\n`;
    return new Promise((resolve, reject) => {
      this.pending.push({ line, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  async stop(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.handle?.close();
    this.handle = null;
  }

  connected(): boolean {
    return this.handle !== null;
  }

  counters(): Readonly<Record<string, number>> {
    return { ...this.stats };
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0 && this.handle) {
        const batch = this.pending;
        this.pending = [];
        const data = Buffer.from(batch.map((b) => b.line).join(''));
        try {
          if (this.size + data.length > this.maxBytes && this.size > 0) await this.rotate();
          await (this.handle as FileHandle).write(data);
          await (this.handle as FileHandle).datasync();
          this.size += data.length;
          this.stats.records_total += batch.length;
          this.stats.bytes_total += data.length;
          for (const b of batch) b.resolve();
        } catch (e) {
          this.stats.write_errors_total++;
          this.deps.logger.error({ err: e, file: this.file }, 'upstream file write failed');
          const err = new OutpostError('OUTPOST_E_UPSTREAM_WRITE', 'could not write the upstream file', { cause: e, details: { file: this.file } });
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    await rename(this.file, `${this.file}.1`);
    this.handle = await open(this.file, 'a');
    this.size = 0;
    this.stats.rotations_total++;
  }
}
