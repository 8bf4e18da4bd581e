import { createHash, timingSafeEqual } from 'node:crypto';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** dm-verity parameters RAUC uses for bundles: format 1, sha256, 4 KiB data and hash blocks, 32-byte salt, no superblock. */
export const VERITY_BLOCK = 4096;
const DIGEST = 32;
const PER_BLOCK = VERITY_BLOCK / DIGEST; // 128 hashes per hash block

/** Where each level of the hash tree lives, in hash blocks counted from the start of the hash area. */
export interface VerityLayout {
  readonly dataBlocks: number;
  /** levelStart[i] / levelBlocks[i]: level 0 hashes data blocks; the highest level is stored first. */
  readonly levelStart: readonly number[];
  readonly levelBlocks: readonly number[];
  readonly hashBlocks: number;
}

/** The layout cryptsetup and RAUC compute (verity_hash.c `hash_levels`). */
export function verityLayout(dataBlocks: number): VerityLayout {
  if (!Number.isSafeInteger(dataBlocks) || dataBlocks < 1) throw new RangeError('verity needs at least one data block');
  let levels = 0;
  while (levels * 7 < 53 && Math.floor((dataBlocks - 1) / PER_BLOCK ** levels) > 0) levels++;
  const levelStart: number[] = new Array<number>(levels).fill(0);
  const levelBlocks: number[] = new Array<number>(levels).fill(0);
  let pos = 0;
  for (let i = levels - 1; i >= 0; i--) {
    levelStart[i] = pos;
    const s = Math.ceil(dataBlocks / PER_BLOCK ** (i + 1));
    levelBlocks[i] = s;
    pos += s;
  }
  return { dataBlocks, levelStart, levelBlocks, hashBlocks: pos };
}

export function hashBlock(salt: Buffer, block: Buffer): Buffer {
  return createHash('sha256').update(salt).update(block).digest();
}

/** Builds the hash area (all levels) and the root hash for data read through `readBlocks`. */
export async function createHashTree(
  dataBlocks: number,
  salt: Buffer,
  readBlocks: (firstBlock: number, count: number) => Promise<Buffer>,
): Promise<{ tree: Buffer; rootHash: Buffer }> {
  const layout = verityLayout(dataBlocks);
  const tree = Buffer.alloc(layout.hashBlocks * VERITY_BLOCK);
  const chunk = 256; // blocks per read (1 MiB)
  if (layout.levelStart.length === 0) {
    return { tree, rootHash: hashBlock(salt, await readBlocks(0, 1)) };
  }
  const level0 = (layout.levelStart[0] ?? 0) * VERITY_BLOCK;
  for (let b = 0; b < dataBlocks; b += chunk) {
    const n = Math.min(chunk, dataBlocks - b);
    const buf = await readBlocks(b, n);
    for (let i = 0; i < n; i++) hashBlock(salt, buf.subarray(i * VERITY_BLOCK, (i + 1) * VERITY_BLOCK)).copy(tree, level0 + (b + i) * DIGEST);
  }
  for (let lvl = 1; lvl < layout.levelStart.length; lvl++) {
    const src = (layout.levelStart[lvl - 1] ?? 0) * VERITY_BLOCK;
    const dst = (layout.levelStart[lvl] ?? 0) * VERITY_BLOCK;
    for (let i = 0; i < (layout.levelBlocks[lvl - 1] ?? 0); i++) {
      hashBlock(salt, tree.subarray(src + i * VERITY_BLOCK, src + (i + 1) * VERITY_BLOCK)).copy(tree, dst + i * DIGEST);
    }
  }
  const top = (layout.levelStart[layout.levelStart.length - 1] ?? 0) * VERITY_BLOCK;
  return { tree, rootHash: hashBlock(salt, tree.subarray(top, top + VERITY_BLOCK)) };
}

function payloadError(message: string, details: Record<string, unknown>): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_PAYLOAD', message, { details });
}

/**
 * Checks data blocks against a dm-verity hash tree without device-mapper.
 * Invariants: the constructor verifies every hash level up to the signed root hash (and that unused
 * hash slots are zero), so afterwards a data block is accepted only when its salted sha256 equals its
 * level-0 entry; only level 0 is kept in memory (1/128 of the data size).
 */
export class VerityVerifier {
  private readonly level0: Buffer;
  private readonly salt: Buffer;
  readonly dataBlocks: number;

  constructor(tree: Buffer, dataBlocks: number, salt: Buffer, rootHash: Buffer) {
    const layout = verityLayout(dataBlocks);
    if (tree.length !== layout.hashBlocks * VERITY_BLOCK) {
      throw payloadError('verity hash tree size does not match the payload size', { expected: layout.hashBlocks * VERITY_BLOCK, actual: tree.length });
    }
    this.salt = salt;
    this.dataBlocks = dataBlocks;
    const levels = layout.levelStart.length;
    const block = (lvl: number, i: number) => {
      const at = ((layout.levelStart[lvl] ?? 0) + i) * VERITY_BLOCK;
      return tree.subarray(at, at + VERITY_BLOCK);
    };
    if (levels === 0) {
      // A single data block: the root hash is its hash; nothing to keep but the root.
      this.level0 = Buffer.from(rootHash);
      return;
    }
    if (!safeEqual(hashBlock(salt, block(levels - 1, 0)), rootHash)) throw payloadError('verity root hash mismatch: the hash tree was changed', {});
    for (let lvl = levels - 1; lvl >= 1; lvl--) {
      const children = layout.levelBlocks[lvl - 1] ?? 0;
      for (let i = 0; i < children; i++) {
        const parent = block(lvl, Math.floor(i / PER_BLOCK));
        const slot = (i % PER_BLOCK) * DIGEST;
        if (!safeEqual(hashBlock(salt, block(lvl - 1, i)), parent.subarray(slot, slot + DIGEST))) {
          throw payloadError('verity hash tree is inconsistent', { level: lvl - 1, block: i });
        }
      }
      checkZeroTail(tree, layout, lvl, children);
    }
    checkZeroTail(tree, layout, 0, dataBlocks);
    const start = (layout.levelStart[0] ?? 0) * VERITY_BLOCK;
    this.level0 = Buffer.from(tree.subarray(start, start + dataBlocks * DIGEST));
  }

  /** Verifies `count` consecutive 4 KiB data blocks starting at block `first`; throws naming the first bad block. */
  verifyBlocks(first: number, data: Buffer): void {
    const count = data.length / VERITY_BLOCK;
    if (!Number.isInteger(count) || first < 0 || first + count > this.dataBlocks) throw new RangeError('verity range outside the payload');
    for (let i = 0; i < count; i++) {
      const idx = first + i;
      const expected = this.level0.subarray(idx * DIGEST, idx * DIGEST + DIGEST);
      if (!safeEqual(hashBlock(this.salt, data.subarray(i * VERITY_BLOCK, (i + 1) * VERITY_BLOCK)), expected)) {
        throw payloadError('payload block does not match the verity hash tree (bundle modified after signing)', { block: idx, offset: idx * VERITY_BLOCK });
      }
    }
  }
}

function checkZeroTail(tree: Buffer, layout: VerityLayout, lvl: number, entries: number): void {
  const start = ((layout.levelStart[lvl] ?? 0) * VERITY_BLOCK) + entries * DIGEST;
  const end = ((layout.levelStart[lvl] ?? 0) + (layout.levelBlocks[lvl] ?? 0)) * VERITY_BLOCK;
  for (let i = start; i < end; i++) if (tree[i] !== 0) throw payloadError('verity hash tree has data in its unused area', { level: lvl, offset: i });
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
