import { OutpostError } from '../../src/errors/outpost-error.js';
import type { PointValue } from '../types.js';
import type { ByteOrder, ModbusTable, ModbusType } from './schema.js';

/**
 * Conversion between Modbus registers (16-bit words, big-endian on the wire) and typed values.
 * A byte order names where each byte of the big-endian value (A = most significant) sits on the wire.
 */

const WIDE: Record<string, string> = { ABCD: 'ABCDEFGH', BADC: 'BADCFEHG', CDAB: 'GHEFCDAB', DCBA: 'HGFEDCBA' };
const NARROW: Record<string, string> = { ABCDEFGH: 'ABCD', BADCFEHG: 'BADC', GHEFCDAB: 'CDAB', HGFEDCBA: 'DCBA' };

/** Number of registers a type occupies (bits count as one unit in the bit tables). */
export function registerCount(type: ModbusType, length?: number): number {
  switch (type) {
    case 'bool':
    case 'bit':
    case 'int16':
    case 'uint16':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return length ?? 1;
  }
}

export function isBitTable(table: ModbusTable): boolean {
  return table === 'coil' || table === 'discrete';
}

function pattern(order: ByteOrder, bytes: number): string {
  if (bytes === 8) return order.length === 8 ? order : (WIDE[order] as string);
  const four = order.length === 4 ? order : (NARROW[order] as string);
  if (bytes === 4) return four;
  return four === 'BADC' || four === 'DCBA' ? 'BA' : 'AB';
}

function wireBytes(registers: readonly number[]): Buffer {
  const b = Buffer.alloc(registers.length * 2);
  registers.forEach((r, i) => b.writeUInt16BE(r & 0xffff, i * 2));
  return b;
}

function toRegisters(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16BE(i));
  return out;
}

/** Reorders wire bytes into a big-endian buffer. */
function toCanonical(wire: Buffer, order: ByteOrder): Buffer {
  const p = pattern(order, wire.length);
  const out = Buffer.alloc(wire.length);
  for (let i = 0; i < wire.length; i++) out[p.charCodeAt(i) - 65] = wire[i] as number;
  return out;
}

function fromCanonical(canon: Buffer, order: ByteOrder): Buffer {
  const p = pattern(order, canon.length);
  const out = Buffer.alloc(canon.length);
  for (let i = 0; i < canon.length; i++) out[i] = canon[p.charCodeAt(i) - 65] as number;
  return out;
}

export interface CodecSpec {
  readonly type: ModbusType;
  readonly byteOrder: ByteOrder;
  readonly bit?: number;
  readonly length?: number;
}

/** Decodes the registers (or bits, as 0/1) of one point. 64-bit integers beyond 2^53 lose precision (values are doubles). */
export function decode(spec: CodecSpec, words: readonly number[]): PointValue {
  const { type } = spec;
  if (type === 'bool') return (words[0] ?? 0) !== 0;
  if (type === 'bit') return (((words[0] ?? 0) >> (spec.bit ?? 0)) & 1) === 1;
  if (type === 'string') {
    const swap = pattern(spec.byteOrder, 2) === 'BA';
    const b = wireBytes(words);
    if (swap) b.swap16();
    const end = b.indexOf(0);
    return b.subarray(0, end < 0 ? b.length : end).toString('latin1').trimEnd();
  }
  const c = toCanonical(wireBytes(words.slice(0, registerCount(type))), spec.byteOrder);
  switch (type) {
    case 'int16':
      return c.readInt16BE(0);
    case 'uint16':
      return c.readUInt16BE(0);
    case 'int32':
      return c.readInt32BE(0);
    case 'uint32':
      return c.readUInt32BE(0);
    case 'float32':
      return c.readFloatBE(0);
    case 'int64':
      return Number(c.readBigInt64BE(0));
    case 'uint64':
      return Number(c.readBigUInt64BE(0));
    case 'float64':
      return c.readDoubleBE(0);
  }
}

function integer(value: PointValue, min: number, max: number, type: string): number {
  // A blank string is not 0 (Number('') === 0 would silently write a zero).
  const n = typeof value === 'string' && value.trim() === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(n) || Math.round(n) !== n || n < min || n > max) {
    throw new OutpostError('OUTPOST_E_HAL_VALUE', `value does not fit a ${type}`, { details: { value, type, min, max } });
  }
  return n;
}

/**
 * Encodes a value into the registers of one point (for `bit`, `current` is the register's present
 * value, whose other bits are kept). Throws OUTPOST_E_HAL_VALUE when the value does not fit.
 */
export function encode(spec: CodecSpec, value: PointValue, current = 0): number[] {
  const { type } = spec;
  if (type === 'bool') return [value === true || value === 1 || value === '1' || value === 'true' ? 1 : 0];
  if (type === 'bit') {
    const on = value === true || value === 1 || value === '1' || value === 'true';
    const mask = 1 << (spec.bit ?? 0);
    return [on ? current | mask : current & ~mask & 0xffff];
  }
  if (type === 'string') {
    const len = (spec.length ?? 1) * 2;
    const text = String(value);
    // Registers hold Latin-1 bytes: a character beyond U+00FF would be written as its low byte.
    if (/[^\u0000-\u00ff]/.test(text)) {
      throw new OutpostError('OUTPOST_E_HAL_VALUE', 'string has characters outside Latin-1', { details: { bytes: len } });
    }
    if (Buffer.byteLength(text, 'latin1') > len) {
      throw new OutpostError('OUTPOST_E_HAL_VALUE', 'string longer than the point', { details: { bytes: len } });
    }
    const b = Buffer.alloc(len);
    b.write(text, 'latin1');
    if (pattern(spec.byteOrder, 2) === 'BA') b.swap16();
    return toRegisters(b);
  }
  const c = Buffer.alloc(registerCount(type) * 2);
  switch (type) {
    case 'int16':
      c.writeInt16BE(integer(value, -32768, 32767, type));
      break;
    case 'uint16':
      c.writeUInt16BE(integer(value, 0, 65535, type));
      break;
    case 'int32':
      c.writeInt32BE(integer(value, -2147483648, 2147483647, type));
      break;
    case 'uint32':
      c.writeUInt32BE(integer(value, 0, 4294967295, type));
      break;
    case 'int64':
      c.writeBigInt64BE(BigInt(integer(value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, type)));
      break;
    case 'uint64':
      c.writeBigUInt64BE(BigInt(integer(value, 0, Number.MAX_SAFE_INTEGER, type)));
      break;
    case 'float32':
    case 'float64': {
      const n = Number(value);
      // Beyond ±FLT_MAX a float32 would silently become ±Infinity.
      if (typeof value === 'string' || !Number.isFinite(n) || (type === 'float32' && !Number.isFinite(Math.fround(n)))) {
        throw new OutpostError('OUTPOST_E_HAL_VALUE', `value is not a finite number for a ${type}`, { details: { value } });
      }
      if (type === 'float32') c.writeFloatBE(n);
      else c.writeDoubleBE(n);
      break;
    }
  }
  return toRegisters(fromCanonical(c, spec.byteOrder));
}
