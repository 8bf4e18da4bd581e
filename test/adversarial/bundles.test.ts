import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rig, cli, makePki, outpostBundle, writeImage, type Pki } from '../helpers/ota.js';
import { flipByte, manyImageGroups, randomFile, resignVerity, splitBundle, withSizeTrailer } from './hostile-bundles.js';

/**
 * Hostile bundle files through the real CLI (`outpost ota info` and `outpost ota install`) on a gateway made of
 * files (two slot images, a U-Boot environment). Each must be refused with its documented code, exit code 2 and
 * one readable error line (no JSON log line before it), and leave both slots and the boot environment byte for
 * byte as they were. `ota info` must say that install would refuse what install refuses.
 */
let dir = '';
let pki: Pki;
let verity = '';
let plain = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'outpost-adv-bundles-'));
  pki = makePki(join(dir, 'pki'));
  writeImage(join(dir, 'rootfs.img'), 3 * 1024 * 1024 + 4096 * 3 + 17);
  verity = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'good-verity.raucb'), securityVersion: 3n });
  plain = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'good-plain.raucb'), format: 'plain' });
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string) => join(dir, name);
const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

interface Hostile {
  readonly name: string;
  readonly make: () => Promise<string> | string;
  /** The code install refuses it with; `info` names the same code unless `infoCode` says otherwise. */
  readonly code: string;
  readonly infoCode?: string;
  /** Extra `ota:` settings of the gateway (a version floor…), and a security-version counter file. */
  readonly ota?: Record<string, unknown>;
  readonly counter?: string;
}

const HOSTILE: Hostile[] = [
  { name: 'a zero-byte file', make: () => (writeFileSync(file('zero.raucb'), ''), file('zero.raucb')), code: 'OUTPOST_E_OTA_BUNDLE_FORMAT' },
  { name: 'a truncated bundle', make: () => (writeFileSync(file('short.raucb'), readFileSync(verity).subarray(0, 2_000_000)), file('short.raucb')), code: 'OUTPOST_E_OTA_BUNDLE_FORMAT' },
  { name: '1 MiB of random bytes', make: () => randomFile(file('random.raucb'), 1024 * 1024), code: 'OUTPOST_E_OTA_BUNDLE_FORMAT' },
  { name: 'a CMS size trailer 100 bytes short', make: () => withSizeTrailer(verity, file('trailer-short.raucb'), (real) => real - 100n), code: 'OUTPOST_E_OTA_BUNDLE_FORMAT' },
  { name: 'a CMS size trailer larger than the file', make: () => withSizeTrailer(verity, file('trailer-huge.raucb'), (_r, size) => BigInt(size) * 4n), code: 'OUTPOST_E_OTA_BUNDLE_FORMAT' },
  { name: 'a CMS size trailer of 2^64-1', make: () => withSizeTrailer(verity, file('trailer-max.raucb'), () => 2n ** 64n - 1n), code: 'OUTPOST_E_OTA_BUNDLE_FORMAT' },
  { name: 'a tampered payload byte (plain)', make: () => flipByte(plain, file('tampered-plain.raucb'), 1_000_000), code: 'OUTPOST_E_OTA_BUNDLE_SIGNATURE' },
  { name: 'a tampered payload byte (verity)', make: () => flipByte(verity, file('tampered-verity.raucb'), 1_000_000), code: 'OUTPOST_E_OTA_BUNDLE_PAYLOAD' },
  { name: 'a tampered signed manifest (verity)', make: () => flipManifestByte(), code: 'OUTPOST_E_OTA_BUNDLE_SIGNATURE' },
  { name: 'the wrong compatible', make: () => outpostBundle(pki, { image: file('rootfs.img'), output: file('compat.raucb'), compatible: 'Another Board' }), code: 'OUTPOST_E_OTA_INCOMPATIBLE' },
  { name: 'a version below ota.minVersion', make: () => verity, code: 'OUTPOST_E_OTA_DOWNGRADE', ota: { minVersion: '2.1.0' } },
  { name: 'a security version below the anti-rollback counter', make: () => verity, code: 'OUTPOST_E_OTA_DOWNGRADE', ota: { securityVersion: { file: 'sv' } }, counter: '4\n' },
  { name: 'a signer not in the keyring', make: () => outpostBundle(pki, { image: file('rootfs.img'), output: file('untrusted.raucb'), signer: 'untrusted' }), code: 'OUTPOST_E_OTA_BUNDLE_SIGNER' },
  { name: 'an expired signer', make: () => outpostBundle(pki, { image: file('rootfs.img'), output: file('expired.raucb'), signer: 'expired' }), code: 'OUTPOST_E_OTA_BUNDLE_SIGNER' },
  { name: 'a signer without codeSigning', make: () => outpostBundle(pki, { image: file('rootfs.img'), output: file('noeku.raucb'), signer: 'noEku' }), code: 'OUTPOST_E_OTA_BUNDLE_SIGNER' },
  {
    name: 'a path traversal in an image filename',
    make: () => resignVerity(pki, verity, file('traversal.raucb'), (m) => m.replace(/filename=\S+/, 'filename=../../../etc/shadow')),
    code: 'OUTPOST_E_OTA_BUNDLE_MANIFEST',
  },
  { name: 'an absolute image filename', make: () => resignVerity(pki, verity, file('absolute.raucb'), (m) => m.replace(/filename=\S+/, 'filename=/dev/sda')), code: 'OUTPOST_E_OTA_BUNDLE_MANIFEST' },
  {
    name: 'a 2 MiB manifest (over the 1 MiB signature limit)',
    make: () => resignVerity(pki, verity, file('huge.raucb'), (m) => `${m}\n[meta.junk]\n${Array.from({ length: 32_000 }, (_v, i) => `k${i}=${'x'.repeat(56)}`).join('\n')}\n`),
    code: 'OUTPOST_E_OTA_BUNDLE_FORMAT',
  },
  { name: 'a 900 KiB manifest with 7,000 image groups', make: () => resignVerity(pki, verity, file('groups.raucb'), (m) => manyImageGroups(m, 7000)), code: 'OUTPOST_E_OTA_CONFIG' },
  {
    name: 'an image size that differs from the payload',
    make: () => resignVerity(pki, verity, file('size-lie.raucb'), (m) => m.replace(/\nsize=(\d+)\n/, (_s, n: string) => `\nsize=${Number(n) - 4096}\n`)),
    code: 'OUTPOST_E_OTA_BUNDLE_PAYLOAD',
  },
  { name: 'an image the payload lacks', make: () => resignVerity(pki, verity, file('no-file.raucb'), (m) => m.replace(/filename=\S+/, 'filename=kernel.img')), code: 'OUTPOST_E_OTA_BUNDLE_PAYLOAD' },
  { name: 'RAUC install hooks', make: () => resignVerity(pki, verity, file('hooks.raucb'), (m) => `${m}\n[hooks]\nfilename=hook.sh\n`), code: 'OUTPOST_E_OTA_BUNDLE_UNSUPPORTED' },
  { name: 'the crypt format', make: () => resignVerity(pki, verity, file('crypt.raucb'), (m) => m.replace('format=verity', 'format=crypt')), code: 'OUTPOST_E_OTA_BUNDLE_UNSUPPORTED' },
  {
    name: 'an image larger than the slot',
    make: async () => (writeImage(file('big.img'), 9 * 1024 * 1024), outpostBundle(pki, { image: file('big.img'), output: file('big.raucb') })),
    code: 'OUTPOST_E_OTA_SLOT_TOO_SMALL',
  },
  { name: 'a path that does not exist', make: () => file('no-such.raucb'), code: 'OUTPOST_E_OTA_BUNDLE_MISSING' },
  { name: 'a directory', make: () => (mkdirSync(file('a-dir.raucb'), { recursive: true }), file('a-dir.raucb')), code: 'OUTPOST_E_OTA_BUNDLE_MISSING' },
];

/** A verity bundle with one byte of its signed manifest (inside the CMS) changed. */
function flipManifestByte(): string {
  const { body, cms } = splitBundle(verity);
  const b = Buffer.from(readFileSync(verity));
  const at = body.length + cms.indexOf(Buffer.from('compatible=')) + 'compatible='.length;
  b[at] = (b[at] ?? 0) ^ 0x01;
  writeFileSync(file('manifest-flip.raucb'), b);
  return file('manifest-flip.raucb');
}

let n = 0;
describe('hostile bundle files', () => {
  it('the fixtures themselves are accepted (the refusals below are about the forgery, not the rig)', async () => {
    const rig = new Rig(join(dir, `rig${++n}`), pki, 'uboot');
    const info = await cli(['ota', 'info', verity, '-c', rig.configFile]);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/install: {5}no refusal found/);
    expect(info.stderr).toBe('');
    const plainInfo = await cli(['ota', 'info', plain, '-c', rig.configFile, '--json']);
    expect(plainInfo.code, plainInfo.stderr).toBe(0);
    expect(JSON.parse(plainInfo.stdout)).toMatchObject({ format: 'plain', install: { refused: false, refusals: [] } });
  }, 60_000);

  it.each(HOSTILE.map((h) => [h.name, h] as const))('%s', async (_name, h) => {
    const rig = new Rig(join(dir, `rig${++n}`), pki, 'uboot', 8 * 1024 * 1024, h.ota ?? {});
    if (h.counter !== undefined) writeFileSync(join(rig.dir, 'sv'), h.counter);
    writeFileSync(rig.slot('B'), Buffer.alloc(rig.slotSize, 0xee));
    const env = join(rig.dir, 'uboot.env');
    const before = { a: sha(rig.slot('A')), b: sha(rig.slot('B')), env: sha(env) };
    const bundle = await h.make();

    const info = await cli(['ota', 'info', bundle, '-c', rig.configFile]);
    expect(info.code, `${info.stdout}\n${info.stderr}`).toBe(2);
    expectOneReadableError(info.stderr, h.infoCode ?? h.code);

    const install = await cli(['ota', 'install', bundle, '-c', rig.configFile]);
    expect(install.code, install.stderr).toBe(2);
    expectOneReadableError(install.stderr, h.code);

    expect({ a: sha(rig.slot('A')), b: sha(rig.slot('B')), env: sha(env) }).toEqual(before);
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'A B', BOOT_A_LEFT: '3', BOOT_B_LEFT: '3' });
    expect(rig.reboots()).toEqual([]);
  }, 60_000);
});

/** stderr has the code on an `outpost: <CODE>: …` line and no JSON log line; progress lines may precede it. */
function expectOneReadableError(stderr: string, code: string): void {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines.filter((l) => l.trimStart().startsWith('{')), stderr).toEqual([]);
  expect(lines.filter((l) => l.startsWith(`outpost: ${code}: `)), stderr).toHaveLength(1);
}

describe('ota info without a configuration', () => {
  it('checks the signature and payload against --keyring only, and the device policy only when told the compatible', async () => {
    const alone = await cli(['ota', 'info', verity, '--keyring', pki.ca]);
    expect(alone.code, alone.stderr).toBe(0);
    expect(alone.stdout).toMatch(/not checked against a device/);
    const wrong = await cli(['ota', 'info', verity, '--keyring', pki.ca, '--compatible', 'Another Board', '--json']);
    expect(wrong.code).toBe(2);
    expect(JSON.parse(wrong.stdout)).toMatchObject({ install: { refused: true, refusals: [{ code: 'OUTPOST_E_OTA_INCOMPATIBLE' }] } });
    expectOneReadableError(wrong.stderr, 'OUTPOST_E_OTA_INCOMPATIBLE');
    const floor = await cli(['ota', 'info', verity, '--keyring', pki.ca, '--compatible', 'Outpost Test Gateway', '--min-version', '3.0.0']);
    expect(floor.code).toBe(2);
    expectOneReadableError(floor.stderr, 'OUTPOST_E_OTA_DOWNGRADE');
  }, 60_000);

  it('names an unreadable --keyring and a version floor that is not SemVer as usage errors', async () => {
    const missing = await cli(['ota', 'info', verity, '--keyring', file('no-such-ca.pem')]);
    expect(missing.code).toBe(2);
    expectOneReadableError(missing.stderr, 'OUTPOST_E_CLI_USAGE');
    const bad = await cli(['ota', 'info', verity, '--keyring', pki.ca, '--min-version', 'latest']);
    expect(bad.code).toBe(2);
    expectOneReadableError(bad.stderr, 'OUTPOST_E_CLI_USAGE');
  }, 60_000);
});
