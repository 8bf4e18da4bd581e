import { createHash, type Hash } from 'node:crypto';
import { open, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import type { Clock } from '../../hal/clock.js';
import { OutpostError } from '../../src/errors/outpost-error.js';

export interface DownloadOptions {
  readonly url: string;
  /** Final path; the partial download lives in `<dest>.part` (+ `.part.json`) until complete. */
  readonly dest: string;
  readonly sha256?: string;
  readonly maxBytes: number;
  readonly retries: number;
  readonly retryDelayMs: number;
  /** A connection that delivers nothing for this long is dropped and resumed. */
  readonly stallTimeoutMs: number;
  readonly fetch: typeof fetch;
  readonly clock: Clock;
  readonly onProgress?: (done: number, total: number | null) => void;
  readonly signal?: AbortSignal;
}

interface PartMeta {
  url: string;
  validator: string | null;
}

function dlError(message: string, details: Record<string, unknown>, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_DOWNLOAD', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

class Retryable extends Error {}

/**
 * Downloads a bundle over HTTP(S) into `<dest>.part`, resuming with `Range` (and `If-Range`, so a
 * changed file restarts from zero) after a dropped connection or a crash, then renames it to `dest`.
 * Invariants: `dest` appears only complete, fdatasync'ed and (when given) with the requested sha256;
 * a mismatching file is deleted; the byte count never exceeds `maxBytes`; retries are bounded.
 */
export async function download(o: DownloadOptions): Promise<{ path: string; bytes: number; sha256: string }> {
  const part = `${o.dest}.part`;
  const metaFile = `${o.dest}.part.json`;
  let meta: PartMeta | null = await readFile(metaFile, 'utf8').then((t) => JSON.parse(t) as PartMeta, () => null);
  let offset = 0;
  if (meta?.url === o.url) offset = await stat(part).then((s) => s.size, () => 0);
  else meta = null;
  const fh = await open(part, offset > 0 ? 'r+' : 'w+');
  let h: Hash = createHash('sha256');
  try {
    if (offset > 0) h = await rehash(fh, offset);
    else await fh.truncate(0);
    let total: number | null = null;
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await fetchFrom(o, fh, offset, meta, h);
        offset = r.offset;
        total = r.total;
        h = r.hash;
        if (r.meta) {
          meta = r.meta;
          await writeFile(metaFile, JSON.stringify(meta));
        }
        if (total === null || offset === total) break;
        throw new Retryable(`connection ended at ${offset} of ${total} bytes`);
      } catch (e) {
        if (o.signal?.aborted) throw o.signal.reason;
        if (!(e instanceof Retryable) || attempt >= o.retries) {
          if (e instanceof OutpostError) throw e;
          throw dlError(`download of ${o.url} failed after ${attempt + 1} attempts`, { url: o.url, offset }, e);
        }
        await o.clock.sleep(o.retryDelayMs * 2 ** Math.min(attempt, 5), o.signal);
        // Re-read what is on disk: a partial write is resumed from the file size.
        offset = (await fh.stat()).size;
        h = await rehash(fh, offset);
      }
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const sha256 = h.digest('hex');
  if (o.sha256 !== undefined && sha256 !== o.sha256.toLowerCase()) {
    await rm(part, { force: true });
    await rm(metaFile, { force: true });
    throw new OutpostError('OUTPOST_E_OTA_DIGEST', `downloaded bundle sha256 ${sha256} differs from the requested ${o.sha256}`, { details: { url: o.url, expected: o.sha256, actual: sha256 } });
  }
  await rename(part, o.dest);
  await rm(metaFile, { force: true });
  return { path: o.dest, bytes: offset, sha256 };
}

/** After a failed attempt the hash state may not match the file: rebuild it from what is on disk. */
async function rehash(fh: FileHandle, upTo: number): Promise<Hash> {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (let at = 0; at < upTo; ) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, upTo - at), at);
    if (bytesRead === 0) break;
    h.update(buf.subarray(0, bytesRead));
    at += bytesRead;
  }
  return h;
}

async function fetchFrom(
  o: DownloadOptions,
  fh: FileHandle,
  offset: number,
  meta: PartMeta | null,
  hash: Hash,
): Promise<{ offset: number; total: number | null; hash: Hash; meta: PartMeta | null }> {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  let stall: unknown = null;
  const arm = () => {
    if (stall !== null) o.clock.clearTimeout(stall);
    stall = o.clock.setTimeout(() => ctl.abort(new Retryable('download stalled')), o.stallTimeoutMs);
  };
  const headers: Record<string, string> = {};
  if (offset > 0) {
    headers['range'] = `bytes=${offset}-`;
    if (meta?.validator) headers['if-range'] = meta.validator;
  }
  try {
    arm();
    let res: Response;
    try {
      res = await o.fetch(o.url, { headers, signal: ctl.signal, redirect: 'follow' });
    } catch (e) {
      throw new Retryable(`request failed: ${describe(e)}`);
    }
    let h = hash;
    let total: number | null = null;
    if (res.status === 416 && offset > 0) {
      const m = /\*\/(\d+)/.exec(res.headers.get('content-range') ?? '');
      if (m && Number(m[1]) === offset) return { offset, total: offset, hash: h, meta: null };
      res = await o.fetch(o.url, { signal: ctl.signal });
    }
    if (res.status === 206 && offset > 0) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== offset) throw dlError('server answered a range that does not start where the download stopped', { url: o.url, offset, contentRange: res.headers.get('content-range') });
      total = m[3] === '*' ? null : Number(m[3]);
    } else if (res.status === 200) {
      if (offset > 0) {
        await fh.truncate(0);
        offset = 0;
        h = createHash('sha256');
      }
      const len = res.headers.get('content-length');
      total = len !== null ? Number(len) : null;
    } else if (res.status === 408 || res.status === 429 || res.status >= 500) {
      throw new Retryable(`HTTP ${res.status}`);
    } else {
      throw dlError(`server answered HTTP ${res.status} for ${o.url}`, { url: o.url, status: res.status });
    }
    if (total !== null && total > o.maxBytes) throw dlError(`bundle of ${total} bytes exceeds ota.download.maxBytes (${o.maxBytes})`, { url: o.url, total, maxBytes: o.maxBytes });
    const validator = res.headers.get('etag') ?? res.headers.get('last-modified');
    const newMeta: PartMeta = { url: o.url, validator: validator && !validator.startsWith('W/') ? validator : null };
    if (!res.body) throw new Retryable('response without a body');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        arm();
        const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        if (offset + buf.length > o.maxBytes) throw dlError(`bundle exceeds ota.download.maxBytes (${o.maxBytes})`, { url: o.url, maxBytes: o.maxBytes });
        await writeAll(fh, buf, offset);
        h.update(buf);
        offset += buf.length;
        o.onProgress?.(offset, total);
      }
    } catch (e) {
      if (e instanceof OutpostError) throw e;
      throw new Retryable(`connection dropped: ${describe(e)}`);
    }
    return { offset, total: total ?? offset, hash: h, meta: newMeta };
  } finally {
    if (stall !== null) o.clock.clearTimeout(stall);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

async function writeAll(fh: FileHandle, buf: Buffer, at: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, at + off);
    off += bytesWritten;
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.name : String(e);
}
