import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { checkTarget, type SystemView } from './flash-guard.js';

/**
 * `outpost flash`: writes a disk image (.img, or .img.zst decompressed on the fly by zstd) to a block device
 * or a file, then reads the target back and compares sha256.
 * Invariants: the target is checked (not mounted, not the running system) before it is opened; a block
 * device gets every byte (zeros too, so no old file system survives in a blank partition), a file target is
 * truncated and written sparse; success is reported only after fdatasync and a matching read-back.
 */
export interface FlashOptions {
  readonly image: string;
  readonly target: string;
  readonly system: SystemView;
  readonly progress: (phase: 'write' | 'verify', done: number, total: number | undefined) => void;
  /** Flushes a block device's buffer cache before the read-back (blockdev --flushbufs). */
  readonly flushBuffers: (device: string) => Promise<void>;
  readonly chunkBytes?: number;
}

export interface FlashResult {
  readonly bytes: number;
  readonly sha256: string;
  readonly kind: 'block' | 'file';
}

/** Content size stored in the first zstd frame header, when the compressor knew it. */
export function zstdContentSize(header: Buffer): number | undefined {
  if (header.length < 6 || header.readUInt32LE(0) !== 0xfd2fb528) return undefined;
  const fhd = header[4] as number;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  const dictFlag = fhd & 3;
  let off = 5 + (single ? 0 : 1) + [0, 1, 2, 4][dictFlag]!;
  const size = fcsFlag === 0 ? (single ? 1 : 0) : [0, 2, 4, 8][fcsFlag]!;
  if (size === 0 || header.length < off + size) return undefined;
  if (size === 1) return header[off];
  if (size === 2) return header.readUInt16LE(off) + 256;
  if (size === 4) return header.readUInt32LE(off);
  return Number(header.readBigUInt64LE(off));
}

function openSource(image: string): { stream: Readable; total: number | undefined; done: Promise<void> } {
  let fd: number;
  try {
    fd = openSync(image, 'r');
  } catch (e) {
    throw new OutpostError('OUTPOST_E_FLASH_SOURCE', `cannot read the image ${image}`, { cause: e });
  }
  const head = Buffer.alloc(18);
  const n = readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const isZstd = n >= 4 && head.readUInt32LE(0) === 0xfd2fb528;
  if (!isZstd && !/\.(img|raw|bin)$/.test(image)) {
    throw new OutpostError('OUTPOST_E_FLASH_SOURCE', `${image} is neither a zstd-compressed image nor a raw .img`, { details: { image } });
  }
  const child = isZstd ? spawn('zstd', ['-dc', '--', image], { stdio: ['ignore', 'pipe', 'pipe'] }) : spawn('cat', ['--', image], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const done = new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new OutpostError('OUTPOST_E_FLASH_SOURCE', `cannot decompress ${image} (is zstd installed?)`, { cause: e })));
    child.once('close', (code) => (code === 0 ? resolve() : reject(new OutpostError('OUTPOST_E_FLASH_SOURCE', `${image} is damaged or truncated (decompression failed)`, { details: { image, stderr: err.trim().slice(0, 500) } }))));
  });
  return { stream: child.stdout, total: isZstd ? zstdContentSize(head.subarray(0, n)) : statSync(image).size, done };
}

export async function flashImage(o: FlashOptions): Promise<FlashResult> {
  const info = checkTarget(o.target, o.system, o.image);
  const src = openSource(o.image);
  const abandon = () => {
    src.done.catch(() => undefined);
    src.stream.destroy();
  };
  if (info.kind === 'block' && src.total !== undefined && info.sizeBytes !== undefined && info.sizeBytes < src.total) {
    abandon();
    throw new OutpostError('OUTPOST_E_FLASH_TARGET', `${o.target} holds ${info.sizeBytes} bytes; the image needs ${src.total}`, { details: { target: o.target } });
  }
  let fd: number;
  try {
    fd = openSync(o.target, info.kind === 'block' ? 'r+' : 'w');
  } catch (e) {
    abandon();
    throw new OutpostError('OUTPOST_E_FLASH_TARGET', `cannot open ${o.target} for writing`, { cause: e });
  }
  const hash = createHash('sha256');
  let pos = 0;
  const chunk = o.chunkBytes ?? 4 * 1024 * 1024;
  let pending: Buffer = Buffer.alloc(0);
  const zero = Buffer.alloc(chunk);
  const put = (buf: Buffer) => {
    // Files stay sparse: an all-zero chunk becomes a hole (the final ftruncate sets the size).
    if (!(info.kind === 'file' && buf.length === chunk && buf.equals(zero))) {
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off, pos + off);
    }
    pos += buf.length;
    o.progress('write', pos, src.total);
  };
  try {
    for await (const data of src.stream) {
      hash.update(data as Buffer);
      pending = pending.length === 0 ? (data as Buffer) : Buffer.concat([pending, data as Buffer]);
      while (pending.length >= chunk) {
        put(pending.subarray(0, chunk));
        pending = pending.subarray(chunk);
      }
    }
    await src.done;
    if (pending.length > 0) put(pending);
    if (info.kind === 'file') ftruncateSync(fd, pos);
    fdatasyncSync(fd);
  } catch (e) {
    closeSync(fd);
    abandon();
    if (e instanceof OutpostError) throw e;
    throw new OutpostError('OUTPOST_E_FLASH_WRITE', `writing ${o.target} failed at byte ${pos}; the target is incomplete: flash it again`, { cause: e, details: { offset: pos } });
  }
  closeSync(fd);
  const sha256 = hash.digest('hex');
  if (info.kind === 'block') await o.flushBuffers(o.target);
  // Read back exactly the bytes written.
  const rfd = openSync(o.target, 'r');
  const back = createHash('sha256');
  const buf = Buffer.alloc(chunk);
  let read = 0;
  try {
    while (read < pos) {
      const n = readSync(rfd, buf, 0, Math.min(chunk, pos - read), read);
      if (n === 0) break;
      back.update(buf.subarray(0, n));
      read += n;
      o.progress('verify', read, pos);
    }
  } finally {
    closeSync(rfd);
  }
  const got = back.digest('hex');
  if (read !== pos || got !== sha256) {
    throw new OutpostError('OUTPOST_E_FLASH_VERIFY', `read-back of ${o.target} does not match the image (${read} of ${pos} bytes read)`, { details: { expected: sha256, actual: got, bytesRead: read } });
  }
  return { bytes: pos, sha256, kind: info.kind };
}
