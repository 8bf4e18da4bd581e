import { crc32 } from 'node:zlib';

/**
 * On-disk framing of one store record, and of a segment file.
 *
 * Segment file: an 8-byte header `OPSTSEG1`, then records back to back.
 * Record: `magic u8 (0xB7) | version u8 (1) | reserved u16 | bodyLen u32 | crc u32 | body`, where
 * `crc = crc32(body, crc32(bodyLen as 4 bytes))` so a corrupted length is detected too, and
 * `body = seq f64 | enqueuedAt f64 | ttlSeconds u32 | priority u8 | routeLen u8 | route | message`.
 * All integers little-endian. `message` is the UTF-8 JSON of the routed message.
 */
export const SEGMENT_MAGIC = Buffer.from('OPSTSEG1', 'latin1');
export const RECORD_MAGIC = 0xb7;
export const RECORD_VERSION = 1;
export const RECORD_HEADER_BYTES = 12;
const BODY_FIXED_BYTES = 8 + 8 + 4 + 1 + 1;

export interface RecordFields {
  readonly seq: number;
  readonly enqueuedAt: number;
  readonly ttlSeconds: number;
  readonly priority: number;
  readonly route: string;
  /** The message JSON (UTF-8), kept as bytes so a JSON payload can embed it without re-encoding (a view into the read buffer). */
  readonly message: Buffer;
}

export function encodeRecord(r: Omit<RecordFields, 'message'> & { message: Buffer | string }): Buffer {
  const route = Buffer.from(r.route, 'utf8');
  const message = typeof r.message === 'string' ? Buffer.from(r.message, 'utf8') : r.message;
  if (route.length > 255) throw new RangeError('route id longer than 255 bytes');
  const bodyLen = BODY_FIXED_BYTES + route.length + message.length;
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + bodyLen);
  buf[0] = RECORD_MAGIC;
  buf[1] = RECORD_VERSION;
  buf.writeUInt16LE(0, 2);
  buf.writeUInt32LE(bodyLen, 4);
  let o = RECORD_HEADER_BYTES;
  buf.writeDoubleLE(r.seq, o);
  buf.writeDoubleLE(r.enqueuedAt, o + 8);
  buf.writeUInt32LE(r.ttlSeconds >>> 0, o + 16);
  buf[o + 20] = r.priority;
  buf[o + 21] = route.length;
  o += BODY_FIXED_BYTES;
  route.copy(buf, o);
  message.copy(buf, o + route.length);
  buf.writeUInt32LE(recordCrc(buf, 4, RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + bodyLen), 8);
  return buf;
}

function recordCrc(buf: Buffer, lenAt: number, bodyStart: number, bodyEnd: number): number {
  return crc32(buf.subarray(bodyStart, bodyEnd), crc32(buf.subarray(lenAt, lenAt + 4)));
}

/** Result of looking at the bytes at one offset. */
export type ParseResult =
  | { readonly kind: 'record'; readonly fields: RecordFields; readonly size: number }
  /** Not enough bytes for the record announced here (a torn tail, or a read that stopped early). */
  | { readonly kind: 'incomplete' }
  /** Not a valid record here (bad magic, version, length or checksum). */
  | { readonly kind: 'invalid' };

/** Parses the record starting at `offset` in `buf`. `maxBody` bounds the announced length. */
export function parseRecord(buf: Buffer, offset: number, maxBody: number): ParseResult {
  if (buf.length - offset < RECORD_HEADER_BYTES) return { kind: 'incomplete' };
  if (buf[offset] !== RECORD_MAGIC || buf[offset + 1] !== RECORD_VERSION) return { kind: 'invalid' };
  const bodyLen = buf.readUInt32LE(offset + 4);
  if (bodyLen < BODY_FIXED_BYTES || bodyLen > maxBody) return { kind: 'invalid' };
  const end = offset + RECORD_HEADER_BYTES + bodyLen;
  if (end > buf.length) return { kind: 'incomplete' };
  if (recordCrc(buf, offset + 4, offset + RECORD_HEADER_BYTES, end) !== buf.readUInt32LE(offset + 8)) return { kind: 'invalid' };
  const b = offset + RECORD_HEADER_BYTES;
  const routeLen = buf[b + 21] as number;
  if (BODY_FIXED_BYTES + routeLen > bodyLen) return { kind: 'invalid' };
  const routeStart = b + BODY_FIXED_BYTES;
  return {
    kind: 'record',
    size: end - offset,
    fields: {
      seq: buf.readDoubleLE(b),
      enqueuedAt: buf.readDoubleLE(b + 8),
      ttlSeconds: buf.readUInt32LE(b + 16),
      priority: buf[b + 20] as number,
      route: buf.toString('utf8', routeStart, routeStart + routeLen),
      message: buf.subarray(routeStart + routeLen, end),
    },
  };
}

/**
 * Finds the next offset ≥ `from` where a complete valid record starts (resynchronisation after
 * corruption), or -1 when none does within `buf`.
 */
export function findNextRecord(buf: Buffer, from: number, maxBody: number): number {
  for (let i = buf.indexOf(RECORD_MAGIC, from); i !== -1; i = buf.indexOf(RECORD_MAGIC, i + 1)) {
    if (parseRecord(buf, i, maxBody).kind === 'record') return i;
  }
  return -1;
}
