import { createHash, type X509Certificate } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { OutpostError, isOutpostError } from '../../src/errors/outpost-error.js';
import { parseCms, verifyCms, type ParsedCms } from './cms.js';
import { parseManifest, type Manifest, type ManifestImage } from './manifest.js';
import { SquashfsReader, type ByteSource, type SquashfsFile } from './squashfs.js';
import { VERITY_BLOCK, VerityVerifier, verityLayout } from './verity.js';

const MAX_CMS = 1024 * 1024;
const HASH_CHUNK = 4 * 1024 * 1024;

export interface OpenBundleOptions {
  readonly keyring: readonly X509Certificate[];
  /** Time the certificates must be valid at. */
  readonly now: Date;
  /** Progress of the payload hash (plain bundles) in bytes. */
  readonly onHashProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

function formatError(message: string, details: Record<string, unknown> = {}, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_FORMAT', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

function missingError(path: string, cause?: unknown): OutpostError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'does not exist' : code === 'EACCES' || code === 'EPERM' ? 'is not readable (permission denied)' : 'cannot be opened';
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_MISSING', `bundle file ${path} ${why}`, { details: { path }, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * Opens a bundle file for reading: OUTPOST_E_OTA_BUNDLE_MISSING when it does not exist, cannot be read or is not a
 * regular file (a directory, a device), so a wrong path is never reported as a damaged bundle.
 */
export async function openBundleFile(path: string): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw missingError(path, e);
  }
  let regular: boolean;
  try {
    regular = (await fh.stat()).isFile();
  } catch (e) {
    await fh.close();
    throw missingError(path, e);
  }
  if (!regular) {
    await fh.close();
    throw new OutpostError('OUTPOST_E_OTA_BUNDLE_MISSING', `bundle ${path} is not a regular file`, { details: { path } });
  }
  return fh;
}

/** Bytes of the payload region of the bundle file, unchecked (plain bundles are hashed as a whole first). */
class FileRegion implements ByteSource {
  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    if (offset < 0 || length < 0 || offset + length > this.size) throw formatError('read outside the bundle payload (truncated?)', { offset, length, size: this.size });
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await this.fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) throw formatError('bundle file ended early (truncated?)', { offset: offset + got });
      got += bytesRead;
    }
    return buf;
  }
}

/**
 * Payload bytes of a verity bundle: every read is widened to whole 4 KiB blocks and each block is
 * checked against the verified hash tree before any byte of it is returned. A few recently verified
 * blocks are cached for the small metadata reads of the squashfs reader.
 */
class VerityRegion implements ByteSource {
  private readonly cache = new Map<number, Buffer>();

  constructor(
    private readonly raw: FileRegion,
    private readonly verifier: VerityVerifier,
  ) {}

  get size(): number {
    return this.raw.size;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(offset / VERITY_BLOCK);
    const last = Math.floor((offset + length - 1) / VERITY_BLOCK);
    if (first === last && this.cache.has(first)) {
      const b = this.cache.get(first) as Buffer;
      return Buffer.from(b.subarray(offset - first * VERITY_BLOCK, offset - first * VERITY_BLOCK + length));
    }
    const data = await this.raw.read(first * VERITY_BLOCK, (last - first + 1) * VERITY_BLOCK);
    this.verifier.verifyBlocks(first, data);
    if (last - first < 4) {
      for (let b = first; b <= last; b++) this.cache.set(b, Buffer.from(data.subarray((b - first) * VERITY_BLOCK, (b - first + 1) * VERITY_BLOCK)));
      while (this.cache.size > 64) this.cache.delete(this.cache.keys().next().value as number);
    }
    const start = offset - first * VERITY_BLOCK;
    return data.subarray(start, start + length);
  }
}

/** What `openBundle` established: the signer is trusted and the manifest is the signed one. */
export interface BundleInfo {
  readonly path: string;
  readonly size: number;
  readonly format: 'plain' | 'verity';
  readonly manifest: Manifest;
  readonly signer: string;
  readonly chain: readonly string[];
  readonly signingTime: Date | null;
  readonly compressor: string;
}

/**
 * A verified RAUC bundle, open for reading images. Invariants: it exists only after the signature,
 * the chain and (verity) the hash tree were checked; every image byte of a verity bundle is checked
 * against the tree as it is read; image sizes are checked against the squashfs entries.
 */
export class VerifiedBundle {
  private constructor(
    private readonly fh: FileHandle,
    private readonly fs: SquashfsReader,
    readonly info: BundleInfo,
    private readonly verity: { raw: FileRegion; verifier: VerityVerifier } | null = null,
  ) {}

  get manifest(): Manifest {
    return this.info.manifest;
  }

  /** Opens and verifies `path`. Throws OUTPOST_E_OTA_BUNDLE_* naming what is wrong; writes nothing. */
  static async open(path: string, opts: OpenBundleOptions): Promise<VerifiedBundle> {
    const fh = await openBundleFile(path);
    try {
      return await VerifiedBundle.verify(fh, path, opts);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  private static async verify(fh: FileHandle, path: string, opts: OpenBundleOptions): Promise<VerifiedBundle> {
    const size = (await fh.stat()).size;
    if (size < 4096 + 8) throw formatError('file is too small to be a RAUC bundle (truncated?)', { size });
    const tail = Buffer.alloc(8);
    await fh.read(tail, 0, 8, size - 8);
    const cmsSize = tail.readBigUInt64BE(0);
    if (cmsSize === 0n || cmsSize > BigInt(Math.min(MAX_CMS, size - 8 - 4096))) {
      throw formatError('no RAUC signature trailer at the end of the file (truncated or not a bundle)', { cmsSize: cmsSize.toString(), size });
    }
    const cmsLen = Number(cmsSize);
    const cmsDer = Buffer.alloc(cmsLen);
    await fh.read(cmsDer, 0, cmsLen, size - 8 - cmsLen);
    let cms: ParsedCms;
    try {
      cms = parseCms(cmsDer);
    } catch (e) {
      throw formatError('the signature trailer is not a CMS structure (truncated or not a bundle)', { size }, e);
    }
    const beforeCms = size - 8 - cmsLen;
    if (cms.eContent) return VerifiedBundle.verifyVerity(fh, path, size, beforeCms, cms, opts);
    // Plain: detached signature over the whole squashfs payload.
    const region = new FileRegion(fh, beforeCms);
    const digest = await hashRegion(region, cms.digest, opts);
    const { chain } = verifyCms(cms, digest, opts.keyring, opts.now);
    const sq = await SquashfsReader.open(region);
    const manifest = parseManifest((await sq.readSmall('manifest.raucm')).toString('utf8'));
    if (manifest.format !== 'plain') throw formatError(`manifest says format=${manifest.format} but the bundle is laid out as plain`);
    return new VerifiedBundle(fh, sq, info(path, size, 'plain', manifest, cms, chain, sq));
  }

  private static async verifyVerity(fh: FileHandle, path: string, size: number, beforeCms: number, cms: ParsedCms, opts: OpenBundleOptions): Promise<VerifiedBundle> {
    const manifestBytes = cms.eContent as Buffer;
    const { chain } = verifyCms(cms, createHash(cms.digest).update(manifestBytes).digest(), opts.keyring, opts.now);
    const manifest = parseManifest(manifestBytes.toString('utf8'));
    if (manifest.format === 'crypt') throw new OutpostError('OUTPOST_E_OTA_BUNDLE_UNSUPPORTED', 'crypt bundles (encrypted payload) are not supported');
    if (manifest.format !== 'verity' || !manifest.verity) throw formatError('signed manifest is inline but does not describe a verity bundle');
    const payloadSize = beforeCms - manifest.verity.size;
    if (payloadSize <= 0 || payloadSize % VERITY_BLOCK !== 0) throw formatError('bundle size does not match the signed verity size (truncated?)', { size, veritySize: manifest.verity.size });
    const blocks = payloadSize / VERITY_BLOCK;
    if (verityLayout(blocks).hashBlocks * VERITY_BLOCK !== manifest.verity.size) {
      throw formatError('bundle size does not match the signed verity size (truncated or padded)', { size, veritySize: manifest.verity.size });
    }
    const tree = await new FileRegion(fh, beforeCms).read(payloadSize, manifest.verity.size);
    const verifier = new VerityVerifier(tree, blocks, Buffer.from(manifest.verity.salt, 'hex'), Buffer.from(manifest.verity.hash, 'hex'));
    const raw = new FileRegion(fh, payloadSize);
    const sq = await SquashfsReader.open(new VerityRegion(raw, verifier));
    return new VerifiedBundle(fh, sq, info(path, size, 'verity', manifest, cms, chain, sq), { raw, verifier });
  }

  /**
   * Checks, before anything is written, that every image the manifest names is in the payload with the size
   * the manifest says, and every payload block of a verity bundle against the hash tree (plain bundles were
   * hashed as a whole by `open`). Image reads are checked again while writing, so a file changed in between
   * is still caught. Throws OUTPOST_E_OTA_BUNDLE_PAYLOAD (or _FORMAT for an unreadable payload).
   */
  async verifyPayload(opts: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {}): Promise<void> {
    for (const image of this.manifest.images) await this.payloadFile(image);
    if (!this.verity) return;
    const { raw, verifier } = this.verity;
    const chunk = HASH_CHUNK;
    let next = raw.read(0, Math.min(chunk, raw.size));
    for (let at = 0; at < raw.size; ) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const buf = await next;
      const after = at + buf.length;
      if (after < raw.size) {
        next = raw.read(after, Math.min(chunk, raw.size - after));
        next.catch(() => undefined);
      }
      verifier.verifyBlocks(at / VERITY_BLOCK, buf);
      at = after;
      opts.onProgress?.(at, raw.size);
    }
  }

  /** The image for a slot class, or null. */
  image(slotClass: string): ManifestImage | null {
    return this.manifest.images.find((i) => i.slotClass === slotClass) ?? null;
  }

  /** The payload's file for a manifest image; OUTPOST_E_OTA_BUNDLE_PAYLOAD when it is missing or its size differs. */
  private async payloadFile(image: ManifestImage): Promise<SquashfsFile> {
    let f: SquashfsFile;
    try {
      f = await this.fs.file(image.filename);
    } catch (e) {
      if (!isOutpostError(e, 'OUTPOST_E_OTA_BUNDLE_FORMAT') || e.details['path'] !== image.filename) throw e;
      throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', `the manifest names image ${image.filename}, which the payload does not contain`, { cause: e, details: { filename: image.filename } });
    }
    if (f.size !== image.size) {
      throw new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', `image ${image.filename} is ${f.size} bytes in the payload but the manifest says ${image.size}`, {
        details: { filename: image.filename, payload: f.size, manifest: image.size },
      });
    }
    return f;
  }

  /** Streams an image's bytes (verified block by block for verity bundles); checks its size against the manifest. */
  async streamImage(image: ManifestImage, sink: (chunk: Buffer) => Promise<void>, opts: { signal?: AbortSignal; readAhead?: number } = {}): Promise<void> {
    await this.fs.stream(await this.payloadFile(image), sink, opts);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

function info(path: string, size: number, format: 'plain' | 'verity', manifest: Manifest, cms: ParsedCms, chain: X509Certificate[], sq: SquashfsReader): BundleInfo {
  return {
    path,
    size,
    format,
    manifest,
    signer: cms.signer.subject.replace(/\n/g, ', '),
    chain: chain.map((c) => c.subject.replace(/\n/g, ', ')),
    signingTime: cms.signingTime,
    compressor: sq.compressor,
  };
}

async function hashRegion(region: FileRegion, algorithm: string, opts: OpenBundleOptions): Promise<Buffer> {
  const h = createHash(algorithm);
  let next = region.size > 0 ? region.read(0, Math.min(HASH_CHUNK, region.size)) : null;
  for (let at = 0; at < region.size; ) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const buf = await (next as Promise<Buffer>);
    const after = at + buf.length;
    next = after < region.size ? region.read(after, Math.min(HASH_CHUNK, region.size - after)) : null;
    next?.catch(() => undefined);
    h.update(buf);
    at = after;
    opts.onHashProgress?.(at, region.size);
  }
  return h.digest();
}
