import { inflateSync } from 'node:zlib';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** Random access to bytes (a bundle payload, possibly verified block by block). */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws when the range is outside the source. */
  read(offset: number, length: number): Promise<Buffer>;
}

export interface SquashfsFile {
  readonly name: string;
  readonly size: number;
  /** On-disk layout: consecutive data blocks from `blocksStart`, then an optional fragment tail. */
  readonly blocksStart: number;
  readonly blockSizes: readonly number[];
  readonly fragment: { readonly index: number; readonly offset: number } | null;
}

const MAGIC = 0x73717368;
const COMPRESSORS: Record<number, string> = { 1: 'gzip', 2: 'lzma', 3: 'lzo', 4: 'xz', 5: 'lz4', 6: 'zstd' };
const UNCOMPRESSED_BLOCK = 1 << 24;
const META_MAX = 8192;

function corrupt(message: string, details: Record<string, unknown> = {}): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_FORMAT', `squashfs payload: ${message}`, { details });
}

interface Superblock {
  readonly blockSize: number;
  readonly compressor: number;
  readonly rootInode: bigint;
  readonly bytesUsed: number;
  readonly inodeTable: number;
  readonly directoryTable: number;
  readonly fragmentTable: number;
  readonly fragmentCount: number;
}

/**
 * A read-only squashfs 4.0 reader for RAUC bundle payloads: enough to list the root directory and
 * stream regular files (basic and extended inodes, fragments, sparse blocks), gzip or uncompressed.
 * Invariants: every read goes through the injected ByteSource (so verity bundles are checked block by
 * block); offsets are bounds-checked against `bytes_used`; metadata walks are bounded.
 */
export class SquashfsReader {
  private constructor(
    private readonly src: ByteSource,
    private readonly sb: Superblock,
  ) {}

  static async open(src: ByteSource): Promise<SquashfsReader> {
    if (src.size < 96) throw corrupt('shorter than a superblock');
    const b = await src.read(0, 96);
    if (b.readUInt32LE(0) !== MAGIC) throw corrupt('no squashfs magic at the start of the payload');
    const major = b.readUInt16LE(28);
    if (major !== 4) throw corrupt(`version ${major} is not 4`);
    const compressor = b.readUInt16LE(20);
    const blockSize = b.readUInt32LE(12);
    if (blockSize < 4096 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0) throw corrupt('invalid block size', { blockSize });
    const num = (o: number) => {
      const v = b.readBigUInt64LE(o);
      return v === 0xffffffffffffffffn ? -1 : Number(v);
    };
    const sb: Superblock = {
      blockSize,
      compressor,
      rootInode: b.readBigUInt64LE(32),
      bytesUsed: num(40),
      inodeTable: num(64),
      directoryTable: num(72),
      fragmentTable: num(80),
      fragmentCount: b.readUInt32LE(16),
    };
    if (sb.bytesUsed > src.size || sb.bytesUsed < 96) throw corrupt('bytes_used exceeds the payload (truncated?)', { bytesUsed: sb.bytesUsed, size: src.size });
    for (const t of [sb.inodeTable, sb.directoryTable]) if (t < 96 || t >= sb.bytesUsed) throw corrupt('table offset outside the filesystem');
    return new SquashfsReader(src, sb);
  }

  get compressor(): string {
    return COMPRESSORS[this.sb.compressor] ?? `id ${this.sb.compressor}`;
  }

  private decompress(data: Buffer, maxOut: number): Buffer {
    if (this.sb.compressor !== 1) {
      throw new OutpostError('OUTPOST_E_OTA_BUNDLE_UNSUPPORTED', `squashfs compressor ${this.compressor} is not supported; build bundles with gzip (the mksquashfs default)`, {
        details: { compressor: this.compressor },
      });
    }
    try {
      return inflateSync(data, { maxOutputLength: maxOut });
    } catch (e) {
      throw new OutpostError('OUTPOST_E_OTA_BUNDLE_FORMAT', 'squashfs payload: a compressed block does not inflate', { cause: e });
    }
  }

  /** Reads one metadata block at absolute offset; returns its data and the offset of the next block. */
  private async metaBlock(at: number): Promise<{ data: Buffer; next: number }> {
    if (at + 2 > this.sb.bytesUsed) throw corrupt('metadata block outside the filesystem', { at });
    const h = (await this.src.read(at, 2)).readUInt16LE(0);
    const len = h & 0x7fff;
    if (len === 0 || len > META_MAX || at + 2 + len > this.sb.bytesUsed) throw corrupt('bad metadata block header', { at, len });
    const raw = await this.src.read(at + 2, len);
    const data = h & 0x8000 ? raw : this.decompress(raw, META_MAX);
    return { data, next: at + 2 + len };
  }

  /** `length` bytes of a metadata stream starting at (tableStart + block, offset). */
  private async meta(tableStart: number, block: number, offset: number, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    let at = tableStart + block;
    let skip = offset;
    for (let guard = 0; got < length; guard++) {
      if (guard > 1 + length / 1000 + 16) throw corrupt('metadata stream too long');
      const { data, next } = await this.metaBlock(at);
      if (skip > data.length) throw corrupt('metadata offset beyond its block', { skip });
      const piece = data.subarray(skip, skip + (length - got));
      parts.push(piece);
      got += piece.length;
      skip = 0;
      at = next;
    }
    return Buffer.concat(parts, length);
  }

  /** The fixed part of an inode: 32 bytes for basic types, 56 for extended directories and files. */
  private async inodeAt(ref: bigint): Promise<Buffer> {
    const block = Number(ref >> 16n);
    const offset = Number(ref & 0xffffn);
    const basic = await this.meta(this.sb.inodeTable, block, offset, 32);
    const type = basic.readUInt16LE(0);
    return type === 8 || type === 9 ? this.meta(this.sb.inodeTable, block, offset, type === 8 ? 40 : 56) : basic;
  }

  /** Lists the directory at `path` ("" is the root); names to inode references. */
  private async listDir(inodeRef: bigint): Promise<Map<string, { ref: bigint; type: number }>> {
    const ino = await this.inodeAt(inodeRef);
    const type = ino.readUInt16LE(0);
    let startBlock: number;
    let fileSize: number;
    let offset: number;
    if (type === 1) {
      startBlock = ino.readUInt32LE(16);
      fileSize = ino.readUInt16LE(24);
      offset = ino.readUInt16LE(26);
    } else if (type === 8) {
      fileSize = ino.readUInt32LE(20);
      startBlock = ino.readUInt32LE(24);
      offset = ino.readUInt16LE(34);
    } else {
      throw corrupt('not a directory inode', { type });
    }
    const out = new Map<string, { ref: bigint; type: number }>();
    if (fileSize <= 3) return out;
    if (fileSize > 16 * 1024 * 1024) throw corrupt('directory listing too large', { fileSize });
    const listing = await this.meta(this.sb.directoryTable, startBlock, offset, fileSize - 3);
    let p = 0;
    while (p + 12 <= listing.length) {
      const count = listing.readUInt32LE(p) + 1;
      const inodeBlock = listing.readUInt32LE(p + 4);
      p += 12;
      if (count > 256) throw corrupt('directory header count over 256');
      for (let i = 0; i < count; i++) {
        if (p + 8 > listing.length) throw corrupt('directory entry truncated');
        const off = listing.readUInt16LE(p);
        const etype = listing.readUInt16LE(p + 4);
        const nameLen = listing.readUInt16LE(p + 6) + 1;
        const name = listing.subarray(p + 8, p + 8 + nameLen).toString('utf8');
        p += 8 + nameLen;
        out.set(name, { ref: (BigInt(inodeBlock) << 16n) | BigInt(off), type: etype });
      }
    }
    return out;
  }

  /** Finds a regular file by relative path (`manifest.raucm`, `images/rootfs.img`). */
  async file(relPath: string): Promise<SquashfsFile> {
    const parts = relPath.split('/').filter((p) => p !== '' && p !== '.');
    let ref = this.sb.rootInode;
    for (let i = 0; i < parts.length; i++) {
      const entries = await this.listDir(ref);
      const e = entries.get(parts[i] ?? '');
      if (!e) throw new OutpostError('OUTPOST_E_OTA_BUNDLE_FORMAT', `bundle payload has no file ${relPath}`, { details: { path: relPath } });
      ref = e.ref;
    }
    return this.fileInode(ref, parts[parts.length - 1] ?? '');
  }

  private async fileInode(ref: bigint, name: string): Promise<SquashfsFile> {
    const ino = await this.inodeAt(ref);
    const type = ino.readUInt16LE(0);
    let blocksStart: number;
    let size: number;
    let fragIndex: number;
    let fragOffset: number;
    let headerLen: number;
    if (type === 2) {
      blocksStart = ino.readUInt32LE(16);
      fragIndex = ino.readUInt32LE(20);
      fragOffset = ino.readUInt32LE(24);
      size = ino.readUInt32LE(28);
      headerLen = 32;
    } else if (type === 9) {
      blocksStart = Number(ino.readBigUInt64LE(16));
      size = Number(ino.readBigUInt64LE(24));
      fragIndex = ino.readUInt32LE(44);
      fragOffset = ino.readUInt32LE(48);
      headerLen = 56;
    } else {
      throw new OutpostError('OUTPOST_E_OTA_BUNDLE_FORMAT', `bundle payload entry ${name} is not a regular file`, { details: { type } });
    }
    const hasFrag = fragIndex !== 0xffffffff;
    const nBlocks = hasFrag ? Math.floor(size / this.sb.blockSize) : Math.ceil(size / this.sb.blockSize);
    if (!Number.isSafeInteger(size) || nBlocks > this.sb.bytesUsed / 2 + 1) throw corrupt('file size inconsistent with the filesystem', { name, size });
    const block = Number(ref >> 16n);
    const offset = Number(ref & 0xffffn);
    const list = await this.meta(this.sb.inodeTable, block, offset, headerLen + nBlocks * 4);
    const blockSizes: number[] = [];
    for (let i = 0; i < nBlocks; i++) blockSizes.push(list.readUInt32LE(headerLen + i * 4));
    return { name, size, blocksStart, blockSizes, fragment: hasFrag ? { index: fragIndex, offset: fragOffset } : null };
  }

  private async fragmentEntry(index: number): Promise<{ start: number; size: number }> {
    if (index >= this.sb.fragmentCount || this.sb.fragmentTable < 0) throw corrupt('fragment index out of range', { index });
    const perBlock = META_MAX / 16;
    const ptr = (await this.src.read(this.sb.fragmentTable + Math.floor(index / perBlock) * 8, 8)).readBigUInt64LE(0);
    const entry = await this.meta(Number(ptr), 0, (index % perBlock) * 16, 16);
    return { start: Number(entry.readBigUInt64LE(0)), size: entry.readUInt32LE(8) };
  }

  /** A data block, inflated when compressed; cut to `expected` bytes when given. */
  private dataBlock(raw: Buffer, sizeField: number, expected?: number): Buffer {
    const out = sizeField & UNCOMPRESSED_BLOCK ? raw : this.decompress(raw, this.sb.blockSize);
    if (expected === undefined) return out;
    if (out.length < expected) throw corrupt('data block shorter than expected', { expected, actual: out.length });
    return out.length === expected ? out : out.subarray(0, expected);
  }

  /**
   * Streams a file's content to `sink` in order, in pieces of at most ~`readAhead` bytes. Contiguous
   * blocks are read together and the next span is requested while the current one is consumed.
   */
  async stream(f: SquashfsFile, sink: (chunk: Buffer) => Promise<void>, opts: { readAhead?: number; signal?: AbortSignal } = {}): Promise<void> {
    const span = Math.max(opts.readAhead ?? 4 * 1024 * 1024, this.sb.blockSize);
    const bs = this.sb.blockSize;
    // Group blocks into spans of consecutive on-disk bytes.
    const spans: Array<{ at: number; len: number; blocks: Array<{ size: number; index: number }> }> = [];
    let at = f.blocksStart;
    let cur: (typeof spans)[number] | null = null;
    for (let i = 0; i < f.blockSizes.length; i++) {
      const field = f.blockSizes[i] ?? 0;
      const len = field & (UNCOMPRESSED_BLOCK - 1);
      if (!cur || cur.len + len > span) {
        cur = { at, len: 0, blocks: [] };
        spans.push(cur);
      }
      cur.blocks.push({ size: field, index: i });
      cur.len += len;
      at += len;
    }
    if (at > this.sb.bytesUsed) throw corrupt('file data beyond the filesystem', { name: f.name });
    let written = 0;
    const fetch = (s: (typeof spans)[number]) => (s.len > 0 ? this.src.read(s.at, s.len) : Promise.resolve(Buffer.alloc(0)));
    let pending = spans[0] ? fetch(spans[0]) : null;
    for (let si = 0; si < spans.length; si++) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const s = spans[si] as (typeof spans)[number];
      const buf = await (pending as Promise<Buffer>);
      pending = si + 1 < spans.length ? fetch(spans[si + 1] as (typeof spans)[number]) : null;
      // Keep the prefetch from surfacing as an unhandled rejection while this span is consumed.
      pending?.catch(() => undefined);
      // Uncompressed full blocks (incompressible images) are already the file bytes: no copy.
      const plain = s.blocks.every((b) => b.size & UNCOMPRESSED_BLOCK && (b.size & (UNCOMPRESSED_BLOCK - 1)) === Math.min(bs, f.size - b.index * bs));
      let chunk: Buffer;
      if (plain) {
        chunk = buf;
      } else {
        let p = 0;
        const outs: Buffer[] = [];
        for (const b of s.blocks) {
          const len = b.size & (UNCOMPRESSED_BLOCK - 1);
          const expected = Math.min(bs, f.size - b.index * bs);
          if (len === 0) outs.push(Buffer.alloc(expected));
          else outs.push(this.dataBlock(buf.subarray(p, p + len), b.size, expected));
          p += len;
        }
        chunk = outs.length === 1 ? (outs[0] as Buffer) : Buffer.concat(outs);
      }
      written += chunk.length;
      await sink(chunk);
    }
    if (f.fragment) {
      const fe = await this.fragmentEntry(f.fragment.index);
      const len = fe.size & (UNCOMPRESSED_BLOCK - 1);
      if (fe.start + len > this.sb.bytesUsed) throw corrupt('fragment beyond the filesystem');
      const frag = this.dataBlock(await this.src.read(fe.start, len), fe.size);
      const tail = f.size - written;
      if (f.fragment.offset + tail > frag.length) throw corrupt('fragment shorter than the file tail', { name: f.name });
      await sink(Buffer.from(frag.subarray(f.fragment.offset, f.fragment.offset + tail)));
      written += tail;
    }
    if (written !== f.size) throw corrupt('file content shorter than its size', { name: f.name, size: f.size, written });
  }

  /** Whole small file (the manifest); refuses files over `max` bytes. */
  async readSmall(relPath: string, max = 1024 * 1024): Promise<Buffer> {
    const f = await this.file(relPath);
    if (f.size > max) throw corrupt(`${relPath} is larger than ${max} bytes`);
    const parts: Buffer[] = [];
    await this.stream(f, async (c) => void parts.push(c));
    return Buffer.concat(parts);
  }
}
