import { describe, expect, it } from 'vitest';
import { decode, encode, registerCount, type CodecSpec } from '../../hal/modbus/codec.js';
import { blockKey, planReads, splitBlock, type ReadBlock } from '../../hal/modbus/planner.js';
import type { ByteOrder, ModbusPointConfig, ModbusTable, ModbusType } from '../../hal/modbus/schema.js';
import { OutpostError } from '../../src/errors/outpost-error.js';

const ORDERS4 = ['ABCD', 'BADC', 'CDAB', 'DCBA'] as const;
const WIDE_OF = { ABCD: 'ABCDEFGH', BADC: 'BADCFEHG', CDAB: 'GHEFCDAB', DCBA: 'HGFEDCBA' } as const;
const ALL_ORDERS: ByteOrder[] = ['ABCD', 'BADC', 'CDAB', 'DCBA', 'ABCDEFGH', 'BADCFEHG', 'GHEFCDAB', 'HGFEDCBA'];

const spec = (type: ModbusType, byteOrder: ByteOrder = 'ABCD', extra: Partial<CodecSpec> = {}): CodecSpec => ({ type, byteOrder, ...extra });

function halValueError(fn: () => unknown): OutpostError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    expect((e as OutpostError).code).toBe('OUTPOST_E_HAL_VALUE');
    return e as OutpostError;
  }
  throw new Error('expected OUTPOST_E_HAL_VALUE, nothing was thrown');
}

/** Hand-computed register vectors: [type, value, { order: registers }]. 4-letter orders; the 8-letter names must give the same. */
const VECTORS: Array<[ModbusType, number, Record<(typeof ORDERS4)[number], number[]>]> = [
  // 0x4148_0000
  ['float32', 12.5, { ABCD: [0x4148, 0x0000], BADC: [0x4841, 0x0000], CDAB: [0x0000, 0x4148], DCBA: [0x0000, 0x4841] }],
  // 0xC050_0000
  ['float32', -3.25, { ABCD: [0xc050, 0x0000], BADC: [0x50c0, 0x0000], CDAB: [0x0000, 0xc050], DCBA: [0x0000, 0x50c0] }],
  // 0xFFFF_FFFE
  ['int32', -2, { ABCD: [0xffff, 0xfffe], BADC: [0xffff, 0xfeff], CDAB: [0xfffe, 0xffff], DCBA: [0xfeff, 0xffff] }],
  ['int32', 0x12345678, { ABCD: [0x1234, 0x5678], BADC: [0x3412, 0x7856], CDAB: [0x5678, 0x1234], DCBA: [0x7856, 0x3412] }],
  ['uint32', 0xdeadbeef, { ABCD: [0xdead, 0xbeef], BADC: [0xadde, 0xefbe], CDAB: [0xbeef, 0xdead], DCBA: [0xefbe, 0xadde] }],
  ['int16', -2, { ABCD: [0xfffe], BADC: [0xfeff], CDAB: [0xfffe], DCBA: [0xfeff] }],
  ['int16', 0x1234, { ABCD: [0x1234], BADC: [0x3412], CDAB: [0x1234], DCBA: [0x3412] }],
  ['uint16', 0xabcd, { ABCD: [0xabcd], BADC: [0xcdab], CDAB: [0xabcd], DCBA: [0xcdab] }],
  // 0x0011_2233_4455_6677 = bytes A..H = 00 11 22 33 44 55 66 77
  ['uint64', 0x0011223344556677, {
    ABCD: [0x0011, 0x2233, 0x4455, 0x6677],
    BADC: [0x1100, 0x3322, 0x5544, 0x7766],
    CDAB: [0x6677, 0x4455, 0x2233, 0x0011],
    DCBA: [0x7766, 0x5544, 0x3322, 0x1100],
  }],
  ['int64', -2, {
    ABCD: [0xffff, 0xffff, 0xffff, 0xfffe],
    BADC: [0xffff, 0xffff, 0xffff, 0xfeff],
    CDAB: [0xfffe, 0xffff, 0xffff, 0xffff],
    DCBA: [0xfeff, 0xffff, 0xffff, 0xffff],
  }],
  // 0x3FF8_0000_0000_0000
  ['float64', 1.5, {
    ABCD: [0x3ff8, 0, 0, 0],
    BADC: [0xf83f, 0, 0, 0],
    CDAB: [0, 0, 0, 0x3ff8],
    DCBA: [0, 0, 0, 0xf83f],
  }],
  // 0xC009_21FB_5444_2D18 (−π)
  ['float64', -Math.PI, {
    ABCD: [0xc009, 0x21fb, 0x5444, 0x2d18],
    BADC: [0x09c0, 0xfb21, 0x4454, 0x182d],
    CDAB: [0x2d18, 0x5444, 0x21fb, 0xc009],
    DCBA: [0x182d, 0x4454, 0xfb21, 0x09c0],
  }],
];

describe('modbus codec: hand-computed register vectors', () => {
  for (const [type, value, byOrder] of VECTORS) {
    for (const order of ORDERS4) {
      const words = byOrder[order];
      it(`${type} ${value} ${order} ⇄ [${words.map((w) => w.toString(16).padStart(4, '0')).join(', ')}]`, () => {
        expect(encode(spec(type, order), value)).toEqual(words);
        expect(decode(spec(type, order), words)).toBe(value);
        // The 8-letter name spells the same layout.
        expect(encode(spec(type, WIDE_OF[order]), value)).toEqual(words);
        expect(decode(spec(type, WIDE_OF[order]), words)).toBe(value);
      });
    }
  }

  it('the float32 12.5 vectors of the manual', () => {
    expect(encode(spec('float32', 'ABCD'), 12.5)).toEqual([0x4148, 0x0000]);
    expect(encode(spec('float32', 'CDAB'), 12.5)).toEqual([0x0000, 0x4148]);
    expect(encode(spec('float32', 'BADC'), 12.5)).toEqual([0x4841, 0x0000]);
    expect(encode(spec('float32', 'DCBA'), 12.5)).toEqual([0x0000, 0x4841]);
  });

  it('decodes only the registers of the type and ignores the rest of the slice', () => {
    expect(decode(spec('uint16'), [0x0102, 0xffff])).toBe(0x0102);
    expect(decode(spec('float32'), [0x4148, 0x0000, 0x1234])).toBe(12.5);
  });
});

describe('modbus codec: round trips in every byte order', () => {
  const cases: Array<[ModbusType, number[]]> = [
    ['int16', [-32768, -1, 0, 1, 32767]],
    ['uint16', [0, 1, 0x8000, 65535]],
    ['int32', [-2147483648, -65536, -1, 0, 65535, 2147483647]],
    ['uint32', [0, 65536, 0x80000000, 4294967295]],
    ['int64', [Number.MIN_SAFE_INTEGER, -4294967296, -1, 0, 4294967296, Number.MAX_SAFE_INTEGER]],
    ['uint64', [0, 1, 4294967296, Number.MAX_SAFE_INTEGER]],
    ['float32', [0, -0.5, 12.5, 1e-3, -123456.75, 3.4028234663852886e38]],
    ['float64', [0, -0.1, Math.PI, 1e300, -5e-324, Number.MAX_VALUE]],
  ];
  for (const [type, values] of cases) {
    for (const order of ALL_ORDERS) {
      it(`${type} ${order}`, () => {
        for (const v of values) {
          const words = encode(spec(type, order), v);
          expect(words).toHaveLength(registerCount(type));
          expect(words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff)).toBe(true);
          const back = decode(spec(type, order), words);
          if (type === 'float32') expect(back).toBe(Math.fround(v));
          else expect(back).toBe(v);
        }
      });
    }
  }

  it('different byte orders really give different registers (a 4-byte value with distinct bytes)', () => {
    const seen = new Set(ORDERS4.map((o) => encode(spec('uint32', o), 0x01020304).join(',')));
    expect(seen.size).toBe(4);
    const wide = new Set(ORDERS4.map((o) => encode(spec('uint64', o), 0x0001020304050607).join(',')));
    expect(wide.size).toBe(4);
  });
});

describe('modbus codec: bool, bit and string', () => {
  it('bool: any non-zero register/bit is true; true/1/"1"/"true" encode as 1', () => {
    expect(decode(spec('bool'), [1])).toBe(true);
    expect(decode(spec('bool'), [0])).toBe(false);
    expect(decode(spec('bool'), [0xff00])).toBe(true);
    for (const v of [true, 1, '1', 'true']) expect(encode(spec('bool'), v)).toEqual([1]);
    for (const v of [false, 0, '0', 'false']) expect(encode(spec('bool'), v)).toEqual([0]);
  });

  it('bit: decodes one bit of the register', () => {
    expect(decode(spec('bit', 'ABCD', { bit: 3 }), [0x0008])).toBe(true);
    expect(decode(spec('bit', 'ABCD', { bit: 3 }), [0xfff7])).toBe(false);
    expect(decode(spec('bit', 'ABCD', { bit: 15 }), [0x8000])).toBe(true);
    expect(decode(spec('bit', 'ABCD', { bit: 0 }), [0x8000])).toBe(false);
    expect(decode(spec('bit', 'ABCD', { bit: 0 }), [0x0001])).toBe(true);
  });

  it('bit: encoding sets or clears its bit and preserves the other bits', () => {
    expect(encode(spec('bit', 'ABCD', { bit: 3 }), true, 0x1200)).toEqual([0x1208]);
    expect(encode(spec('bit', 'ABCD', { bit: 3 }), false, 0xffff)).toEqual([0xfff7]);
    expect(encode(spec('bit', 'ABCD', { bit: 3 }), true, 0x0008)).toEqual([0x0008]);
    expect(encode(spec('bit', 'ABCD', { bit: 3 }), false, 0x1200)).toEqual([0x1200]);
    expect(encode(spec('bit', 'ABCD', { bit: 15 }), true, 0x00ff)).toEqual([0x80ff]);
    expect(encode(spec('bit', 'ABCD', { bit: 15 }), false, 0xffff)).toEqual([0x7fff]);
    expect(encode(spec('bit', 'ABCD', { bit: 0 }), 1, 0xa5a4)).toEqual([0xa5a5]);
    expect(encode(spec('bit', 'ABCD', { bit: 0 }), 'false', 0xa5a5)).toEqual([0xa5a4]);
  });

  it('bit: every bit round-trips against a busy register', () => {
    for (let bit = 0; bit < 16; bit++) {
      const on = encode(spec('bit', 'ABCD', { bit }), true, 0x5a5a);
      expect(decode(spec('bit', 'ABCD', { bit }), on)).toBe(true);
      expect((on[0] as number) & ~(1 << bit) & 0xffff).toBe(0x5a5a & ~(1 << bit) & 0xffff);
      const off = encode(spec('bit', 'ABCD', { bit }), false, 0x5a5a);
      expect(decode(spec('bit', 'ABCD', { bit }), off)).toBe(false);
      expect((off[0] as number) | (1 << bit)).toBe(0x5a5a | (1 << bit));
    }
  });

  it('string: two characters per register, high byte first; BADC/DCBA swap the bytes of each register', () => {
    // "OUTPOST" + NUL padding in 4 registers: 'O'=4F 'U'=55 'T'=54 'P'=50 'S'=53
    const abcd = [0x4f55, 0x5450, 0x4f53, 0x5400];
    const swapped = [0x554f, 0x5054, 0x534f, 0x0054];
    for (const o of ['ABCD', 'CDAB', 'ABCDEFGH', 'GHEFCDAB'] as const) {
      expect(encode(spec('string', o, { length: 4 }), 'OUTPOST')).toEqual(abcd);
      expect(decode(spec('string', o, { length: 4 }), abcd)).toBe('OUTPOST');
    }
    for (const o of ['BADC', 'DCBA', 'BADCFEHG', 'HGFEDCBA'] as const) {
      expect(encode(spec('string', o, { length: 4 }), 'OUTPOST')).toEqual(swapped);
      expect(decode(spec('string', o, { length: 4 }), swapped)).toBe('OUTPOST');
    }
  });

  it('string: trailing NULs are trimmed, and nothing after the first NUL is kept', () => {
    expect(decode(spec('string', 'ABCD', { length: 3 }), [0x4142, 0x0000, 0x0000])).toBe('AB');
    expect(decode(spec('string', 'ABCD', { length: 3 }), [0x4142, 0x0043, 0x4400])).toBe('AB');
    expect(decode(spec('string', 'ABCD', { length: 2 }), [0x4142, 0x2020])).toBe('AB'); // space padding too
    expect(decode(spec('string', 'ABCD', { length: 2 }), [0x4142, 0x4344])).toBe('ABCD'); // full, no NUL
    expect(decode(spec('string', 'ABCD', { length: 2 }), [0, 0])).toBe('');
  });

  it('string: fills exactly, pads with NULs, and round-trips in every order', () => {
    expect(encode(spec('string', 'ABCD', { length: 2 }), 'ABCD')).toEqual([0x4142, 0x4344]);
    expect(encode(spec('string', 'ABCD', { length: 3 }), 'A')).toEqual([0x4100, 0, 0]);
    for (const o of ALL_ORDERS) {
      for (const text of ['', 'x', 'Serial-42', 'ten chars!']) {
        const words = encode(spec('string', o, { length: 5 }), text);
        expect(words).toHaveLength(5);
        expect(decode(spec('string', o, { length: 5 }), words)).toBe(text);
      }
    }
  });

  it('string: longer than the point is rejected', () => {
    const e = halValueError(() => encode(spec('string', 'ABCD', { length: 2 }), 'ABCDE'));
    expect(e.details['bytes']).toBe(4);
  });
});

describe('modbus codec: out-of-range values are rejected with OUTPOST_E_HAL_VALUE', () => {
  const rejected: Array<[ModbusType, unknown]> = [
    ['int16', 32768],
    ['int16', -32769],
    ['int16', 1.5],
    ['uint16', -1],
    ['uint16', 65536],
    ['int32', 2147483648],
    ['int32', -2147483649],
    ['uint32', -1],
    ['uint32', 4294967296],
    ['int64', Number.MAX_SAFE_INTEGER + 1],
    ['int64', Number.MIN_SAFE_INTEGER - 1],
    ['uint64', -1],
    ['uint64', 2 ** 64],
    ['uint16', 'twelve'],
    ['uint16', ''],
    ['int32', '   '],
    ['int16', Number.NaN],
    ['int32', Infinity],
    ['float32', Number.NaN],
    ['float32', -Infinity],
    ['float32', 'abc'],
    ['float32', '12.5'],
    ['float64', Infinity],
    ['float32', 1e39],
    ['float32', -3.5e38],
  ];
  for (const [type, value] of rejected) {
    it(`${type} ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`, () => {
      for (const o of ['ABCD', 'DCBA'] as const) {
        const e = halValueError(() => encode(spec(type, o), value as number));
        expect(e.details['value']).toBe(value);
      }
    });
  }

  it('accepts the limits themselves, and integral values given as booleans or numeric strings', () => {
    expect(encode(spec('int16'), -32768)).toEqual([0x8000]);
    expect(encode(spec('uint16'), 65535)).toEqual([0xffff]);
    expect(encode(spec('uint16'), true)).toEqual([1]);
    expect(encode(spec('uint16'), '42')).toEqual([42]);
    expect(encode(spec('int32'), 2147483647)).toEqual([0x7fff, 0xffff]);
    expect(encode(spec('float32'), 3.4028234663852886e38)).toEqual([0x7f7f, 0xffff]); // FLT_MAX
  });
});

// ---------------------------------------------------------------------------------------------

let seq = 0;
function pt(address: number, o: { type?: ModbusType; table?: ModbusTable; unitId?: number; length?: number; id?: string } = {}): ModbusPointConfig {
  const table = o.table ?? 'holding';
  return {
    id: o.id ?? `p${++seq}`,
    unitId: o.unitId ?? 1,
    table,
    address,
    type: o.type ?? (table === 'coil' || table === 'discrete' ? 'bool' : 'uint16'),
    byteOrder: 'ABCD',
    writable: false,
    ...(o.length !== undefined ? { length: o.length } : {}),
  };
}

const span = (b: ReadBlock) => [b.unitId, b.table, b.address, b.count];
const ids = (b: ReadBlock) => b.points.map((p) => p.id);
const LIMITS = { maxGap: 10, maxRegistersPerRequest: 125 };

describe('planReads', () => {
  it('merges contiguous points of one unit and table into one request', () => {
    const blocks = planReads([pt(0, { id: 'a' }), pt(1, { id: 'b' }), pt(2, { id: 'c', type: 'float32' }), pt(4, { id: 'd', type: 'float64' })], LIMITS);
    expect(blocks.map(span)).toEqual([[1, 'holding', 0, 8]]);
    expect(ids(blocks[0] as ReadBlock)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('sorts by address whatever the declaration order (pure: same points, same plan)', () => {
    const points = [pt(30, { id: 'z' }), pt(2, { id: 'b' }), pt(0, { id: 'a' }), pt(31, { id: 'y' })];
    const plan = planReads(points, LIMITS);
    expect(plan.map(span)).toEqual([
      [1, 'holding', 0, 3],
      [1, 'holding', 30, 2],
    ]);
    expect(plan.map(ids)).toEqual([['a', 'b'], ['z', 'y']]);
    expect(planReads([...points].reverse(), LIMITS).map(span)).toEqual(plan.map(span));
    expect(points.map((p) => p.id)).toEqual(['z', 'b', 'a', 'y']); // the input is not reordered
  });

  it('bridges a gap of up to maxGap unused registers, and no more', () => {
    // 0 ends at 1; 11 leaves registers 1..10 unused: a gap of 10.
    expect(planReads([pt(0), pt(11)], { maxGap: 10, maxRegistersPerRequest: 125 }).map(span)).toEqual([[1, 'holding', 0, 12]]);
    expect(planReads([pt(0), pt(11)], { maxGap: 9, maxRegistersPerRequest: 125 }).map(span)).toEqual([
      [1, 'holding', 0, 1],
      [1, 'holding', 11, 1],
    ]);
    expect(planReads([pt(0), pt(12)], { maxGap: 10, maxRegistersPerRequest: 125 })).toHaveLength(2);
    // The gap is measured from the end of a multi-register point.
    expect(planReads([pt(0, { type: 'float64' }), pt(9)], { maxGap: 5, maxRegistersPerRequest: 125 }).map(span)).toEqual([[1, 'holding', 0, 10]]);
    expect(planReads([pt(0, { type: 'float64' }), pt(10)], { maxGap: 5, maxRegistersPerRequest: 125 })).toHaveLength(2);
    // maxGap 0 merges only adjacent points.
    expect(planReads([pt(0), pt(1), pt(3)], { maxGap: 0, maxRegistersPerRequest: 125 }).map(span)).toEqual([
      [1, 'holding', 0, 2],
      [1, 'holding', 3, 1],
    ]);
  });

  it('caps a register request at 125 registers (FC3/FC4)', () => {
    const limits = { maxGap: 124, maxRegistersPerRequest: 125 };
    expect(planReads([pt(0), pt(124)], limits).map(span)).toEqual([[1, 'holding', 0, 125]]);
    expect(planReads([pt(0), pt(123, { type: 'float32' })], limits).map(span)).toEqual([[1, 'holding', 0, 125]]);
    expect(planReads([pt(0), pt(124, { type: 'float32' })], limits).map(span)).toEqual([
      [1, 'holding', 0, 1],
      [1, 'holding', 124, 2],
    ]);
    // Many contiguous registers: every block within the cap, all points covered once.
    const many = Array.from({ length: 300 }, (_, i) => pt(i, { table: 'input' }));
    const blocks = planReads(many, limits);
    expect(blocks.map((b) => b.count)).toEqual([125, 125, 50]);
    expect(blocks.map((b) => b.address)).toEqual([0, 125, 250]);
    expect(blocks.flatMap((b) => b.points).length).toBe(300);
  });

  it('caps a register request at maxRegistersPerRequest', () => {
    const limits = { maxGap: 10, maxRegistersPerRequest: 10 };
    expect(planReads([pt(0), pt(9)], limits).map(span)).toEqual([[1, 'holding', 0, 10]]);
    expect(planReads([pt(0), pt(10)], limits).map(span)).toEqual([
      [1, 'holding', 0, 1],
      [1, 'holding', 10, 1],
    ]);
    const blocks = planReads(Array.from({ length: 25 }, (_, i) => pt(i)), { maxGap: 0, maxRegistersPerRequest: 8 });
    expect(blocks.map((b) => b.count)).toEqual([8, 8, 8, 1]);
  });

  it('caps a coil or discrete request at 2000 bits, not at the register limits; the gap counts 16 bits per register', () => {
    const limits = { maxGap: 124, maxRegistersPerRequest: 10 };
    expect(planReads([pt(0, { table: 'coil' }), pt(1000, { table: 'coil' }), pt(1999, { table: 'coil' })], limits).map(span)).toEqual([[1, 'coil', 0, 2000]]);
    expect(planReads([pt(0, { table: 'coil' }), pt(1000, { table: 'coil' }), pt(2000, { table: 'coil' })], limits).map(span)).toEqual([
      [1, 'coil', 0, 1001],
      [1, 'coil', 2000, 1],
    ]);
    const bits = Array.from({ length: 4100 }, (_, i) => pt(i, { table: 'discrete' }));
    expect(planReads(bits, limits).map((b) => b.count)).toEqual([2000, 2000, 100]);
    // maxGap 1 → 16 unused bits may be bridged.
    expect(planReads([pt(0, { table: 'coil' }), pt(17, { table: 'coil' })], { maxGap: 1, maxRegistersPerRequest: 125 }).map(span)).toEqual([[1, 'coil', 0, 18]]);
    expect(planReads([pt(0, { table: 'coil' }), pt(18, { table: 'coil' })], { maxGap: 1, maxRegistersPerRequest: 125 })).toHaveLength(2);
  });

  it('never merges across units or tables', () => {
    const blocks = planReads(
      [
        pt(0, { id: 'u1h0' }),
        pt(1, { id: 'u2h1', unitId: 2 }),
        pt(1, { id: 'u1i1', table: 'input' }),
        pt(2, { id: 'u1h2' }),
        pt(0, { id: 'u1c0', table: 'coil' }),
        pt(1, { id: 'u1d1', table: 'discrete' }),
      ],
      LIMITS,
    );
    expect(blocks.map(span).sort()).toEqual(
      [
        [1, 'holding', 0, 3],
        [2, 'holding', 1, 1],
        [1, 'input', 1, 1],
        [1, 'coil', 0, 1],
        [1, 'discrete', 1, 1],
      ].sort(),
    );
    const h = blocks.find((b) => b.unitId === 1 && b.table === 'holding') as ReadBlock;
    expect(ids(h)).toEqual(['u1h0', 'u1h2']);
  });

  it('reads overlapping points (a register decoded two ways) in one block covering the widest', () => {
    const blocks = planReads(
      [pt(1, { id: 'low-word' }), pt(0, { id: 'bit3', type: 'bit' }), pt(0, { id: 'whole', type: 'uint32' }), pt(0, { id: 'hi', type: 'uint16' })],
      LIMITS,
    );
    expect(blocks.map(span)).toEqual([[1, 'holding', 0, 2]]);
    expect(ids(blocks[0] as ReadBlock)).toHaveLength(4);
    expect(ids(blocks[0] as ReadBlock)[0]).toBe('whole'); // the widest point at an address first
    // A narrow point inside a wide one does not shrink the block.
    expect(planReads([pt(0, { type: 'float64' }), pt(1)], LIMITS).map(span)).toEqual([[1, 'holding', 0, 4]]);
    // Strings span their length.
    expect(planReads([pt(5, { type: 'string', length: 10 }), pt(15)], LIMITS).map(span)).toEqual([[1, 'holding', 5, 11]]);
  });

  it('returns no block for no point', () => {
    expect(planReads([], LIMITS)).toEqual([]);
  });
});

describe('splitBlock / blockKey', () => {
  it('splits a merged block into one block per point, sized by the point type', () => {
    const [block] = planReads([pt(0, { id: 'a', type: 'float32' }), pt(5, { id: 'b' }), pt(6, { id: 'c', type: 'string', length: 3 })], LIMITS);
    expect(span(block as ReadBlock)).toEqual([1, 'holding', 0, 9]);
    const parts = splitBlock(block as ReadBlock);
    expect(parts.map(span)).toEqual([
      [1, 'holding', 0, 2],
      [1, 'holding', 5, 1],
      [1, 'holding', 6, 3],
    ]);
    expect(parts.map(ids)).toEqual([['a'], ['b'], ['c']]);
  });

  it('keeps unit and table', () => {
    const [block] = planReads([pt(10, { unitId: 7, table: 'coil' }), pt(12, { unitId: 7, table: 'coil' })], LIMITS);
    expect(splitBlock(block as ReadBlock).map(span)).toEqual([
      [7, 'coil', 10, 1],
      [7, 'coil', 12, 1],
    ]);
  });

  it('blockKey identifies unit, table, address and count', () => {
    expect(blockKey({ unitId: 1, table: 'holding', address: 0, count: 4 })).toBe('1/holding/0/4');
    const keys = new Set([
      blockKey({ unitId: 1, table: 'holding', address: 0, count: 4 }),
      blockKey({ unitId: 2, table: 'holding', address: 0, count: 4 }),
      blockKey({ unitId: 1, table: 'input', address: 0, count: 4 }),
      blockKey({ unitId: 1, table: 'holding', address: 1, count: 4 }),
      blockKey({ unitId: 1, table: 'holding', address: 0, count: 5 }),
    ]);
    expect(keys.size).toBe(5);
  });
});
