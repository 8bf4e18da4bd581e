import { OutpostError } from '../../src/errors/outpost-error.js';

/**
 * Big-endian writer for TPM structures.
 * Invariants: `bytes()` returns exactly what was written, in order; TPM2B helpers prefix a u16 size
 * and refuse payloads over 0xffff bytes.
 */
export class TpmWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 256) {
    this.buf = Buffer.alloc(initial);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf.writeUInt8(v & 0xff, this.len);
    this.len += 1;
    return this;
  }

  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16BE(v & 0xffff, this.len);
    this.len += 2;
    return this;
  }

  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.len);
    this.len += 4;
    return this;
  }

  i32(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.len);
    this.len += 4;
    return this;
  }

  u64(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.len);
    this.len += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }

  /** A TPM2B: u16 size, then the bytes. */
  tpm2b(b: Uint8Array = new Uint8Array(0)): this {
    if (b.length > 0xffff) throw new RangeError(`TPM2B payload of ${b.length} bytes exceeds 65535`);
    return this.u16(b.length).bytes(b);
  }

  /** A TPM2B whose content is written by `fill` (e.g. TPM2B_PUBLIC around a TPMT_PUBLIC). */
  sized(fill: (w: TpmWriter) => void): this {
    const inner = new TpmWriter();
    fill(inner);
    return this.tpm2b(inner.toBuffer());
  }

  get length(): number {
    return this.len;
  }

  /** A copy of everything written. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

/**
 * Big-endian reader over a TPM response.
 * Invariants: never reads past the end (a short buffer raises OUTPOST_E_TPM_PROTOCOL naming `context`);
 * `offset` only moves forward.
 */
export class TpmReader {
  private off = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly context = 'response',
  ) {}

  private need(n: number): void {
    if (this.off + n > this.buf.length) {
      throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response is shorter than its structure requires', {
        details: { context: this.context, offset: this.off, wanted: n, length: this.buf.length },
      });
    }
  }

  u8(): number {
    this.need(1);
    const v = this.buf.readUInt8(this.off);
    this.off += 1;
    return v;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.off);
    this.off += 4;
    return v;
  }

  u64(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.off);
    this.off += 8;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = Buffer.from(this.buf.subarray(this.off, this.off + n));
    this.off += n;
    return v;
  }

  tpm2b(): Buffer {
    return this.bytes(this.u16());
  }

  /** A TPM2B parsed by `parse`, which must consume exactly its content. */
  sized<T>(parse: (r: TpmReader) => T): T {
    const inner = new TpmReader(this.tpm2b(), this.context);
    const v = parse(inner);
    inner.end();
    return v;
  }

  get offset(): number {
    return this.off;
  }

  get remaining(): number {
    return this.buf.length - this.off;
  }

  /** Asserts that everything was consumed. */
  end(): void {
    if (this.off !== this.buf.length) {
      throw new OutpostError('OUTPOST_E_TPM_PROTOCOL', 'TPM response has trailing bytes after its structure', {
        details: { context: this.context, offset: this.off, length: this.buf.length },
      });
    }
  }
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

export function fromHex(s: string): Buffer {
  const clean = s.replace(/[\s|]/g, '');
  if (!/^([0-9a-fA-F]{2})*$/.test(clean)) throw new RangeError('not an even-length hex string');
  return Buffer.from(clean, 'hex');
}
