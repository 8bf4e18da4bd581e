import fc from 'fast-check';
import { parseValue } from '../../hal/serial/driver.js';
import { Framer, checkNmea, nmeaChecksum } from '../../hal/serial/framer.js';
import { check, type FuzzTarget } from './target.js';

/**
 * Fuzz targets of the serial line path (hal/serial): the framer that cuts the byte stream, the NMEA
 * checksum and the field parser. Invariants under test: the frames do not depend on how the stream
 * was cut into chunks (delimiter and fixed framing), no frame is longer than maxLength, the framer's
 * buffer stays bounded, a sentence with a right checksum is accepted and one with a wrong one is not,
 * and a field parses to a finite value of the point's type or to null (never Infinity or NaN).
 */

const latin1 = (bytes: Uint8Array) => Buffer.from(bytes).toString('latin1');

/** A byte stream rich in the delimiter's bytes, cut into chunks at random places. */
function streamArb(alphabet: readonly number[]) {
  return fc
    .tuple(fc.array(fc.oneof(fc.constantFrom(...alphabet), fc.integer({ min: 0, max: 255 })), { maxLength: 400 }), fc.array(fc.nat(), { maxLength: 20 }))
    .map(([bytes, cuts]) => {
      const all = Buffer.from(bytes);
      const at = [...new Set(cuts.map((c) => (all.length === 0 ? 0 : c % all.length)))].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let from = 0;
      for (const c of at) {
        chunks.push(all.subarray(from, c));
        from = c;
      }
      chunks.push(all.subarray(from));
      return { all, chunks: chunks.filter((c) => c.length > 0) };
    });
}

function bufferOf(framer: Framer): Buffer {
  return (framer as unknown as { buffer: Buffer }).buffer;
}

export function serialTargets(): FuzzTarget[] {
  return [
    {
      name: 'serial.delimiter-framer',
      runs: 1000,
      property: () =>
        fc.property(
          fc
            .oneof(fc.constantFrom('\r\n', '\n', '\r\r', 'aa', 'aba', '\u0000', '\u00ff\u00fe'), fc.uint8Array({ minLength: 1, maxLength: 3 }).map(latin1))
            .chain((delimiter) => fc.tuple(fc.constant(delimiter), streamArb([...Buffer.from(delimiter, 'latin1'), 0x61, 0x62]))),
          fc.integer({ min: 1, max: 40 }),
          ([delimiter, { all, chunks }], maxLength) => {
            const framer = new Framer({ type: 'delimiter', delimiter, maxLength });
            const frames: string[] = [];
            for (const c of chunks) {
              for (const f of framer.push(c)) frames.push(f.toString('latin1'));
              check(bufferOf(framer).length <= maxLength + delimiter.length - 1, `the framer buffer holds ${bufferOf(framer).length} bytes, past maxLength`);
            }
            // Reference: split the whole stream at each delimiter; complete pieces up to maxLength are frames.
            const pieces = all.toString('latin1').split(delimiter).slice(0, -1);
            const expected = pieces.filter((p) => p.length <= maxLength);
            check(JSON.stringify(frames) === JSON.stringify(expected), `frames depend on chunking: got ${JSON.stringify(frames)}, expected ${JSON.stringify(expected)}`);
            check(framer.overflows >= pieces.length - expected.length, 'an over-long frame was not counted');
          },
        ),
    },
    {
      name: 'serial.fixed-and-regex-framer',
      runs: 600,
      property: () =>
        fc.property(
          fc.integer({ min: 1, max: 20 }),
          fc.constantFrom('\\$[^\\r\\n]*\\r\\n', '[A-Z]+;', '<[^>]*>', 'x*', '(?:ab)+'),
          fc.integer({ min: 1, max: 64 }),
          streamArb([0x24, 0x0d, 0x0a, 0x3b, 0x3c, 0x3e, 0x41, 0x61, 0x62, 0x78]),
          (length, pattern, maxLength, { all, chunks }) => {
            const fixed = new Framer({ type: 'fixed', length });
            const fixedFrames = chunks.flatMap((c) => fixed.push(c));
            check(fixedFrames.every((f) => f.length === length), 'a fixed frame of the wrong length');
            check(Buffer.concat(fixedFrames).equals(all.subarray(0, Math.floor(all.length / length) * length)), 'fixed framing lost or reordered bytes');
            const regex = new Framer({ type: 'regex', pattern, maxLength });
            const whole = new RegExp(`^(?:${pattern})$`);
            let total = 0;
            for (const c of chunks) {
              for (const f of regex.push(c)) {
                total += f.length;
                check(f.length > 0 && whole.test(f.toString('latin1')), `regex frame ${JSON.stringify(f.toString('latin1'))} does not match ${pattern}`);
              }
              check(bufferOf(regex).length <= maxLength, 'the regex framer buffer grew past maxLength');
            }
            check(total <= all.length, 'regex framing produced more bytes than it received');
          },
        ),
    },
    {
      name: 'serial.nmea',
      runs: 2000,
      property: () =>
        fc.property(
          fc.constantFrom('$', '!'),
          fc.uint8Array({ maxLength: 82 }).map((b) => latin1(b).replace(/\*/g, '')),
          fc.integer({ min: 0, max: 255 }),
          fc.constantFrom('', '\r', ' ', '\r\n'),
          anyLine(),
          (start, body, wrong, tail, junk) => {
            const sum = nmeaChecksum(body);
            check(/^[0-9A-F]{2}$/.test(sum), `checksum ${sum} is not two hex digits`);
            check(checkNmea(`${start}${body}*${sum}${tail}`) === `${start}${body}`, 'a sentence with the right checksum was refused');
            check(checkNmea(`${start}${body}*${sum.toLowerCase()}`) === `${start}${body}`, 'a lower-case checksum was refused');
            const bad = wrong.toString(16).toUpperCase().padStart(2, '0');
            if (bad !== sum) check(checkNmea(`${start}${body}*${bad}`) === null, 'a sentence with a wrong checksum was accepted');
            const r = checkNmea(junk);
            if (r !== null) check(/^[$!]/.test(r) && junk.startsWith(r) && nmeaChecksum(r.slice(1)) === junk.slice(r.length + 1, r.length + 3).toUpperCase(), `junk accepted: ${JSON.stringify(junk)}`);
          },
        ),
    },
    {
      name: 'serial.field-values',
      runs: 2000,
      property: () =>
        fc.property(
          fc.oneof(
            fc.string({ unit: 'binary', maxLength: 30 }),
            fc.stringMatching(/^\s?[+-]?\d{1,400}(\.\d{0,5})?\s?$/),
            fc.stringMatching(/^0[xX][0-9a-fA-F]{1,120}$/),
            fc.double().map(String),
            fc.constantFrom('', ' ', 'Infinity', '-Infinity', 'NaN', '1e400', '0x', '1_0', 'A', 'v', 'On', 'TRUE ', '4.5e-400'),
          ),
          fc.constantFrom('number' as const, 'integer' as const, 'string' as const, 'boolean' as const),
          (text, type) => {
            const v = parseValue(text, type);
            if (v === null) return;
            if (type === 'number') check(typeof v === 'number' && Number.isFinite(v), `number field ${JSON.stringify(text)} parsed to ${String(v)}`);
            if (type === 'integer') check(typeof v === 'number' && Number.isSafeInteger(v), `integer field ${JSON.stringify(text.slice(0, 40))} parsed to ${String(v)}, not an exact integer`);
            if (type === 'boolean') check(typeof v === 'boolean', 'boolean field parsed to a non-boolean');
            if (type === 'string') check(v === text.trim(), 'string field is not the trimmed text');
            if (type === 'integer' && typeof v === 'number') check(parseValue(String(v), 'integer') === v, 'an integer does not read back');
          },
        ),
    },
  ];
}

function anyLine(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.tuple(fc.constantFrom('$', '!', ''), fc.string({ maxLength: 20 }), fc.constantFrom('*', ''), fc.stringMatching(/^[0-9A-Fa-fG]{0,3}$/)).map((p) => p.join('')),
  );
}
