import { createHash } from 'node:crypto';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';

export interface WriteProgress {
  readonly phase: 'write' | 'verify';
  readonly done: number;
  readonly total: number;
}

/** Identity of a slot device, to prove two paths are (not) the same storage. */
export interface DeviceIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly rdev: number;
  readonly block: boolean;
}

export async function deviceIdentity(path: string): Promise<DeviceIdentity> {
  const s = await stat(path);
  return { dev: s.dev, ino: s.ino, rdev: s.rdev, block: s.isBlockDevice() };
}

export function sameDevice(a: DeviceIdentity, b: DeviceIdentity): boolean {
  return a.block && b.block ? a.rdev === b.rdev : a.dev === b.dev && a.ino === b.ino;
}

/** Size in bytes of a regular file or block device (block devices via /sys/dev/block/M:m/size). */
export async function deviceSize(path: string, sysRoot = '/sys'): Promise<number> {
  const s = await stat(path);
  if (s.isFile()) return s.size;
  if (!s.isBlockDevice()) throw new OutpostError('OUTPOST_E_OTA_SLOT', `slot ${path} is neither a block device nor a regular file`, { details: { path } });
  const rdev = BigInt(s.rdev);
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  const sectors = (await readFile(`${sysRoot}/dev/block/${major}:${minor}/size`, 'utf8')).trim();
  return Number(sectors) * 512;
}

export interface WriteSlotOptions {
  readonly device: string;
  /** Expected image size and sha256 (from the signed manifest). */
  readonly size: number;
  readonly sha256: string;
  /** Pushes the image bytes, in order, into the sink. */
  readonly produce: (sink: (chunk: Buffer) => Promise<void>) => Promise<void>;
  readonly onProgress?: (p: WriteProgress) => void;
  readonly signal?: AbortSignal;
  readonly readChunk?: number;
}

function writeError(message: string, details: Record<string, unknown>, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_WRITE', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Writes an image to a slot device from offset 0, hashing as it goes, then fdatasync, then reads the
 * written range back and hashes it again. Invariants: the device is opened without truncation (block
 * devices and pre-sized files alike); nothing is written past `size`; success means both the written
 * stream and the read-back bytes hash to the manifest's sha256.
 */
export async function writeSlot(o: WriteSlotOptions): Promise<void> {
  const total = await deviceSize(o.device).catch((e: unknown) => {
    throw new OutpostError('OUTPOST_E_OTA_SLOT', `slot device ${o.device} is not accessible`, { cause: e, details: { device: o.device } });
  });
  if (o.size > total) {
    throw new OutpostError('OUTPOST_E_OTA_SLOT_TOO_SMALL', `image of ${o.size} bytes does not fit slot ${o.device} of ${total} bytes`, { details: { image: o.size, slot: total } });
  }
  let fh: FileHandle;
  try {
    fh = await open(o.device, 'r+');
  } catch (e) {
    throw writeError(`cannot open slot ${o.device} for writing`, { device: o.device }, e);
  }
  try {
    const h = createHash('sha256');
    let pos = 0;
    let lastReport = 0;
    await o.produce(async (chunk) => {
      if (o.signal?.aborted) throw o.signal.reason;
      if (pos + chunk.length > o.size) throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', 'image is longer than the manifest says', { details: { size: o.size } });
      h.update(chunk);
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, pos + off);
        if (bytesWritten === 0) throw writeError('slot write made no progress', { device: o.device, at: pos + off });
        off += bytesWritten;
      }
      pos += chunk.length;
      if (pos - lastReport >= 1 << 20 || pos === o.size) {
        lastReport = pos;
        o.onProgress?.({ phase: 'write', done: pos, total: o.size });
      }
    });
    if (pos !== o.size) throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', 'image is shorter than the manifest says', { details: { size: o.size, got: pos } });
    const streamed = h.digest('hex');
    if (streamed !== o.sha256) {
      throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', 'image sha256 differs from the signed manifest (bundle modified)', { details: { expected: o.sha256, actual: streamed } });
    }
    await fh.datasync();
    const back = await readBackHash(fh, o);
    if (back !== o.sha256) throw writeError('read-back of the slot does not match the image (storage error)', { device: o.device, expected: o.sha256, actual: back });
  } finally {
    await fh.close();
  }
}

async function readBackHash(fh: FileHandle, o: WriteSlotOptions): Promise<string> {
  const h = createHash('sha256');
  const chunk = o.readChunk ?? 4 * 1024 * 1024;
  const bufs = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  const readAt = async (buf: Buffer, at: number) => {
    const want = Math.min(chunk, o.size - at);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, at + got);
      if (bytesRead === 0) throw writeError('slot ended before the image during read-back', { device: o.device, at: at + got });
      got += bytesRead;
    }
    return buf.subarray(0, want);
  };
  let i = 0;
  let next = o.size > 0 ? readAt(bufs[0] as Buffer, 0) : null;
  for (let at = 0; at < o.size; ) {
    if (o.signal?.aborted) throw o.signal.reason;
    const data = await (next as Promise<Buffer>);
    const after = at + data.length;
    i ^= 1;
    next = after < o.size ? readAt(bufs[i] as Buffer, after) : null;
    next?.catch(() => undefined);
    h.update(data);
    at = after;
    o.onProgress?.({ phase: 'verify', done: at, total: o.size });
  }
  return h.digest('hex');
}
