import { createHash } from 'node:crypto';
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';

export interface WriteProgress {
  /** Bytes written to the slot, and bytes read back and hashed, of `total`. */
  readonly written: number;
  readonly verified: number;
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
 * Writes an image to a slot device from offset 0 and proves it landed: every chunk is read back from
 * the slot and hashed, in order, as soon as its write completed (overlapping the next writes), then
 * the slot is fdatasync'ed and the read-back hash must equal the manifest's sha256. Invariants: the
 * device is opened without truncation (block devices and pre-sized files alike); nothing is written
 * past `size`; success means the slot's bytes hash to the signed sha256, which also catches a bundle
 * file changed after it was verified (so the stream itself is not hashed a second time).
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
  const h = createHash('sha256');
  const readBuf = Buffer.allocUnsafe(o.readChunk ?? 4 * 1024 * 1024);
  let written = 0;
  let verified = 0;
  let lastReport = 0;
  const report = (force = false) => {
    if (force || written + verified - lastReport >= 1 << 20) {
      lastReport = written + verified;
      o.onProgress?.({ written, verified, total: o.size });
    }
  };
  const readBack = async (at: number, len: number) => {
    for (let p = at; p < at + len; ) {
      const want = Math.min(readBuf.length, at + len - p);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(readBuf, got, want - got, p + got);
        if (bytesRead === 0) throw writeError('slot ended before the image during read-back', { device: o.device, at: p + got });
        got += bytesRead;
      }
      h.update(readBuf.subarray(0, want));
      p += want;
      verified = p;
      report();
    }
  };
  const writeAt = async (chunk: Buffer, at: number) => {
    let off = 0;
    while (off < chunk.length) {
      const { bytesWritten } = await fh.write(chunk, off, chunk.length - off, at + off);
      if (bytesWritten === 0) throw writeError('slot write made no progress', { device: o.device, at: at + off });
      off += bytesWritten;
    }
    written += chunk.length;
    report();
  };
  // Two writes in flight, and the read-back chain following them in offset order.
  const inFlight = new Set<Promise<void>>();
  let chain: Promise<void> = Promise.resolve();
  try {
    let pos = 0;
    try {
      await o.produce(async (chunk) => {
        if (o.signal?.aborted) throw o.signal.reason;
        if (pos + chunk.length > o.size) throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', 'image is longer than the manifest says', { details: { size: o.size } });
        const at = pos;
        const w = writeAt(chunk, at);
        pos += chunk.length;
        inFlight.add(w);
        void w.then(() => inFlight.delete(w), () => undefined);
        chain = chain.then(async () => {
          await w;
          await readBack(at, chunk.length);
        });
        chain.catch(() => undefined);
        if (inFlight.size >= 2) await Promise.race(inFlight);
      });
    } finally {
      await Promise.allSettled([...inFlight, chain]);
    }
    await Promise.all(inFlight);
    if (pos !== o.size) throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', 'image is shorter than the manifest says', { details: { size: o.size, got: pos } });
    await fh.datasync();
    await chain;
    report(true);
    const back = h.digest('hex');
    if (back !== o.sha256) {
      throw writeError('the slot read back does not hash to the signed image sha256 (bundle changed after verification, or a storage error)', {
        device: o.device,
        expected: o.sha256,
        actual: back,
      });
    }
  } finally {
    await fh.close();
  }
}
