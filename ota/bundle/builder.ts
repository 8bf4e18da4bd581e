import { spawn } from 'node:child_process';
import { X509Certificate, createHash, createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, link, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { signCms } from './cms.js';
import { parseIni, renderManifest, type ManifestImage } from './manifest.js';
import { VERITY_BLOCK, createHashTree } from './verity.js';

export interface BuildImage {
  readonly slotClass: string;
  /** Source file on the build host. */
  readonly path: string;
  /** Name inside the bundle; defaults to the source's base name. */
  readonly filename?: string;
}

export interface BuildOptions {
  readonly images: readonly BuildImage[];
  readonly compatible: string;
  readonly version: string;
  readonly description?: string;
  readonly build?: string;
  readonly securityVersion?: bigint;
  readonly meta?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly format: 'plain' | 'verity';
  readonly certPem: string;
  readonly keyPem: string;
  readonly intermediatesPem?: string;
  readonly output: string;
  /** signingTime attribute and squashfs timestamps (SOURCE_DATE_EPOCH for reproducible builds). */
  readonly time: Date;
  /** Fixed verity salt (32 bytes); random when absent. */
  readonly salt?: Buffer;
  readonly mksquashfs?: string;
  readonly tmpDir: string;
}

function buildError(message: string, details: Record<string, unknown> = {}, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUILD', message, { details, ...(cause !== undefined ? { cause } : {}) });
}

async function sha256File(file: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString('utf8')).slice(-4000)));
    child.once('error', (e) => reject(buildError(`cannot run ${cmd} (install squashfs-tools)`, { cmd }, e)));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(buildError(`${cmd} failed with exit code ${code}`, { cmd, stderr: err.trim() }))));
  });
}

/** Reads a `rauc bundle`-style content directory: manifest.raucm plus the image files it names. */
export async function readContentDir(dir: string): Promise<Pick<BuildOptions, 'images' | 'compatible' | 'version' | 'description' | 'build' | 'format' | 'meta'>> {
  let text: string;
  try {
    text = await readFile(path.join(dir, 'manifest.raucm'), 'utf8');
  } catch (e) {
    throw buildError(`cannot read ${path.join(dir, 'manifest.raucm')}`, { dir }, e);
  }
  const g = parseIni(text);
  const update = g.get('update');
  const compatible = update?.get('compatible');
  const version = update?.get('version');
  if (!compatible || !version) throw buildError('manifest.raucm needs [update] compatible and version');
  const format = g.get('bundle')?.get('format') ?? 'verity';
  if (format !== 'plain' && format !== 'verity') throw buildError(`manifest.raucm format=${format}: only plain and verity are built`);
  const images: BuildImage[] = [];
  const meta: Record<string, Record<string, string>> = {};
  for (const [name, kv] of g) {
    if (name.startsWith('meta.')) meta[name.slice(5)] = Object.fromEntries(kv);
    if (!name.startsWith('image.')) continue;
    const filename = kv.get('filename');
    if (!filename) throw buildError(`manifest.raucm [${name}] has no filename`);
    images.push({ slotClass: name.slice(6), path: path.join(dir, filename), filename });
  }
  const description = update?.get('description');
  const build = update?.get('build');
  return { images, compatible, version, format, meta, ...(description !== undefined ? { description } : {}), ...(build !== undefined ? { build } : {}) };
}

/**
 * Builds a RAUC bundle the way `rauc bundle` does: a squashfs of the images and manifest.raucm
 * (mksquashfs -all-root -noappend -no-xattrs, gzip), then for `verity` the dm-verity hash tree and a
 * CMS with the manifest (root hash, salt, size) inside, for `plain` a detached CMS over the squashfs;
 * then the CMS and its size (u64 big-endian). Writes `output` atomically (temp file + rename).
 */
export async function buildBundle(o: BuildOptions): Promise<{ output: string; size: number; manifest: string }> {
  let key: KeyObject;
  let cert: X509Certificate;
  let intermediates: X509Certificate[] = [];
  try {
    key = createPrivateKey(o.keyPem);
    cert = new X509Certificate(o.certPem);
    intermediates = (o.intermediatesPem?.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
  } catch (e) {
    throw buildError('cannot parse the signing key or certificate (PEM expected)', {}, e);
  }
  if (o.images.length === 0) throw buildError('a bundle needs at least one image');
  const classes = new Set<string>();
  const staging = await mkdtemp(path.join(o.tmpDir, 'outpost-bundle-'));
  const tmpOut = `${o.output}.tmp-${process.pid}`;
  try {
    const images: ManifestImage[] = [];
    for (const img of o.images) {
      if (classes.has(img.slotClass)) throw buildError(`two images for slot class ${img.slotClass}`);
      classes.add(img.slotClass);
      const filename = img.filename ?? path.basename(img.path);
      if (filename === 'manifest.raucm' || filename.includes('/')) throw buildError(`image file name ${filename} is not allowed`);
      try {
        if (!(await stat(img.path)).isFile()) throw new Error('not a regular file');
      } catch (e) {
        throw buildError(`image ${img.path} is not a readable file`, { path: img.path }, e);
      }
      const dest = path.join(staging, filename);
      await link(path.resolve(img.path), dest).catch(() => copyFile(img.path, dest));
      images.push({ slotClass: img.slotClass, filename, ...(await sha256File(dest)) });
    }
    const base = {
      compatible: o.compatible,
      version: o.version,
      ...(o.description !== undefined ? { description: o.description } : {}),
      ...(o.build !== undefined ? { build: o.build } : {}),
      format: o.format,
      images,
      meta: o.meta ?? {},
      ...(o.securityVersion !== undefined ? { securityVersion: o.securityVersion } : {}),
    };
    await writeFile(path.join(staging, 'manifest.raucm'), renderManifest(base));
    const t = String(Math.floor(o.time.getTime() / 1000));
    await run(o.mksquashfs ?? 'mksquashfs', [staging, tmpOut, '-all-root', '-noappend', '-no-progress', '-no-xattrs', '-mkfs-time', t, '-all-time', t]);
    const fh = await open(tmpOut, 'r+');
    try {
      let size = (await fh.stat()).size;
      if (size % VERITY_BLOCK !== 0) {
        const pad = VERITY_BLOCK - (size % VERITY_BLOCK);
        await fh.write(Buffer.alloc(pad), 0, pad, size);
        size += pad;
      }
      let cms: Buffer;
      let signedManifest: string;
      if (o.format === 'verity') {
        const salt = o.salt ?? randomBytes(32);
        if (salt.length !== 32) throw buildError('verity salt must be 32 bytes');
        const { tree, rootHash } = await createHashTree(size / VERITY_BLOCK, salt, async (first, count) => {
          const buf = Buffer.alloc(count * VERITY_BLOCK);
          await fh.read(buf, 0, buf.length, first * VERITY_BLOCK);
          return buf;
        });
        await fh.write(tree, 0, tree.length, size);
        size += tree.length;
        signedManifest = renderManifest({ ...base, verity: { hash: rootHash.toString('hex'), salt: salt.toString('hex'), size: tree.length } });
        const m = Buffer.from(signedManifest, 'utf8');
        cms = signCms({ contentDigest: createHash('sha256').update(m).digest(), eContent: m, cert, key, intermediates, signingTime: o.time });
      } else {
        signedManifest = renderManifest(base);
        const h = createHash('sha256');
        const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
        for (let at = 0; at < size; ) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - at), at);
          if (bytesRead === 0) throw buildError('squashfs output shrank while hashing');
          h.update(buf.subarray(0, bytesRead));
          at += bytesRead;
        }
        cms = signCms({ contentDigest: h.digest(), eContent: null, cert, key, intermediates, signingTime: o.time });
      }
      const len = Buffer.alloc(8);
      len.writeBigUInt64BE(BigInt(cms.length));
      const trailer = Buffer.concat([cms, len]);
      await fh.write(trailer, 0, trailer.length, size);
      size += trailer.length;
      await fh.truncate(size);
      await fh.sync();
      await fh.close();
      await rename(tmpOut, o.output);
      return { output: o.output, size, manifest: signedManifest };
    } catch (e) {
      await fh.close().catch(() => undefined);
      throw e;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
    await rm(tmpOut, { force: true });
  }
}
