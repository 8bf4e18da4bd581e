import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VerifiedBundle } from '../../ota/bundle/bundle.js';
import { parseKeyring } from '../../ota/bundle/cms.js';
import { isOutpostError } from '../../src/errors/outpost-error.js';
import { makePki, outpostBundle, writeImage, type Pki } from '../helpers/ota.js';

let dir = '';
let pki: Pki;
let keyring: ReturnType<typeof parseKeyring>;

function raucConf(d: string): string {
  const f = join(d, 'system.conf');
  writeFileSync(
    f,
    `[system]\ncompatible=Outpost Test Gateway\nbootloader=noop\nmountprefix=${d}/mnt\nstatusfile=${d}/status.raucs\n[keyring]\npath=${pki.ca}\ncheck-purpose=codesign\n[slot.rootfs.0]\ndevice=${d}/a.img\ntype=raw\nbootname=A\n[slot.rootfs.1]\ndevice=${d}/b.img\ntype=raw\nbootname=B\n`,
  );
  return f;
}

/** `rauc bundle` from a content directory, as a release pipeline on Debian would run it. */
function raucBundle(image: string, format: 'plain' | 'verity', signer: keyof Pki['signers'], out: string): string {
  const content = join(dir, `content-${format}-${signer}`);
  mkdirSync(content, { recursive: true });
  copyFileSync(image, join(content, 'rootfs.img'));
  writeFileSync(join(content, 'manifest.raucm'), `[update]\ncompatible=Outpost Test Gateway\nversion=1.4.2\n[bundle]\nformat=${format}\n[image.rootfs]\nfilename=rootfs.img\n`);
  const s = pki.signers[signer];
  const r = spawnSync('rauc', ['-c', raucConf(dir), 'bundle', `--cert=${s.cert}`, `--key=${s.key}`, content, out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`rauc bundle failed: ${r.stderr}`);
  return out;
}

async function imageOf(file: string): Promise<{ bundle: VerifiedBundle; data: Buffer }> {
  const bundle = await VerifiedBundle.open(file, { keyring, now: new Date() });
  const parts: Buffer[] = [];
  try {
    await bundle.verifyPayload();
    await bundle.streamImage(bundle.manifest.images[0] as never, async (c) => void parts.push(Buffer.from(c)));
  } finally {
    await bundle.close();
  }
  return { bundle, data: Buffer.concat(parts) };
}

async function rejection(file: string): Promise<{ code: string; message: string }> {
  try {
    await imageOf(file);
  } catch (e) {
    if (isOutpostError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error(`${file} was accepted`);
}

function flipByte(src: string, dst: string, at: (size: number) => number): string {
  copyFileSync(src, dst);
  const b = readFileSync(dst);
  const i = at(b.length);
  b[i] = (b[i] ?? 0) ^ 0x40;
  writeFileSync(dst, b);
  return dst;
}

describe('RAUC bundles (rauc 1.8 from Debian as the peer)', () => {
  let random: Buffer;
  let text: Buffer;

  beforeAll(() => {
    if (spawnSync('rauc', ['--version']).status !== 0) throw new Error('rauc is not installed (scripts/apt-packages.txt)');
    dir = mkdtempSync(join(tmpdir(), 'outpost-bundle-'));
    pki = makePki(join(dir, 'pki'));
    keyring = parseKeyring(readFileSync(pki.ca, 'utf8'));
    random = writeImage(join(dir, 'random.img'), 3 * 1024 * 1024 + 1234);
    text = writeImage(join(dir, 'text.img'), 2 * 1024 * 1024 + 77, 'text');
  }, 120_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['plain', 'ec'],
    ['verity', 'ec'],
    ['verity', 'rsa'],
  ] as const)('reads a %s bundle built by `rauc bundle` (%s signer)', async (format, signer) => {
    const file = raucBundle(join(dir, 'random.img'), format, signer, join(dir, `rauc-${format}-${signer}.raucb`));
    const { bundle, data } = await imageOf(file);
    expect(bundle.info.format).toBe(format);
    expect(bundle.manifest.version).toBe('1.4.2');
    expect(bundle.info.signer).toContain(signer === 'ec' ? 'release-ec' : 'release-rsa');
    expect(data.equals(random)).toBe(true);
    expect(bundle.manifest.images[0]?.sha256).toBe(createHash('sha256').update(random).digest('hex'));
  });

  it('reads gzip-compressed blocks and fragments of a compressible image', async () => {
    const file = raucBundle(join(dir, 'text.img'), 'verity', 'ec', join(dir, 'rauc-text.raucb'));
    expect(statSync(file).size).toBeLessThan(text.length / 4);
    const { data } = await imageOf(file);
    expect(data.equals(text)).toBe(true);
  });

  it.each(['plain', 'verity'] as const)('builds %s bundles that `rauc info` accepts and Outpost reads back', async (format) => {
    const file = await outpostBundle(pki, { image: join(dir, 'text.img'), output: join(dir, `outpost-${format}.raucb`), format, securityVersion: 7n, version: '3.1.0' });
    const r = spawnSync('rauc', ['-c', raucConf(dir), 'info', '--output-format=json', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { compatible: string; version: string; images: Array<Record<string, { checksum: string; size: number }>> };
    expect(info.compatible).toBe('Outpost Test Gateway');
    expect(info.version).toBe('3.1.0');
    expect(info.images[0]?.['rootfs']?.checksum).toBe(createHash('sha256').update(text).digest('hex'));
    const { bundle, data } = await imageOf(file);
    expect(bundle.manifest.securityVersion).toBe(7n);
    expect(data.equals(text)).toBe(true);
  });

  it('accepts a signer that chains through an intermediate CA carried in the bundle', async () => {
    const file = await outpostBundle(pki, { image: join(dir, 'text.img'), output: join(dir, 'inter.raucb'), signer: 'viaIntermediate' });
    const { bundle } = await imageOf(file);
    expect(bundle.info.chain).toHaveLength(3);
    expect(spawnSync('rauc', ['-c', raucConf(dir), 'info', file]).status).toBe(0);
  });

  describe('rejections', () => {
    let plain = '';
    let verity = '';
    beforeAll(async () => {
      plain = await outpostBundle(pki, { image: join(dir, 'random.img'), output: join(dir, 'ok-plain.raucb'), format: 'plain' });
      verity = await outpostBundle(pki, { image: join(dir, 'random.img'), output: join(dir, 'ok-verity.raucb'), format: 'verity' });
    }, 180_000);

    it('a changed payload byte in a plain bundle', async () => {
      const r = await rejection(flipByte(plain, join(dir, 't1.raucb'), () => 200_000));
      expect(r).toMatchObject({ code: 'OUTPOST_E_OTA_BUNDLE_SIGNATURE' });
      expect(r.message).toContain('payload digest mismatch');
    });

    it('a changed payload byte in a verity bundle', async () => {
      const r = await rejection(flipByte(verity, join(dir, 't2.raucb'), () => 1_000_000));
      expect(r.code).toBe('OUTPOST_E_OTA_BUNDLE_PAYLOAD');
      expect(r.message).toContain('verity');
    });

    it('a changed byte in the verity hash tree', async () => {
      const size = statSync(verity).size;
      const cms = readFileSync(verity).readBigUInt64BE(size - 8);
      const r = await rejection(flipByte(verity, join(dir, 't3.raucb'), (n) => n - 8 - Number(cms) - 100));
      expect(r.code).toBe('OUTPOST_E_OTA_BUNDLE_PAYLOAD');
    });

    it('a changed manifest (verity bundles carry it in the signature)', async () => {
      const b = readFileSync(verity);
      const at = b.indexOf(Buffer.from('version=2.0.0'));
      expect(at).toBeGreaterThan(0);
      b.write('version=9.0.0', at);
      writeFileSync(join(dir, 't4.raucb'), b);
      const r = await rejection(join(dir, 't4.raucb'));
      expect(r.code).toBe('OUTPOST_E_OTA_BUNDLE_SIGNATURE');
      expect(r.message).toContain('manifest');
    });

    it.each([
      ['untrusted', 'does not chain to a certificate in the keyring'],
      ['expired', 'expired'],
      ['noEku', 'lacks the codeSigning extended key usage'],
    ] as const)('a signer that is %s', async (signer, words) => {
      const file = await outpostBundle(pki, { image: join(dir, 'text.img'), output: join(dir, `bad-${signer}.raucb`), signer });
      const r = await rejection(file);
      expect(r.code).toBe('OUTPOST_E_OTA_BUNDLE_SIGNER');
      expect(r.message).toContain(words);
    });

    it.each([
      ['cut short by 1000 bytes', (f: string) => truncateSync(f, statSync(f).size - 1000)],
      ['cut in half', (f: string) => truncateSync(f, Math.floor(statSync(f).size / 2))],
      ['not a bundle at all', (f: string) => writeFileSync(f, Buffer.alloc(100_000, 7))],
    ])('a file %s', async (_name, damage) => {
      for (const src of [plain, verity]) {
        const f = join(dir, 'trunc.raucb');
        copyFileSync(src, f);
        damage(f);
        const r = await rejection(f);
        expect(['OUTPOST_E_OTA_BUNDLE_FORMAT', 'OUTPOST_E_OTA_BUNDLE_SIGNATURE']).toContain(r.code);
      }
    });

    it('rauc itself refuses what Outpost refuses (cross-check of the tamper cases)', () => {
      const r = spawnSync('rauc', ['-c', raucConf(dir), 'info', join(dir, 't1.raucb')], { encoding: 'utf8' });
      expect(r.status).not.toBe(0);
      const e = spawnSync('rauc', ['-c', raucConf(dir), 'info', join(dir, 'bad-noEku.raucb')], { encoding: 'utf8' });
      expect(e.status).not.toBe(0);
    });
  });

  it('`outpost ota info` prints the verified manifest', () => {
    const out = execFileSync(process.execPath, [join(import.meta.dirname, '..', '..', 'dist', 'services', 'outpost.js'), 'ota', 'info', '--keyring', pki.ca, join(dir, 'outpost-verity.raucb')], {
      encoding: 'utf8',
    });
    expect(out).toContain('version:     3.1.0 (security version 7)');
    expect(out).toContain('verity');
  });
});
