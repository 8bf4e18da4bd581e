import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { GRUBENV_SIZE, parseGrubEnv, renderGrubEnv } from '../../ota/boot/grub-env.js';
import { decodeEnv, encodeEnv, parseFwEnvConfig } from '../../ota/boot/uboot-env.js';
import { parseManifest, renderManifest, type Manifest } from '../../ota/bundle/manifest.js';
import { HOSTILE_KEYS, anyText, check, expectOutpostError, mutateText, tokenSoup, type FuzzTarget } from './target.js';

/**
 * Fuzz targets of the OTA parsers of untrusted bytes: the RAUC manifest (ota/bundle/manifest.ts; it
 * is parsed before the bundle's signature is known good) and the bootloader environments
 * (ota/boot/uboot-env.ts, ota/boot/grub-env.ts; a corrupted or tampered environment must not crash
 * the boot-state logic). Invariants under test: parse returns a well-formed value or throws the one
 * documented code (OUTPOST_E_OTA_BUNDLE_MANIFEST, OUTPOST_E_OTA_BOOT_ENV); render then parse gives back
 * what was rendered; render(parse(x)) is stable.
 */

// ---- RAUC manifest ----------------------------------------------------------------------------------

const HEX = '0123456789abcdef';
const hex64 = fc.array(fc.constantFrom(...HEX), { minLength: 64, maxLength: 64 }).map((a) => a.join(''));
const name = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,9}$/);
/** Values as a manifest may hold them: any character but line breaks, with spaces, tabs and backslashes at the edges. */
const value = fc
  .tuple(fc.constantFrom('', ' ', '\t', '  ', '\\', '\u00a0', '\ufeff'), fc.string({ unit: 'binary', maxLength: 16 }), fc.constantFrom('', ' ', '\t', '\\', '\\s', '\u00a0', '\u2028'))
  .map(([a, b, c]) => (a + b + c).replace(/[\r\n\v\f]/g, '_'));
const nonEmpty = value.filter((v) => v.trim() !== '');

const manifestArb: fc.Arbitrary<Omit<Manifest, 'hooks'>> = fc.record({
  compatible: nonEmpty,
  version: nonEmpty,
  description: fc.option(value, { nil: undefined }),
  build: fc.option(value, { nil: undefined }),
  format: fc.constantFrom('plain' as const, 'verity' as const, 'crypt' as const),
  verity: fc.option(fc.record({ hash: hex64, salt: hex64, size: fc.integer({ min: 1, max: 2 ** 20 }).map((n) => n * 4096) }), { nil: undefined }),
  images: fc.uniqueArray(
    fc.record({
      slotClass: name,
      variant: fc.option(name, { nil: undefined }),
      filename: fc.array(fc.oneof(name, fc.constantFrom('.', 'a b', 'x.img', ' lead', 'trail ')), { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
      sha256: hex64,
      size: fc.oneof(fc.nat(), fc.constant(Number.MAX_SAFE_INTEGER)),
    }),
    { minLength: 1, maxLength: 3, selector: (i) => `${i.slotClass}.${i.variant ?? ''}` },
  ),
  meta: fc.dictionary(fc.oneof(name, fc.constantFrom(...HOSTILE_KEYS)), fc.dictionary(name, value, { maxKeys: 3 }), { maxKeys: 3 }).map((m) => {
    delete m['outpost'];
    return m;
  }),
  securityVersion: fc.bigInt({ min: 0n, max: 2n ** 63n - 1n }),
});

/** The manifest without what rendering leaves out or moves (undefined fields, security-version under meta). */
function comparable(m: Omit<Manifest, 'hooks'>): string {
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m.meta)) if (k !== 'outpost' || Object.keys(v).some((x) => x !== 'security-version')) Object.defineProperty(meta, k, { value: v, enumerable: true });
  return JSON.stringify({
    compatible: m.compatible,
    version: m.version,
    description: m.description ?? null,
    build: m.build ?? null,
    format: m.format,
    verity: m.verity ?? null,
    images: m.images.map((i) => ({ slotClass: i.slotClass, variant: i.variant ?? null, filename: i.filename, sha256: i.sha256, size: i.size })),
    meta,
    securityVersion: m.securityVersion.toString(),
  });
}

const INI_TOKENS = ['[update]', '[bundle]', '[image.rootfs]', '[image.rootfs.a]', '[image.]', '[meta.outpost]', '[meta.__proto__]', '[hooks]', '[handler]', '\n', '\r\n', ' ', '#', '=', 'compatible=', 'version=', 'format=verity', 'verity-hash=', 'verity-salt=', 'verity-size=4096', 'filename=', 'filename=../x', 'filename=/etc/x', 'sha256=', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'size=', '123', '99999999999999999999', 'security-version=', 'hooks=install-check', '\\s', '\\'];

// ---- bootloader environments ------------------------------------------------------------------------

/** A U-Boot environment copy with random contents and a right CRC (so decoding goes past the CRC check). */
const ubootCopy = fc.oneof(
  fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 8 })).map(([redundant, b]) => ({ redundant, buf: Buffer.from(b) })),
  fc.tuple(fc.boolean(), fc.array(fc.oneof(fc.constantFrom(0, 0x3d, 0x61, 0x62, 0xff), fc.integer({ min: 0, max: 255 })), { maxLength: 120 }), fc.boolean())
  .map(([redundant, data, fixCrc]) => {
    const start = redundant ? 5 : 4;
    const buf = Buffer.alloc(start + data.length);
    Buffer.from(data).copy(buf, start);
    if (redundant) buf[4] = data.length & 0xff;
    if (fixCrc) buf.writeUInt32LE(crc32(buf.subarray(start)), 0);
    return { redundant, buf };
  }),
);

/** Well-formed text (U-Boot stores UTF-8; a lone surrogate has no UTF-8 form). */
const wellFormed = (o: { minLength?: number; maxLength: number }) =>
  fc.string({ ...o, unit: fc.oneof(fc.integer({ min: 1, max: 0xd7ff }), fc.integer({ min: 0xe000, max: 0x10ffff })).map((c) => String.fromCodePoint(c)) });
const ubootVars = fc.uniqueArray(fc.tuple(wellFormed({ minLength: 1, maxLength: 8 }).map((k) => k.replace(/[=\s]/g, 'k')), wellFormed({ maxLength: 20 })), {
  maxLength: 8,
  selector: ([k]) => k,
});

function sameMap(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

/** fw_env.config lines of the right shape with values at and around the limits. */
const fwEnvLines = fc
  .array(
    fc
      .tuple(fc.constantFrom('/dev/mmcblk0', 'uboot.env', '/dev/mtd1', '#x', ''), fc.constantFrom('0', '0x4000', '-1', '1e3', '9007199254740993', 'x'), fc.constantFrom('16', '15', '0x10', '0xF', '0', '0x20000', ''), fc.constantFrom('', ' 0x1000', ' # c'))
      .map((p) => `${p[0]} ${p[1]}\t${p[2]}${p[3]}`),
    { maxLength: 3 },
  )
  .map((lines) => lines.join('\n'));

const GRUB_HEADER = '# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than grub-editenv!!!\n';
const GRUB_TOKENS = ['saved_entry=', 'next_entry=', 'boot_once=', 'a=b', '=', '\n', '\\', '\\\\', '\\\n', '#', '####', 'x', ' ', '\u00ff'];


export function otaTargets(): FuzzTarget[] {
  return [
    {
      name: 'ota.manifest-text',
      runs: 800,
      property: () =>
        fc.property(fc.oneof(anyText(300), tokenSoup(INI_TOKENS, 50), mutateText(manifestArb.map((m) => renderManifestOrEmpty(m)), ['\n', '=', '[', ']', '#', ' ', '\\', '.', '/', '0', '\u0000'])), (text) => {
          let m: Manifest;
          try {
            m = parseManifest(text);
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_OTA_BUNDLE_MANIFEST']);
            return;
          }
          check(m.compatible !== '' && m.version !== '' && m.images.length > 0, 'a manifest without compatible, version or images');
          for (const i of m.images) {
            check(/^[0-9a-f]{64}$/.test(i.sha256) && Number.isSafeInteger(i.size) && i.size >= 0, `image ${i.slotClass} has a bad sha256 or size`);
            check(!i.filename.startsWith('/') && !i.filename.split('/').includes('..'), `image filename ${JSON.stringify(i.filename)} leaves the bundle`);
          }
          check(m.securityVersion >= 0n && m.securityVersion < 2n ** 64n, 'security version out of range');
          check(Object.getPrototypeOf(m.meta) === Object.prototype || Object.getPrototypeOf(m.meta) === null, 'a meta group replaced the prototype of meta');
        }),
    },
    {
      name: 'ota.manifest-round-trip',
      runs: 500,
      property: () =>
        fc.property(manifestArb, (m) => {
          const text = renderManifest(m);
          const back = parseManifest(text);
          check(back.hooks.length === 0, 'a rendered manifest has hooks');
          check(comparable(back) === comparable(m), `parse(render(m)) differs from m:\n${text}`);
          check(renderManifest(back) === text, 'render(parse(render(m))) differs from render(m)');
        }),
    },
    {
      name: 'ota.uboot-env',
      runs: 1500,
      property: () =>
        fc.property(ubootCopy, fc.integer({ min: 0, max: 200 }), ({ redundant, buf }, size) => {
          const decoded = decodeEnv(buf, redundant);
          if (decoded === null) return;
          let encoded: Buffer;
          try {
            encoded = encodeEnv(decoded.vars, size, redundant, decoded.flags);
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_OTA_BOOT_ENV']);
            return;
          }
          check(encoded.length === size, `encoded copy is ${encoded.length} bytes, not ${size}`);
          const again = decodeEnv(encoded, redundant);
          check(again !== null && sameMap(again.vars, decoded.vars), 'an encoded environment does not decode to its variables');
          check(encodeEnv(again.vars, size, redundant, again.flags).equals(encoded), 'encode(decode(x)) is not stable');
        }),
    },
    {
      name: 'ota.uboot-env-round-trip',
      runs: 1000,
      property: () =>
        fc.property(ubootVars, fc.integer({ min: 0, max: 400 }), fc.boolean(), fc.integer({ min: 0, max: 255 }), (pairs, size, redundant, flags) => {
          const vars = new Map(pairs);
          let buf: Buffer;
          try {
            buf = encodeEnv(vars, size, redundant, flags);
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_OTA_BOOT_ENV']);
            return;
          }
          const back = decodeEnv(buf, redundant);
          check(back !== null && sameMap(back.vars, vars) && back.flags === (redundant ? flags : 0), 'decode(encode(vars)) differs from vars');
        }),
    },
    {
      name: 'ota.fw-env-config',
      runs: 800,
      property: () =>
        fc.property(fc.oneof(anyText(120), fwEnvLines, tokenSoup(['/dev/mmcblk0', ' ', '\t', '0x', '0X3F', '4000', '16', '15', '0x2000', '\n', '# c', '/dev/mtd0', 'uboot.env', '99999999999999999999', '-1'], 20)), (text) => {
          try {
            const copies = parseFwEnvConfig(text, '/fuzz');
            check(copies.length >= 1 && copies.length <= 2, `${copies.length} copies`);
            check(copies.every((c) => Number.isSafeInteger(c.offset) && c.offset >= 0 && Number.isSafeInteger(c.size) && c.size >= 16 && c.path.startsWith('/')), 'a copy with a bad offset, size or path');
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_OTA_BOOT_ENV']);
          }
        }),
    },
    {
      name: 'ota.grub-env',
      runs: 1500,
      property: () =>
        fc.property(fc.oneof(fc.uint8Array({ maxLength: 1100 }).map((b) => Buffer.from(b)), tokenSoup(GRUB_TOKENS, 80).map((t) => Buffer.from(GRUB_HEADER + t, 'latin1'))), (buf) => {
          let vars: Map<string, string>;
          try {
            vars = parseGrubEnv(buf);
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_OTA_BOOT_ENV']);
            return;
          }
          let first: Buffer;
          try {
            first = renderGrubEnv(vars);
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_OTA_BOOT_ENV']);
            return;
          }
          check(first.length === GRUBENV_SIZE, `rendered block is ${first.length} bytes`);
          const reread = parseGrubEnv(first);
          check(sameMap(reread, vars), `parse(render(vars)) differs from vars: ${JSON.stringify([...vars])} → ${JSON.stringify([...reread])}`);
          check(renderGrubEnv(reread).equals(first), 'render(parse(x)) is not stable');
        }),
    },
    {
      name: 'ota.grub-env-round-trip',
      runs: 1000,
      property: () =>
        fc.property(
          fc.uniqueArray(fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }).map((k) => k.replace(/[=\n\\]/g, 'k')), fc.string({ unit: 'binary', maxLength: 30 })), { maxLength: 12, selector: ([k]) => k }),
          (pairs) => {
            const vars = new Map(pairs);
              let buf: Buffer;
            try {
              buf = renderGrubEnv(vars);
            } catch (e) {
              expectOutpostError(e, ['OUTPOST_E_OTA_BOOT_ENV']);
              return;
            }
            check(sameMap(parseGrubEnv(buf), vars), `parse(render(vars)) differs from vars: ${JSON.stringify(pairs)}`);
          },
        ),
    },
  ];
}

function renderManifestOrEmpty(m: Omit<Manifest, 'hooks'>): string {
  try {
    return renderManifest(m);
  } catch {
    return '';
  }
}
