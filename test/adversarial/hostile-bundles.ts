import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCms, signCms } from '../../ota/bundle/cms.js';
import type { Pki } from '../helpers/ota.js';

/**
 * Byte-level forgeries of RAUC bundles for the adversarial suite. Each writes `out` and returns it. A verity
 * bundle is [payload | hash tree | CMS (the manifest inside) | CMS size, u64 big-endian].
 */

/** The bundle split at its trailer: everything before the CMS, the CMS, and the manifest a verity CMS carries. */
export function splitBundle(file: string): { body: Buffer; cms: Buffer; manifest: string | null } {
  const b = readFileSync(file);
  const cmsSize = Number(b.readBigUInt64BE(b.length - 8));
  const cms = b.subarray(b.length - 8 - cmsSize, b.length - 8);
  const eContent = parseCms(cms).eContent;
  return { body: b.subarray(0, b.length - 8 - cmsSize), cms, manifest: eContent === null ? null : eContent.toString('utf8') };
}

function trailer(cms: Buffer): Buffer {
  const len = Buffer.alloc(8);
  len.writeBigUInt64BE(BigInt(cms.length));
  return Buffer.concat([cms, len]);
}

/**
 * A verity bundle whose signed manifest is `edit(original manifest)`, re-signed by a trusted signer: what a
 * holder of a release key (or a broken build) could produce. The payload and hash tree are the original's.
 */
export function resignVerity(pki: Pki, verityBundle: string, out: string, edit: (manifest: string) => string): string {
  const { body, manifest } = splitBundle(verityBundle);
  if (manifest === null) throw new Error(`${verityBundle} is not a verity bundle`);
  const m = Buffer.from(edit(manifest), 'utf8');
  const s = pki.signers.ec;
  const cms = signCms({ contentDigest: createHash('sha256').update(m).digest(), eContent: m, cert: new X509Certificate(readFileSync(s.cert)), key: createPrivateKey(readFileSync(s.key)), signingTime: new Date() });
  writeFileSync(out, Buffer.concat([body, trailer(cms)]));
  return out;
}

/** The bundle with its 8-byte CMS size trailer replaced by `size`. */
export function withSizeTrailer(bundle: string, out: string, size: (real: bigint, fileSize: number) => bigint): string {
  const b = Buffer.from(readFileSync(bundle));
  b.writeBigUInt64BE(size(b.readBigUInt64BE(b.length - 8), b.length), b.length - 8);
  writeFileSync(out, b);
  return out;
}

/** The bundle with one payload byte flipped at `offset`. */
export function flipByte(bundle: string, out: string, offset: number): string {
  const b = Buffer.from(readFileSync(bundle));
  b[offset] = (b[offset] ?? 0) ^ 0x5a;
  writeFileSync(out, b);
  return out;
}

export function randomFile(out: string, size: number): string {
  writeFileSync(out, randomBytes(size));
  return out;
}

/** `count` extra `[image.<class>]` groups naming the real image (right size and sha256) for slot classes no slot has. */
export function manyImageGroups(manifest: string, count: number): string {
  const img = /\[image\.rootfs\]\nsha256=([0-9a-f]{64})\nsize=(\d+)\nfilename=(\S+)\n/.exec(manifest);
  if (img === null) throw new Error('manifest without [image.rootfs]');
  const groups: string[] = [];
  for (let i = 0; i < count; i++) groups.push(`[image.extra${i}]\nsha256=${img[1]}\nsize=${img[2]}\nfilename=${img[3]}\n`);
  return `${manifest}\n${groups.join('\n')}`;
}
