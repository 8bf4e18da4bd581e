import { mkdir, open, readdir, rm, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SEGMENT_MAGIC, type RecordFields } from './record-codec.js';
import { SegmentReader } from './segment-reader.js';

/** One segment file of a queue. `size` is the file size; `durable` the part that was fdatasync'ed. */
export interface Segment {
  readonly firstSeq: number;
  readonly file: string;
  size: number;
  durable: number;
  /** Valid records in the file. */
  records: number;
  /** Records behind the committed position (delivered, expired, quarantined). */
  consumed: number;
  sealed: boolean;
  dropped: boolean;
}

/** A record handed to the uplink and not yet resolved. */
export interface Outstanding {
  readonly seq: number;
  readonly segment: Segment;
  readonly end: number;
  done: boolean;
}

export interface Position {
  /** firstSeq of the segment. */
  readonly seg: number;
  readonly off: number;
}

const SEG_NAME = /^(\d{16})\.seg$/;
export const segName = (firstSeq: number) => `${String(firstSeq).padStart(16, '0')}.seg`;
export const HEADER = SEGMENT_MAGIC.length;

/**
 * One FIFO of the store: the records of one route at one priority, in segment files named after
 * the sequence number of their first record.
 * Invariants: records are appended only to the last (active) segment; readers never see bytes past
 * `durable`; the committed position only moves forward, over records whose outstanding entry is
 * done; a segment is deleted only when it is dropped or entirely behind the committed position.
 */
export class Queue {
  readonly segments: Segment[] = [];
  readonly outstanding: Outstanding[] = [];
  /** Where delivery resumes after a restart: everything before it is done. */
  committed: Position;
  private reader: SegmentReader | null = null;
  private readerSeg: Segment | null = null;
  private appendFh: FileHandle | null = null;
  private appendSeg: Segment | null = null;

  constructor(
    readonly key: string,
    readonly route: string,
    readonly priority: number,
    readonly dir: string,
    private readonly maxBody: number,
  ) {
    this.committed = { seg: 0, off: HEADER };
  }

  static dirName(route: string, priority: number): string {
    return `q-${priority}-${route}`;
  }

  static parseDirName(name: string): { route: string; priority: number } | null {
    const m = /^q-(\d)-(.+)$/.exec(name);
    return m ? { priority: Number(m[1]), route: m[2] as string } : null;
  }

  /** Lists the segment files (no validation). */
  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const names = (await readdir(this.dir)).filter((n) => SEG_NAME.test(n)).sort();
    for (const n of names) {
      const firstSeq = Number((SEG_NAME.exec(n) as RegExpExecArray)[1]);
      this.segments.push({ firstSeq, file: path.join(this.dir, n), size: 0, durable: 0, records: 0, consumed: 0, sealed: true, dropped: false });
    }
  }

  /** Bytes of this queue on disk. */
  diskBytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.size;
    return n;
  }

  /** Records not yet delivered, expired or dropped. */
  liveRecords(): number {
    let n = 0;
    for (const s of this.segments) n += s.records - s.consumed;
    return n;
  }

  /** Appends encoded records (already framed) and returns the segment they went to; the caller syncs. */
  async append(bufs: readonly Buffer[], firstSeq: number, segmentBytes: number): Promise<{ fh: FileHandle; segment: Segment; created: boolean }> {
    let created = false;
    if (this.appendSeg && (this.appendSeg.dropped || this.appendSeg.sealed || this.appendSeg.size >= segmentBytes)) await this.sealActive();
    if (!this.appendSeg || !this.appendFh) {
      const segment: Segment = { firstSeq, file: path.join(this.dir, segName(firstSeq)), size: 0, durable: 0, records: 0, consumed: 0, sealed: false, dropped: false };
      await mkdir(this.dir, { recursive: true });
      this.appendFh = await open(segment.file, 'wx');
      await this.appendFh.write(SEGMENT_MAGIC, 0, SEGMENT_MAGIC.length, 0);
      segment.size = HEADER;
      this.appendSeg = segment;
      this.segments.push(segment);
      if (this.segments.length === 1 || this.committed.seg === 0) this.committed = { seg: firstSeq, off: HEADER };
      created = true;
    }
    const segment = this.appendSeg;
    const data = bufs.length === 1 ? (bufs[0] as Buffer) : Buffer.concat(bufs);
    try {
      await this.appendFh.write(data, 0, data.length, segment.size);
    } catch (e) {
      await this.appendFh.truncate(segment.durable).catch(() => undefined);
      throw e;
    }
    segment.size += data.length;
    return { fh: this.appendFh, segment, created };
  }

  /** After a successful sync: the appended bytes become readable. */
  markDurable(segment: Segment, records: number): void {
    segment.durable = segment.size;
    segment.records += records;
  }

  /** Undo an append whose sync failed: the bytes are cut off again. */
  async rollback(segment: Segment): Promise<void> {
    segment.size = segment.durable;
    if (this.appendSeg === segment) await this.appendFh?.truncate(segment.durable).catch(() => undefined);
  }

  async sealActive(): Promise<void> {
    const fh = this.appendFh;
    if (this.appendSeg) this.appendSeg.sealed = true;
    this.appendFh = null;
    this.appendSeg = null;
    await fh?.close();
  }

  /** True when a record may be read now. */
  hasUnread(): boolean {
    const seg = this.readerSeg ?? this.segmentAt(this.committed);
    if (!seg) return false;
    const pos = this.reader ? this.reader.position : seg.firstSeq === this.committed.seg ? this.committed.off : HEADER;
    if (pos < seg.durable) return true;
    return this.segments.indexOf(seg) < this.segments.length - 1;
  }

  /** Sequence number the next read starts near (first seq of the segment being read), for oldest-first choice. */
  headSeq(): number {
    return (this.readerSeg ?? this.segmentAt(this.committed))?.firstSeq ?? Infinity;
  }

  /**
   * Reads the next record. Returns null when nothing is readable. Corrupt regions are reported via
   * `onCorrupt` and skipped.
   */
  async read(onCorrupt: (segment: Segment, from: number, to: number) => void): Promise<{ fields: RecordFields; size: number; out: Outstanding } | null> {
    for (let guard = 0; guard < 1_000_000; guard++) {
      if (!this.reader) {
        const seg = this.segmentAt(this.committed);
        if (!seg) return null;
        await this.openReader(seg, this.committed.seg === seg.firstSeq ? this.committed.off : HEADER);
      }
      const seg = this.readerSeg as Segment;
      const step = await (this.reader as SegmentReader).next();
      if (step.kind === 'record') {
        const out: Outstanding = { seq: step.fields.seq, segment: seg, end: step.offset + step.size, done: false };
        this.outstanding.push(out);
        return { fields: step.fields, size: step.size, out };
      }
      if (step.kind === 'corrupt') {
        onCorrupt(seg, step.from, step.to);
        continue;
      }
      // End of the readable part of this segment: move on if a later one exists.
      const i = this.segments.indexOf(seg);
      const next = this.segments[i + 1];
      if (!next) return null;
      if (step.tornAt !== undefined) onCorrupt(seg, step.tornAt, seg.durable);
      await this.openReader(next, HEADER);
    }
    return null;
  }

  /** Marks an outstanding record done and advances the committed position over the done prefix. */
  settle(out: Outstanding): void {
    out.done = true;
    while (this.outstanding.length > 0 && (this.outstanding[0] as Outstanding).done) {
      const o = this.outstanding.shift() as Outstanding;
      if (o.segment.dropped) continue;
      o.segment.consumed++;
      this.committed = { seg: o.segment.firstSeq, off: o.end };
    }
  }

  /** Forgets what is outstanding: reading resumes at the committed position (records may be sent again). */
  async rewind(): Promise<void> {
    this.outstanding.length = 0;
    await this.closeReader();
  }

  /** Drops the oldest segment (whatever its state); returns it, with the number of records lost. */
  async dropHead(): Promise<{ segment: Segment; lost: number } | null> {
    const seg = this.segments.find((s) => !s.dropped);
    if (!seg) return null;
    seg.dropped = true;
    const lost = Math.max(0, seg.records - seg.consumed - this.outstanding.filter((o) => o.segment === seg && o.done).length);
    for (let i = this.outstanding.length - 1; i >= 0; i--) if ((this.outstanding[i] as Outstanding).segment === seg) this.outstanding.splice(i, 1);
    if (this.readerSeg === seg) await this.closeReader();
    if (this.appendSeg === seg) await this.sealActive();
    const next = this.segments.find((s) => !s.dropped);
    this.committed = next ? { seg: next.firstSeq, off: HEADER } : { seg: 0, off: HEADER };
    // Records outstanding in later segments stay valid; reading restarts after them at the new head.
    if (this.outstanding.length > 0) await this.closeReader();
    this.outstanding.length = 0;
    return { segment: seg, lost };
  }

  /** Segments that may be deleted: dropped ones and sealed ones entirely behind the committed position. */
  removable(): Segment[] {
    const c = this.committed;
    return this.segments.filter((s) => s.dropped || (s.sealed && (s.firstSeq < c.seg || (s.firstSeq === c.seg && c.off >= s.size))));
  }

  /** Deletes the given segments (files and entries). */
  async remove(segs: readonly Segment[]): Promise<number> {
    let bytes = 0;
    for (const s of segs) {
      if (this.readerSeg === s) await this.closeReader();
      await unlink(s.file).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      bytes += s.size;
      const i = this.segments.indexOf(s);
      if (i >= 0) this.segments.splice(i, 1);
    }
    if (this.segments.length === 0) this.committed = { seg: 0, off: HEADER };
    else if (!this.segments.some((s) => s.firstSeq === this.committed.seg)) this.committed = { seg: (this.segments[0] as Segment).firstSeq, off: HEADER };
    return bytes;
  }

  /** True when everything durable was delivered and nothing waits: the active segment can be sealed for reclaim. */
  drained(): boolean {
    const last = this.segments[this.segments.length - 1];
    return !!last && this.outstanding.length === 0 && this.committed.seg === last.firstSeq && this.committed.off >= last.size;
  }

  activeSegment(): Segment | null {
    return this.appendSeg;
  }

  async close(): Promise<void> {
    await this.closeReader();
    await this.sealActive();
  }

  /** Removes the queue directory when it holds nothing. */
  async removeDirIfEmpty(): Promise<void> {
    if (this.segments.length === 0) await rm(this.dir, { recursive: true, force: true });
  }

  private segmentAt(p: Position): Segment | undefined {
    return this.segments.find((s) => !s.dropped && s.firstSeq >= p.seg);
  }

  private async openReader(seg: Segment, off: number): Promise<void> {
    await this.closeReader();
    this.readerSeg = seg;
    this.reader = new SegmentReader(seg.file, off, () => seg.durable, this.maxBody);
  }

  private async closeReader(): Promise<void> {
    const r = this.reader;
    this.reader = null;
    this.readerSeg = null;
    await r?.close();
  }
}
