import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { ByteSource } from './fat-reader.js';

const ALIGN = 4096;

/** The one WebAssembly API used here (the project's TypeScript libs carry no DOM/WebAssembly types). */
declare const WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } };

/** Page-aligned scratch memory: WebAssembly memory is mapped on page boundaries, as O_DIRECT needs. */
function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, bytes);
}

/**
 * Reads a device or file bypassing the page cache (O_DIRECT), i.e. what is on the medium and what a
 * bootloader reads after a reboot. `direct` says whether the bypass is in effect: file systems without
 * O_DIRECT (tmpfs, used by tests) fall back to ordinary reads. Invariants: reads are aligned to 4 KiB
 * (offset rounded down, length up) and trimmed to what was asked; the handle is closed by `close()`.
 */
export class DirectReader implements ByteSource {
  private constructor(
    private readonly fh: FileHandle,
    readonly direct: boolean,
  ) {}

  static async open(path: string): Promise<DirectReader> {
    try {
      return new DirectReader(await open(path, constants.O_RDONLY | constants.O_DIRECT), true);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      return new DirectReader(await open(path, constants.O_RDONLY), false);
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (!this.direct) {
      const b = Buffer.alloc(length);
      const { bytesRead } = await this.fh.read(b, 0, length, offset);
      return b.subarray(0, bytesRead);
    }
    const start = Math.floor(offset / ALIGN) * ALIGN;
    const end = Math.ceil((offset + length) / ALIGN) * ALIGN;
    const buf = alignedBuffer(end - start);
    const { bytesRead } = await this.fh.read(buf, 0, end - start, start);
    return Buffer.from(buf.subarray(offset - start, Math.min(bytesRead, offset - start + length)));
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
