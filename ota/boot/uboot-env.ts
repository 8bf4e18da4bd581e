import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { NO_GUARD, type EnvGuard } from './boot-file.js';
import { DirectReader } from './direct-read.js';

/** One copy of the U-Boot environment: a file or block device, the byte offset, the size (CONFIG_ENV_SIZE). */
export interface EnvCopy {
  readonly path: string;
  readonly offset: number;
  readonly size: number;
}

function envError(message: string, details: Record<string, unknown> = {}, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BOOT_ENV', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

/** Parses fw_env.config (`device offset envsize [sectorsize [sectors]]`, one or two lines). */
export function parseFwEnvConfig(text: string, baseDir = '/'): EnvCopy[] {
  const copies: EnvCopy[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [dev, off, size] = line.split(/\s+/);
    const num = (v: string | undefined) => (v !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) : NaN);
    if (!dev || !Number.isSafeInteger(num(off)) || !Number.isSafeInteger(num(size)) || num(size) < 16) throw envError(`fw_env.config line "${line}" is not "device offset size"`);
    if (dev.startsWith('/dev/mtd') || dev.startsWith('/dev/ubi')) throw envError(`U-Boot environment on ${dev} (MTD/UBI) is not supported; only files and block devices`);
    copies.push({ path: path.resolve(baseDir, dev), offset: num(off), size: num(size) });
  }
  if (copies.length < 1 || copies.length > 2) throw envError('fw_env.config must describe one or two environment copies', { copies: copies.length });
  if (copies.length === 2 && copies[0]?.size !== copies[1]?.size) throw envError('both environment copies must have the same size');
  return copies;
}

export async function readFwEnvConfig(file: string): Promise<EnvCopy[]> {
  try {
    return parseFwEnvConfig(await readFile(file, 'utf8'), path.dirname(file));
  } catch (e) {
    if (e instanceof OutpostError) throw e;
    throw envError(`cannot read ${file}`, { file }, e);
  }
}

export interface EnvSnapshot {
  readonly vars: ReadonlyMap<string, string>;
  /** Index of the copy in use, or -1 when no copy has a valid CRC (blank environment). */
  readonly current: number;
  readonly flags: number;
}

/** Encodes variables into one environment copy: CRC32 (LE), [flags], `k=v\0…\0`, 0xFF padding. */
export function encodeEnv(vars: ReadonlyMap<string, string>, size: number, redundant: boolean, flags: number): Buffer {
  const dataStart = redundant ? 5 : 4;
  // CRC, [flags] and at least the empty list's two NULs.
  if (!Number.isSafeInteger(size) || size < dataStart + 2) throw envError('U-Boot environment size is too small', { size });
  const buf = Buffer.alloc(size, 0xff);
  let p = dataStart;
  for (const k of [...vars.keys()].sort()) {
    const entry = Buffer.from(`${k}=${vars.get(k) ?? ''}\0`, 'utf8');
    if (p + entry.length + 1 > size) throw envError('U-Boot environment is full', { size });
    entry.copy(buf, p);
    p += entry.length;
  }
  buf[p] = 0;
  if (p === dataStart) buf[p + 1] = 0;
  if (redundant) buf[4] = flags & 0xff;
  buf.writeUInt32LE(crc32(buf.subarray(dataStart)), 0);
  return buf;
}

/** Decodes one copy; null when it is shorter than its header or its CRC does not match. */
export function decodeEnv(buf: Buffer, redundant: boolean): { vars: Map<string, string>; flags: number } | null {
  const dataStart = redundant ? 5 : 4;
  if (buf.length < dataStart) return null;
  if (buf.readUInt32LE(0) !== crc32(buf.subarray(dataStart))) return null;
  const vars = new Map<string, string>();
  let p = dataStart;
  while (p < buf.length && buf[p] !== 0) {
    const end = buf.indexOf(0, p);
    if (end < 0) return null;
    const entry = buf.subarray(p, end).toString('utf8');
    const eq = entry.indexOf('=');
    if (eq > 0) vars.set(entry.slice(0, eq), entry.slice(eq + 1));
    p = end + 1;
  }
  return { vars, flags: redundant ? (buf[4] ?? 0) : 0 };
}

/**
 * The U-Boot environment as libubootenv (fw_printenv/fw_setenv) and U-Boot lay it out on files and
 * block devices. Invariants: an update is one transaction, a single write of a whole copy followed by
 * fdatasync; with two copies it always goes to the copy not in use, with the incremented flag byte,
 * so a torn write leaves the previous copy valid and selected; nothing is written when no value changes;
 * the update is a read-modify-write under the OTA state lock, and the written copy is read back from the
 * medium (O_DIRECT, what U-Boot reads) and must match, else OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED.
 */
export class UbootEnv {
  constructor(
    readonly copies: readonly EnvCopy[],
    private readonly o: { guard?: EnvGuard; verify?: boolean } = {},
  ) {
    if (copies.length < 1 || copies.length > 2) throw envError('one or two environment copies expected');
  }

  get redundant(): boolean {
    return this.copies.length === 2;
  }

  private async readCopy(c: EnvCopy): Promise<Buffer> {
    const fh = await open(c.path, 'r').catch((e: unknown) => {
      throw envError(`cannot open U-Boot environment ${c.path}`, { path: c.path }, e);
    });
    try {
      const buf = Buffer.alloc(c.size);
      const { bytesRead } = await fh.read(buf, 0, c.size, c.offset);
      if (bytesRead !== c.size) throw envError(`U-Boot environment ${c.path} is shorter than offset + size`, { path: c.path, offset: c.offset, size: c.size });
      return buf;
    } finally {
      await fh.close();
    }
  }

  async read(): Promise<EnvSnapshot> {
    const decoded = [];
    for (const c of this.copies) decoded.push(decodeEnv(await this.readCopy(c), this.redundant));
    const [a, b] = decoded;
    if (!this.redundant) return a ? { vars: a.vars, current: 0, flags: 0 } : { vars: new Map(), current: -1, flags: 0 };
    if (a && !b) return { vars: a.vars, current: 0, flags: a.flags };
    if (!a && b) return { vars: b.vars, current: 1, flags: b.flags };
    if (!a || !b) return { vars: new Map(), current: -1, flags: 0 };
    // Both valid: the higher flag is newer, with 255 → 0 wrapping (libubootenv FLAGS_INCREMENTAL).
    let current = b.flags > a.flags ? 1 : 0;
    if (a.flags === 0xff && b.flags === 0) current = 1;
    else if (b.flags === 0xff && a.flags === 0) current = 0;
    const cur = current === 0 ? a : b;
    return { vars: cur.vars, current, flags: cur.flags };
  }

  /** Reads the written copy back from the medium (O_DIRECT): what U-Boot will read after the reboot. */
  private async verify(copy: EnvCopy, buf: Buffer): Promise<void> {
    let seen: Buffer;
    try {
      const src = await DirectReader.open(copy.path);
      try {
        seen = await src.read(copy.offset, copy.size);
      } finally {
        await src.close();
      }
    } catch (e) {
      throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED', `cannot read the U-Boot environment back from ${copy.path}`, { cause: e, details: { path: copy.path } });
    }
    if (!seen.equals(buf)) {
      throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED', `the U-Boot environment copy at ${copy.path}+${copy.offset} reads back differently than it was written`, {
        details: { path: copy.path, offset: copy.offset },
      });
    }
  }

  /** Applies all changes (null deletes) in one transaction; returns the resulting variables. */
  async update(changes: Readonly<Record<string, string | null>>): Promise<ReadonlyMap<string, string>> {
    return (this.o.guard ?? NO_GUARD).with(() => this.updateLocked(changes));
  }

  private async updateLocked(changes: Readonly<Record<string, string | null>>): Promise<ReadonlyMap<string, string>> {
    for (const [k, v] of Object.entries(changes)) {
      if (k === '' || /[=\0\s]/.test(k)) throw envError(`invalid U-Boot variable name "${k}"`);
      if (v !== null && v.includes('\0')) throw envError(`U-Boot variable ${k} cannot hold a NUL byte`);
    }
    const snap = await this.read();
    const vars = new Map(snap.vars);
    let changed = snap.current < 0;
    for (const [k, v] of Object.entries(changes)) {
      if (v === null ? vars.has(k) : vars.get(k) !== v) changed = true;
      if (v === null) vars.delete(k);
      else vars.set(k, v);
    }
    if (!changed) return vars;
    const target = this.redundant ? (snap.current < 0 ? 0 : 1 - snap.current) : 0;
    const flags = snap.current < 0 ? 1 : (snap.flags + 1) & 0xff;
    const copy = this.copies[target] as EnvCopy;
    const buf = encodeEnv(vars, copy.size, this.redundant, flags);
    const fh = await open(copy.path, 'r+').catch((e: unknown) => {
      throw envError(`cannot open U-Boot environment ${copy.path} for writing`, { path: copy.path }, e);
    });
    try {
      const { bytesWritten } = await fh.write(buf, 0, buf.length, copy.offset);
      if (bytesWritten !== buf.length) throw envError('short write to the U-Boot environment', { path: copy.path });
      await fh.datasync();
    } finally {
      await fh.close();
    }
    if (this.o.verify !== false) await this.verify(copy, buf);
    return vars;
  }
}
