import type { Message } from '../model/reading.js';

/** One message on its way upstream, with the priority and TTL of the route that sent it (snapshotted at enqueue). */
export interface UpstreamRecord {
  readonly route: string;
  /** 0 is the highest. */
  readonly priority: number;
  readonly ttlSeconds: number;
  /** ms since the epoch. */
  readonly enqueuedAt: number;
  readonly message: Message;
}

/**
 * Where `$upstream` routes deliver: a local file until a cloud uplink is configured.
 * `enqueue` resolves once the record is durably accepted (written, or persisted in the store);
 * it rejects with an OutpostError when the record cannot be accepted (e.g. the store is full).
 */
export interface Upstream {
  start(): Promise<void>;
  enqueue(record: UpstreamRecord): Promise<void>;
  /** Flushes and releases resources; records accepted before stop are not lost. */
  stop(): Promise<void>;
  connected(): boolean;
  counters(): Readonly<Record<string, number>>;
}
