import fc from 'fast-check';
import { decode, encode, registerCount, type CodecSpec } from '../../hal/modbus/codec.js';
import { BYTE_ORDERS, MODBUS_TYPES, type ModbusType } from '../../hal/modbus/schema.js';
import type { PointValue } from '../../hal/types.js';
import { check, expectOutpostError, type FuzzTarget } from './target.js';

/**
 * Fuzz targets of the Modbus register codec (hal/modbus/codec.ts): what a device answers is decoded,
 * what a rule or command writes is encoded. Invariants under test: decode never throws for any
 * register contents and returns the point's value type; encode returns registerCount 16-bit words or
 * throws OUTPOST_E_HAL_VALUE; a value that encodes reads back as itself (exactly, or as its float32
 * rounding); registers that decode re-encode to the same registers where the type is exact.
 */

const EXACT: ReadonlySet<ModbusType> = new Set(['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64']);

const specArb: fc.Arbitrary<CodecSpec> = fc.record({
  type: fc.constantFrom(...MODBUS_TYPES),
  byteOrder: fc.constantFrom(...BYTE_ORDERS),
  bit: fc.integer({ min: 0, max: 15 }),
  length: fc.integer({ min: 1, max: 16 }),
});

const valueArb: fc.Arbitrary<PointValue> = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
  fc.constantFrom(0, -1, 1, 32767, 32768, -32768, -32769, 65535, 65536, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 3.4028235e38, 3.5e38, Number.MAX_VALUE, Number.MIN_VALUE, Number.NaN, Infinity, -Infinity, -0, 0.5),
  fc.double(),
  fc.boolean(),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '12', ' 12 ', '0x10', '1e3', 'true', '1', 'NaN', '-0', '\u00ff', '\u0100', '€'),
);

function sameValue(a: PointValue, b: PointValue): boolean {
  return Object.is(a, b) || (typeof a === 'number' && typeof b === 'number' && a === b);
}

export function modbusTargets(): FuzzTarget[] {
  return [
    {
      name: 'modbus.decode',
      runs: 2000,
      property: () =>
        fc.property(specArb, fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 16, maxLength: 16 }), (spec, all) => {
          const words = all.slice(0, registerCount(spec.type, spec.length));
          const value = decode(spec, words);
          const kind = spec.type === 'bool' || spec.type === 'bit' ? 'boolean' : spec.type === 'string' ? 'string' : 'number';
          check(typeof value === kind, `decode(${spec.type}) returned a ${typeof value}`);
          if (EXACT.has(spec.type) && typeof value === 'number' && !Number.isNaN(value)) {
            // Registers that decode to a number encode back to the same registers, or (64-bit beyond 2^53, float
            // infinities) are refused: never silently different.
            let back: number[] | null = null;
            try {
              back = encode(spec, value);
            } catch (e) {
              expectOutpostError(e, ['OUTPOST_E_HAL_VALUE']);
              // Only values a double cannot carry back are refused: 64-bit integers beyond 2^53, float infinities.
              check((spec.type.endsWith('64') && !spec.type.startsWith('float') && !Number.isSafeInteger(value)) || !Number.isFinite(value), `${spec.type} ${value} decoded but does not encode`);
            }
            if (back !== null) check(back.join() === words.join(), `${spec.type}/${spec.byteOrder} ${words.join()} → ${value} → ${back.join()}`);
          }
          if (spec.type === 'bit') check(encode(spec, value, words[0]).join() === words.join(), 'a bit written back changed its register');
          if (spec.type === 'string') check(decode(spec, encode(spec, value)) === value, `string ${JSON.stringify(value)} does not read back`);
        }),
    },
    {
      name: 'modbus.encode',
      runs: 2000,
      property: () =>
        fc.property(specArb, valueArb, fc.integer({ min: 0, max: 0xffff }), (spec, value, current) => {
          let words: number[];
          try {
            words = encode(spec, value, current);
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_HAL_VALUE']);
            return;
          }
          check(words.length === registerCount(spec.type, spec.length), `encode(${spec.type}) gave ${words.length} registers`);
          check(words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff), `encode gave a word outside 0..65535: ${words.join()}`);
          const back = decode(spec, words);
          if (spec.type === 'float32') check(sameValue(back, Math.fround(Number(value))), `float32 ${String(value)} read back as ${String(back)}`);
          else if (EXACT.has(spec.type)) check(sameValue(back, Number(value)), `${spec.type} ${JSON.stringify(value)} read back as ${String(back)}`);
          else if (spec.type === 'string') {
            const text = String(value);
            const cut = text.includes('\0') ? text.slice(0, text.indexOf('\0')) : text;
            check(back === cut.trimEnd(), `string ${JSON.stringify(value)} read back as ${JSON.stringify(back)}`);
          }
        }),
    },
  ];
}
