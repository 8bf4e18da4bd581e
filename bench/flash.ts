import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { flashImage } from '../image/lib/flash.js';
import { realSystem } from '../image/lib/flash-guard.js';
import { mib } from './stats.js';

/**
 * `outpost flash` throughput: a zstd disk image (BENCH_FLASH_MIB MiB, 1/4 random data, the rest zero runs, like a real
 * image) written to a file and verified by reading back, against a baseline measured in the same run:
 * `zstd -dc image | dd of=target conv=fsync` followed by `sha256sum target` (the usual manual recipe).
 */
const SIZE_MIB = Number(process.env['BENCH_FLASH_MIB'] ?? 256);
const ROUNDS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-bench-flash-'));
try {
  const raw = path.join(dir, 'disk.img');
  const buf = Buffer.alloc(SIZE_MIB * 1024 * 1024);
  for (let off = 0; off < buf.length; off += 4 * 1024 * 1024) randomBytes(1024 * 1024).copy(buf, off);
  writeFileSync(raw, buf);
  const zst = `${raw}.zst`;
  spawnSync('zstd', ['-q', '-3', '-T1', '-o', zst, raw]);
  rmSync(raw);
  const target = path.join(dir, 'target.img');
  const base: number[] = [];
  const ours: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rmSync(target, { force: true });
    let t0 = process.hrtime.bigint();
    const b = spawnSync('sh', ['-c', `zstd -dc "${zst}" | dd of="${target}" bs=4M conv=fsync status=none && sha256sum "${target}" >/dev/null`]);
    if (b.status !== 0) throw new Error(`baseline failed: ${b.stderr}`);
    base.push(Number(process.hrtime.bigint() - t0) / 1e9);
    rmSync(target, { force: true });
    t0 = process.hrtime.bigint();
    await flashImage({ image: zst, target, system: realSystem, flushBuffers: async () => undefined, progress: () => undefined });
    ours.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const b = median(base);
  const o = median(ours);
  console.log(`flash ${SIZE_MIB} MiB zstd image to a file, median of ${ROUNDS}:`);
  console.log(`  baseline zstd -dc | dd conv=fsync + sha256sum: ${b.toFixed(2)} s (${(SIZE_MIB / b).toFixed(0)} MiB/s)`);
  console.log(`  outpost flash (write, fdatasync, read back):    ${o.toFixed(2)} s (${(SIZE_MIB / o).toFixed(0)} MiB/s)`);
  console.log(`  ratio outpost/baseline: ${(o / b).toFixed(2)} (below 1 is faster)`);
  console.log(`  RSS: ${mib(process.memoryUsage().rss)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
