import { open, rename, stat, type FileHandle } from 'node:fs/promises';

/**
 * Where records the broker refused (or that failed too often) go instead of blocking their queue:
 * one JSON line each, fdatasync'ed, in `file`; past `maxBytes` the file is rotated to `<file>.1`,
 * so at most twice `maxBytes` is kept. `outpost uplink quarantine` prints them.
 */
export class Quarantine {
  private fh: FileHandle | null = null;
  private size = 0;

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
  ) {}

  async open(): Promise<void> {
    this.fh = await open(this.file, 'a');
    this.size = (await stat(this.file)).size;
  }

  async add(entry: Record<string, unknown>): Promise<void> {
    const line = Buffer.from(`${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`);
    if (this.size > 0 && this.size + line.length > this.maxBytes) {
      await this.fh?.close();
      await rename(this.file, `${this.file}.1`);
      this.fh = await open(this.file, 'a');
      this.size = 0;
    }
    if (!this.fh) this.fh = await open(this.file, 'a');
    await this.fh.write(line);
    await this.fh.datasync();
    this.size += line.length;
  }

  bytes(): number {
    return this.size;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    await fh?.close();
  }
}
