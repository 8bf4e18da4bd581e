/** A small DER writer and reader: enough for X.509 certificates, PKCS#10 requests and TSS2 key files. */

function lengthBytes(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, content: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content]);
}

export const der = {
  seq: (...items: Uint8Array[]) => tlv(0x30, Buffer.concat(items)),
  set: (...items: Uint8Array[]) => tlv(0x31, Buffer.concat(items)),
  /** A non-negative INTEGER from a bigint, number or unsigned big-endian bytes. */
  int(v: bigint | number | Uint8Array): Buffer {
    let b: Buffer;
    if (typeof v === 'bigint' || typeof v === 'number') {
      let hex = BigInt(v).toString(16);
      if (hex.length % 2) hex = `0${hex}`;
      b = Buffer.from(hex, 'hex');
    } else b = Buffer.from(v);
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    b = b.subarray(i);
    if (b.length === 0) b = Buffer.from([0]);
    if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return tlv(0x02, b);
  },
  bool: (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00])),
  null: () => Buffer.from([0x05, 0x00]),
  oid(dotted: string): Buffer {
    const parts = dotted.split('.').map((p) => BigInt(p));
    const [a = 0n, b = 0n, ...rest] = parts;
    const out: number[] = [];
    for (const arc of [a * 40n + b, ...rest]) {
      const bytes: number[] = [Number(arc & 0x7fn)];
      for (let v = arc >> 7n; v > 0n; v >>= 7n) bytes.unshift(Number(v & 0x7fn) | 0x80);
      out.push(...bytes);
    }
    return tlv(0x06, Buffer.from(out));
  },
  octet: (b: Uint8Array) => tlv(0x04, b),
  bitString: (b: Uint8Array) => tlv(0x03, Buffer.concat([Buffer.from([0]), b])),
  utf8: (s: string) => tlv(0x0c, Buffer.from(s, 'utf8')),
  printable: (s: string) => tlv(0x13, Buffer.from(s, 'latin1')),
  ia5: (s: string) => tlv(0x16, Buffer.from(s, 'latin1')),
  /** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
  time(d: Date): Buffer {
    const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
    return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
  },
  /** [n] EXPLICIT: a constructed context tag around one element. */
  explicit: (n: number, inner: Uint8Array) => tlv(0xa0 | n, inner),
  /** [n] IMPLICIT primitive (e.g. GeneralName URI [6], dNSName [2], iPAddress [7], keyIdentifier [0]). */
  implicit: (n: number, content: Uint8Array) => tlv(0x80 | n, content),
};

/** One parsed TLV: `raw` is the whole element, `content` its value bytes. */
export interface DerNode {
  readonly tag: number;
  readonly raw: Buffer;
  readonly content: Buffer;
}

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DerError';
  }
}

/** Reads the element starting at `offset`. Throws DerError on truncation or indefinite lengths. */
export function readTlv(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError('truncated DER header');
  const tag = buf[offset] as number;
  let len = buf[offset + 1] as number;
  let hdr = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new DerError('unsupported DER length');
    if (offset + 2 + n > buf.length) throw new DerError('truncated DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    hdr += n;
  }
  if (offset + hdr + len > buf.length) throw new DerError('DER element runs past its buffer');
  return { tag, raw: buf.subarray(offset, offset + hdr + len), content: buf.subarray(offset + hdr, offset + hdr + len) };
}

/** The elements inside a constructed element's content. */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let off = 0; off < node.content.length; ) {
    const c = readTlv(node.content, off);
    out.push(c);
    off += c.raw.length;
  }
  return out;
}

export function decodeOid(content: Buffer): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const byte of content) {
    v = (v << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const a = first < 80n ? first / 40n : 2n;
  return [a, first - a * 40n, ...arcs].join('.');
}

/** Unsigned big-endian bytes of a DER INTEGER's content (leading zero removed). */
export function integerBytes(content: Buffer): Buffer {
  return content.length > 1 && content[0] === 0 ? content.subarray(1) : content;
}

export function pemEncode(label: string, derBytes: Uint8Array): string {
  const b64 = Buffer.from(derBytes).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every PEM block with the given label, decoded. */
export function pemDecodeAll(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
}
