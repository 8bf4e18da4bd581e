import { OutpostError } from '../../src/errors/outpost-error.js';

/** Random access to the bytes of a FAT file system (a partition device, an image file, a buffer). */
export interface ByteSource {
  read(offset: number, length: number): Promise<Buffer>;
}

interface Geometry {
  readonly type: 12 | 16 | 32;
  readonly bytesPerSector: number;
  readonly clusterBytes: number;
  readonly fatOffset: number;
  readonly rootDirOffset: number;
  readonly rootDirBytes: number;
  readonly rootCluster: number;
  readonly dataOffset: number;
  readonly clusters: number;
}

interface DirEntry {
  readonly name: string;
  readonly shortName: string;
  readonly attr: number;
  readonly cluster: number;
  readonly size: number;
}

const ATTR_LFN = 0x0f;
const ATTR_DIR = 0x10;
const ATTR_VOLUME = 0x08;
/** Longest cluster chain followed (a 64 MiB ESP with 512-byte clusters has 131,072). */
const MAX_CHAIN = 4 * 1024 * 1024;

function fatError(message: string, details: Record<string, unknown> = {}): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BOOT_ENV', message, { details });
}

/**
 * A read-only FAT12/16/32 reader that resolves a path the way a bootloader's FAT driver does: boot
 * sector → directory entries (long names or 8.3, case-insensitive) → cluster chain. Used to read a
 * boot environment back from the partition device, which is what GRUB sees after a reboot, instead of
 * through the kernel's page cache. Invariants: it never writes; every offset it reads is checked against
 * the file system's geometry and every chain is bounded, so a damaged file system gives an error, not a
 * loop or an out-of-range read.
 */
export class FatReader {
  private constructor(
    private readonly src: ByteSource,
    private readonly g: Geometry,
  ) {}

  static async open(src: ByteSource): Promise<FatReader> {
    const b = await src.read(0, 512);
    if (b.length < 512 || b[510] !== 0x55 || b[511] !== 0xaa) throw fatError('not a FAT file system (no boot sector signature)');
    const bytesPerSector = b.readUInt16LE(11);
    const sectorsPerCluster = b[13] as number;
    const reserved = b.readUInt16LE(14);
    const fats = b[16] as number;
    const rootEntries = b.readUInt16LE(17);
    const total = b.readUInt16LE(19) || b.readUInt32LE(32);
    const fatSectors = b.readUInt16LE(22) || b.readUInt32LE(36);
    if (![512, 1024, 2048, 4096].includes(bytesPerSector) || sectorsPerCluster === 0 || (sectorsPerCluster & (sectorsPerCluster - 1)) !== 0 || fats === 0 || reserved === 0 || fatSectors === 0) {
      throw fatError('not a FAT file system (implausible boot sector)', { bytesPerSector, sectorsPerCluster, fats, reserved });
    }
    const rootDirSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
    const dataSector = reserved + fats * fatSectors + rootDirSectors;
    if (dataSector >= total) throw fatError('not a FAT file system (no data region)');
    const clusters = Math.floor((total - dataSector) / sectorsPerCluster);
    const type: 12 | 16 | 32 = clusters < 4085 ? 12 : clusters < 65525 ? 16 : 32;
    return new FatReader(src, {
      type,
      bytesPerSector,
      clusterBytes: bytesPerSector * sectorsPerCluster,
      fatOffset: reserved * bytesPerSector,
      rootDirOffset: (reserved + fats * fatSectors) * bytesPerSector,
      rootDirBytes: rootDirSectors * bytesPerSector,
      rootCluster: type === 32 ? b.readUInt32LE(44) : 0,
      dataOffset: dataSector * bytesPerSector,
      clusters,
    });
  }

  get fatType(): 12 | 16 | 32 {
    return this.g.type;
  }

  /** The bytes of the file at `path` (`/`-separated, relative to the file system's root). */
  async readFile(path: string): Promise<Buffer> {
    const parts = path.split('/').filter((p) => p !== '');
    if (parts.length === 0) throw fatError('empty path');
    let dir: Buffer = this.g.type === 32 ? await this.readChain(this.g.rootCluster, null) : await this.src.read(this.g.rootDirOffset, this.g.rootDirBytes);
    for (let i = 0; i < parts.length; i++) {
      const want = (parts[i] as string).toLowerCase();
      const e = parseDirectory(dir).find((x) => x.name.toLowerCase() === want || x.shortName.toLowerCase() === want);
      if (!e) throw fatError(`no ${parts.slice(0, i + 1).join('/')} on the FAT file system`, { path });
      const last = i === parts.length - 1;
      if (last && (e.attr & ATTR_DIR) !== 0) throw fatError(`${path} is a directory`, { path });
      if (!last && (e.attr & ATTR_DIR) === 0) throw fatError(`${parts.slice(0, i + 1).join('/')} is not a directory`, { path });
      if (last) return e.size === 0 ? Buffer.alloc(0) : this.readChain(e.cluster, e.size);
      dir = await this.readChain(e.cluster, null);
    }
    throw fatError('unreachable');
  }

  private async next(cluster: number): Promise<number> {
    const { type, fatOffset } = this.g;
    if (type === 32) return (await this.src.read(fatOffset + cluster * 4, 4)).readUInt32LE(0) & 0x0fffffff;
    if (type === 16) return (await this.src.read(fatOffset + cluster * 2, 2)).readUInt16LE(0);
    const off = cluster + (cluster >> 1);
    const v = (await this.src.read(fatOffset + off, 2)).readUInt16LE(0);
    return cluster & 1 ? v >> 4 : v & 0x0fff;
  }

  private isEnd(c: number): boolean {
    const { type } = this.g;
    return c >= (type === 32 ? 0x0ffffff8 : type === 16 ? 0xfff8 : 0xff8);
  }

  /** Reads a cluster chain: `size` bytes of a file, or a whole directory (size null). */
  private async readChain(first: number, size: number | null): Promise<Buffer> {
    const out: Buffer[] = [];
    let got = 0;
    let c = first;
    for (let n = 0; n < MAX_CHAIN; n++) {
      if (c < 2 || c >= this.g.clusters + 2) throw fatError(`cluster chain leaves the file system (cluster ${c})`, { cluster: c });
      out.push(await this.src.read(this.g.dataOffset + (c - 2) * this.g.clusterBytes, this.g.clusterBytes));
      got += this.g.clusterBytes;
      if (size !== null && got >= size) return Buffer.concat(out).subarray(0, size);
      const nx = await this.next(c);
      if (this.isEnd(nx)) {
        if (size !== null) throw fatError(`cluster chain ends after ${got} bytes of a ${size}-byte file`, { size, got });
        return Buffer.concat(out);
      }
      c = nx;
    }
    throw fatError('cluster chain too long (a loop in the FAT?)');
  }
}

/** Directory entries of one directory's bytes, with long names joined (checksums verified). */
export function parseDirectory(buf: Buffer): DirEntry[] {
  const out: DirEntry[] = [];
  let lfn: string[] = [];
  let lfnSum = -1;
  for (let off = 0; off + 32 <= buf.length; off += 32) {
    const first = buf[off] as number;
    if (first === 0x00) break;
    if (first === 0xe5) {
      lfn = [];
      continue;
    }
    const attr = buf[off + 11] as number;
    if (attr === ATTR_LFN) {
      const seq = first & 0x1f;
      const chars = [...buf.subarray(off + 1, off + 11), ...buf.subarray(off + 14, off + 26), ...buf.subarray(off + 28, off + 32)];
      let s = '';
      for (let i = 0; i + 1 < chars.length; i += 2) {
        const u = (chars[i] as number) | ((chars[i + 1] as number) << 8);
        if (u === 0x0000 || u === 0xffff) break;
        s += String.fromCharCode(u);
      }
      if (first & 0x40) {
        lfn = [];
        lfnSum = buf[off + 13] as number;
      }
      lfn[seq - 1] = s;
      continue;
    }
    if (attr & ATTR_VOLUME) {
      lfn = [];
      continue;
    }
    const raw = buf.subarray(off, off + 11);
    let sum = 0;
    for (const ch of raw) sum = (((sum & 1) << 7) + (sum >> 1) + ch) & 0xff;
    const base = raw.subarray(0, 8).toString('latin1').trimEnd();
    const ext = raw.subarray(8, 11).toString('latin1').trimEnd();
    const shortName = ext ? `${base}.${ext}` : base;
    const longName = lfn.length > 0 && sum === lfnSum && lfn.every((x) => typeof x === 'string') ? lfn.join('') : '';
    lfn = [];
    const cluster = (buf.readUInt16LE(off + 20) << 16) | buf.readUInt16LE(off + 26);
    out.push({ name: longName || shortName, shortName, attr, cluster: cluster >>> 0, size: buf.readUInt32LE(off + 28) });
  }
  return out;
}
