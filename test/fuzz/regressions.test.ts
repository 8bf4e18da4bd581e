import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../hal/modbus/codec.js';
import { parseValue } from '../../hal/serial/driver.js';
import { decodeEnv, encodeEnv } from '../../ota/boot/uboot-env.js';
import { parseManifest, renderManifest, type Manifest } from '../../ota/bundle/manifest.js';
import { parseWriteCommand as parseWriteCommandLimited } from '../../src/broker/write-command.js';

/** The local broker's command parser with its default size limit (broker.limits.maxCommandBytes). */
const parseWriteCommand = (payload: Buffer) => parseWriteCommandLimited(payload, 16 * 1024);
import { ConfigValidator } from '../../src/config/load.js';
import { mergeConfig } from '../../src/config/merge.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { parseRoute, renderTopic } from '../../src/routes/index.js';

/** The counterexamples the fuzz targets (bench/fuzz/) found, kept as plain tests of the fixes. */

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    return (e as OutpostError).code;
  }
  return 'no error';
}

const SHA = '0'.repeat(64);

describe('fuzz regressions', () => {
  it('config: a `__proto__` key is an unknown key, not a prototype (merge keeps it as a key)', () => {
    const doc = JSON.parse('{"__proto__": {"x": 1}, "gateway": {"id": "gw"}}') as Record<string, unknown>;
    const merged = mergeConfig({}, doc) as Record<string, unknown>;
    expect(Object.keys(merged)).toEqual(['__proto__', 'gateway']);
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    const err = (() => {
      try {
        new ConfigValidator().validate(merged, ['fuzz.yaml'], '/tmp');
      } catch (e) {
        return e as OutpostError;
      }
      return null;
    })();
    expect(err?.code).toBe('OUTPOST_E_CONFIG_INVALID');
    expect(err?.message).toContain("(root): unknown key '__proto__'");
  });

  it("routes: an invalid character before a '*' is reported at its own column", () => {
    expect(() => parseRoute('FROM /{A}/-/@* INTO $upstream')).toThrow('at column 13: invalid character');
    expect(() => parseRoute('FROM /a* INTO $upstream')).toThrow("at column 8: '*' must be a whole segment");
  });

  it('routes: a NUL character in a value does not reach a rendered broker topic', () => {
    expect(renderTopic('{device}/x', { device: 'a\u0000b+c' })).toBe('a_b_c/x');
  });

  it('broker: a reply topic with a NUL character is refused', () => {
    expect(codeOf(() => parseWriteCommand(Buffer.from('{"value":1,"replyTo":"r/\\u0000"}')))).toBe('OUTPOST_E_BROKER_COMMAND');
    expect(parseWriteCommand(Buffer.from('{"value":1,"replyTo":"r/x"}')).replyTo).toBe('r/x');
  });

  it('modbus: a string with characters beyond Latin-1 is refused, not written as its low bytes', () => {
    const spec = { type: 'string' as const, byteOrder: 'ABCD' as const, length: 2 };
    expect(codeOf(() => encode(spec, '€'))).toBe('OUTPOST_E_HAL_VALUE');
    expect(decode(spec, encode(spec, 'é1'))).toBe('é1');
  });

  it('serial: an integer field beyond 2^53 (or of 400 digits) does not parse', () => {
    expect(parseValue('-9007199254740992', 'integer')).toBeNull();
    expect(parseValue('9'.repeat(400), 'integer')).toBeNull();
    expect(parseValue(`0x${'f'.repeat(20)}`, 'integer')).toBeNull();
    expect(parseValue('-9007199254740991', 'integer')).toBe(-9007199254740991);
  });

  it('manifest: a [meta.__proto__] group is a label, not the prototype of meta', () => {
    const m = parseManifest(`[update]\ncompatible=c\nversion=1\n\n[image.rootfs]\nsha256=${SHA}\nsize=0\nfilename=a\n\n[meta.__proto__]\nk=v\n`);
    expect(Object.getPrototypeOf(m.meta)).toBe(Object.prototype);
    expect(Object.keys(m.meta)).toEqual(['__proto__']);
  });

  it('manifest: spaces and tabs at the edges of a value, and non-ASCII spaces, survive render and parse', () => {
    const m: Omit<Manifest, 'hooks'> = {
      compatible: '\\s',
      version: ' 1.0\t',
      build: '\t',
      description: '\u00a0x\u2028',
      format: 'plain',
      images: [{ slotClass: 'rootfs', filename: 'a b ', sha256: SHA, size: 1 }],
      meta: {},
      securityVersion: 0n,
    };
    const back = parseManifest(renderManifest(m));
    expect([back.compatible, back.version, back.build, back.description, back.images[0]?.filename]).toEqual(['\\s', ' 1.0\t', '\t', '\u00a0x\u2028', 'a b ']);
    expect(codeOf(() => renderManifest({ ...m, version: 'a\u000bb' }))).toBe('OUTPOST_E_OTA_BUILD');
  });

  it('u-boot env: a copy shorter than its header decodes as invalid; a size without room for the header is refused', () => {
    expect(decodeEnv(Buffer.alloc(0), false)).toBeNull();
    expect(decodeEnv(Buffer.alloc(4), true)).toBeNull();
    expect(codeOf(() => encodeEnv(new Map(), 0, false, 0))).toBe('OUTPOST_E_OTA_BOOT_ENV');
    expect(codeOf(() => encodeEnv(new Map(), 6, true, 0))).toBe('OUTPOST_E_OTA_BOOT_ENV');
    expect(decodeEnv(encodeEnv(new Map(), 6, false, 0), false)?.vars.size).toBe(0);
  });
});
