import { open, readFile, readdir, rename, truncate } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { Queue, HEADER, type Segment } from './queue.js';
import { SEGMENT_MAGIC } from './record-codec.js';
import { SegmentReader } from './segment-reader.js';

/** What the store persists besides the segments: where each queue's delivery resumes, and the next sequence number. */
export interface Checkpoint {
  readonly version: 1;
  readonly nextSeq: number;
  readonly queues: Readonly<Record<string, { seg: number; off: number }>>;
}

export const CHECKPOINT_FILE = 'checkpoint.json';

/** Writes the checkpoint atomically: temporary file, fdatasync, rename, directory fsync. */
export async function writeCheckpoint(dir: string, cp: Checkpoint): Promise<void> {
  const tmp = path.join(dir, `${CHECKPOINT_FILE}.tmp`);
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(cp));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path.join(dir, CHECKPOINT_FILE));
  await syncDir(dir);
}

export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

export async function readCheckpoint(dir: string, logger: Logger): Promise<Checkpoint | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, CHECKPOINT_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const cp = JSON.parse(text) as Checkpoint;
    if (cp.version !== 1 || typeof cp.nextSeq !== 'number' || typeof cp.queues !== 'object') throw new Error('unexpected checkpoint shape');
    return cp;
  } catch (e) {
    // A checkpoint is replaced atomically, so this means outside damage: resend everything (duplicates, no loss).
    logger.warn({ err: (e as Error).message }, 'store checkpoint unreadable; delivery restarts at the oldest record');
    return null;
  }
}

/** Damage found while recovering, reported by the store's counters and logs. */
export interface RecoveryReport {
  tornRecords: number;
  corruptRegions: number;
  badSegments: number;
  maxSeq: number;
}

/**
 * Opens every queue directory under `dir`, validates every segment and positions each queue at its
 * checkpoint. The last segment of a queue is the one written when the process stopped: a partial
 * record at its end (a power cut mid-write) is cut off, and only it is lost. A corrupt region
 * elsewhere (a flipped byte) is skipped when reading; the records around it are kept.
 */
export async function recoverQueues(dir: string, cp: Checkpoint | null, maxBody: number, logger: Logger): Promise<{ queues: Queue[]; report: RecoveryReport }> {
  const report: RecoveryReport = { tornRecords: 0, corruptRegions: 0, badSegments: 0, maxSeq: 0 };
  const queues: Queue[] = [];
  for (const name of (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name).sort()) {
    const id = Queue.parseDirName(name);
    if (!id) continue;
    const q = new Queue(`${id.priority}:${id.route}`, id.route, id.priority, path.join(dir, name), maxBody);
    await q.load();
    for (const seg of [...q.segments]) {
      if (!(await hasHeader(seg.file))) {
        report.badSegments++;
        logger.error({ file: seg.file }, 'store segment without a valid header moved aside');
        await rename(seg.file, `${seg.file}.bad`).catch(() => undefined);
        q.segments.splice(q.segments.indexOf(seg), 1);
      }
    }
    const at = cp?.queues[q.key];
    if (at && q.segments.some((s) => s.firstSeq === at.seg)) q.committed = { seg: at.seg, off: at.off };
    else if (at) q.committed = { seg: q.segments.find((s) => s.firstSeq > at.seg)?.firstSeq ?? 0, off: HEADER };
    else q.committed = { seg: q.segments[0]?.firstSeq ?? 0, off: HEADER };
    for (let i = 0; i < q.segments.length; i++) {
      await scanSegment(q.segments[i] as Segment, i === q.segments.length - 1, q, maxBody, report, logger);
    }
    queues.push(q);
  }
  return { queues, report };
}

async function hasHeader(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(SEGMENT_MAGIC.length);
    const { bytesRead } = await fh.read(b, 0, b.length, 0);
    return bytesRead === b.length && b.equals(SEGMENT_MAGIC);
  } finally {
    await fh.close();
  }
}

async function scanSegment(seg: Segment, last: boolean, q: Queue, maxBody: number, report: RecoveryReport, logger: Logger): Promise<void> {
  const fh = await open(seg.file, 'r');
  const size = (await fh.stat()).size;
  await fh.close();
  seg.size = size;
  seg.durable = size;
  const reader = new SegmentReader(seg.file, HEADER, () => size, maxBody);
  let validEnd = HEADER;
  try {
    for (;;) {
      const step = await reader.next();
      if (step.kind === 'record') {
        seg.records++;
        validEnd = step.offset + step.size;
        report.maxSeq = Math.max(report.maxSeq, step.fields.seq);
        if (seg.firstSeq < q.committed.seg || (seg.firstSeq === q.committed.seg && validEnd <= q.committed.off)) seg.consumed++;
        continue;
      }
      if (step.kind === 'corrupt') {
        if (last && step.to >= size) break; // garbage up to the end of the last segment: a torn tail
        report.corruptRegions++;
        logger.warn({ file: seg.file, from: step.from, to: step.to }, 'store: corrupt record skipped');
        continue;
      }
      break;
    }
  } finally {
    await reader.close();
  }
  if (validEnd < size) {
    if (last) {
      report.tornRecords++;
      logger.warn({ file: seg.file, validEnd, size }, 'store: torn last record dropped');
      await truncate(seg.file, validEnd);
      seg.size = validEnd;
      seg.durable = validEnd;
    } else {
      report.corruptRegions++;
      logger.warn({ file: seg.file, from: validEnd, to: size }, 'store: corrupt tail of a sealed segment skipped');
    }
  }
}
