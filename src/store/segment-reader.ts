import { open, type FileHandle } from 'node:fs/promises';
import { RECORD_HEADER_BYTES, findNextRecord, parseRecord, type RecordFields } from './record-codec.js';

/** What the reader found at its position. */
export type ReadStep =
  | { readonly kind: 'record'; readonly fields: RecordFields; readonly offset: number; readonly size: number }
  /** Bytes [from, to) hold no valid record (a flipped byte, a torn write); reading goes on at `to`. */
  | { readonly kind: 'corrupt'; readonly from: number; readonly to: number }
  /** Nothing more before `limit` (for now). `tornAt` is set when the last bytes before the limit are a partial record. */
  | { readonly kind: 'end'; readonly tornAt?: number };

const CHUNK = 256 * 1024;

/**
 * Sequential reader of one segment file, in chunks.
 * Invariants: never reads at or past `limit()` (the durable size); a record is returned only when
 * its checksum matches; after a corrupt region the reader resumes at the next valid record, so
 * one bad record costs only that record.
 */
export class SegmentReader {
  private fh: FileHandle | null = null;
  private buf = Buffer.alloc(0);
  private bufStart = 0;

  constructor(
    private readonly path: string,
    public position: number,
    private readonly limit: () => number,
    private readonly maxBody: number,
  ) {}

  async next(): Promise<ReadStep> {
    const limit = this.limit();
    const pos = this.position;
    if (pos >= limit) return { kind: 'end' };
    let r = this.parseAt(pos);
    if (r.kind === 'incomplete') {
      await this.fill(pos, Math.max(CHUNK, this.neededAt(pos)), limit);
      r = this.parseAt(pos);
    }
    if (r.kind === 'record') {
      this.position = pos + r.size;
      return { kind: 'record', fields: r.fields, offset: pos, size: r.size };
    }
    if (r.kind === 'incomplete') return { kind: 'end', tornAt: pos };
    // Invalid: resynchronise on the next valid record in the rest of the segment (rare, so read it all).
    await this.fill(pos, limit - pos, limit);
    const at = findNextRecord(this.buf, pos - this.bufStart + 1, this.maxBody);
    const to = at === -1 ? limit : this.bufStart + at;
    this.position = to;
    return { kind: 'corrupt', from: pos, to };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.buf = Buffer.alloc(0);
    await fh?.close();
  }

  private parseAt(pos: number) {
    const rel = pos - this.bufStart;
    if (rel < 0 || rel > this.buf.length) return { kind: 'incomplete' as const };
    return parseRecord(this.buf, rel, this.maxBody);
  }

  /** Bytes needed to hold the record announced at pos (its header says how long it is). */
  private neededAt(pos: number): number {
    const rel = pos - this.bufStart;
    if (rel >= 0 && this.buf.length - rel >= RECORD_HEADER_BYTES) {
      const len = this.buf.readUInt32LE(rel + 4);
      if (len <= this.maxBody) return RECORD_HEADER_BYTES + len;
    }
    return RECORD_HEADER_BYTES;
  }

  private async fill(pos: number, want: number, limit: number): Promise<void> {
    const len = Math.max(0, Math.min(want, limit - pos));
    this.fh ??= await open(this.path, 'r');
    const buf = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await this.fh.read(buf, got, len - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    this.buf = buf.subarray(0, got);
    this.bufStart = pos;
  }
}
