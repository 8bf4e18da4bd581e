import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** One manufacturing record: which TPM became which serial, with which certificate. */
export interface LedgerRecord {
  readonly time: string;
  readonly serial: string;
  readonly ekSpkiSha256: string;
  readonly ekMethod: 'certificate' | 'allow-list';
  readonly deviceKeyName: string;
  readonly certSha256: string;
  readonly certSerial: string;
  readonly notAfter: string;
  readonly station?: string;
  /** Set when this certificate replaces an earlier one for the same serial and TPM (a re-created key). */
  readonly replaces?: string;
}

/**
 * The manufacturing ledger: JSON lines, append-only, one record per issued device certificate.
 * Invariants: appends are serialised within the process and each is one write of one full line
 * followed by fsync; a torn last line (crash mid-write) is ignored on read and cut off before
 * the next append; any other unparsable line is reported, never skipped silently.
 */
export class Ledger {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  async records(): Promise<LedgerRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new OutpostError('OUTPOST_E_FACTORY_LEDGER', 'cannot read the manufacturing ledger', { cause: e, details: { path: this.path } });
    }
    const lines = text.split('\n');
    const torn = !text.endsWith('\n') ? lines.pop() : (lines.pop(), undefined);
    const out: LedgerRecord[] = [];
    lines.forEach((l, i) => {
      if (l.trim() === '') return;
      try {
        out.push(JSON.parse(l) as LedgerRecord);
      } catch (e) {
        throw new OutpostError('OUTPOST_E_FACTORY_LEDGER', `manufacturing ledger line ${i + 1} is not JSON`, { cause: e, details: { path: this.path, line: i + 1 } });
      }
    });
    if (torn !== undefined && torn.trim() !== '') {
      try {
        out.push(JSON.parse(torn) as LedgerRecord);
      } catch {
        // a torn final line from a crash mid-append: not a record
      }
    }
    return out;
  }

  append(record: LedgerRecord): Promise<void> {
    const next = this.tail.then(() => this.write(record));
    this.tail = next.catch(() => undefined);
    return next;
  }

  private async write(record: LedgerRecord): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
      const fh = await open(this.path, 'a+');
      try {
        const { size } = await fh.stat();
        if (size > 0) {
          // a torn last line (crash mid-append) is cut off, so it never becomes a bad line in the middle
          const window = Math.min(size, 64 * 1024);
          const tail = Buffer.alloc(window);
          await fh.read(tail, 0, window, size - window);
          if (tail[window - 1] !== 0x0a) {
            const nl = tail.lastIndexOf(0x0a);
            await fh.truncate(nl < 0 ? size - window : size - window + nl + 1);
          }
        }
        await fh.write(`${JSON.stringify(record)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new OutpostError('OUTPOST_E_FACTORY_LEDGER', 'cannot append to the manufacturing ledger', { cause: e, details: { path: this.path } });
    }
  }
}

