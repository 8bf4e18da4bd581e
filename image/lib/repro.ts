import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { buildImage, partitionImages, type BuildOptions, type ProgressEvent } from './build.js';
import type { ImageTarget } from './config.js';
import { sha256File } from './hash.js';
import type { StageCommand } from './runner.js';

/** Lines of two SHA256SUMS files that differ, by file name. */
export function diffSums(a: string, b: string): string[] {
  const parse = (t: string) => new Map(t.trim().split('\n').filter((l) => l !== '').map((l) => { const [h, f] = l.split(/\s+/); return [f as string, h as string]; }));
  const ma = parse(a);
  const mb = parse(b);
  return [...new Set([...ma.keys(), ...mb.keys()])].filter((f) => ma.get(f) !== mb.get(f)).sort();
}

export interface ReproOptions {
  readonly target: ImageTarget;
  readonly repoRoot: string;
  readonly outDir: string;
  readonly cacheDir: string;
  /** An existing build output folder (…/out) to compare against instead of building twice. */
  readonly firstOutDir?: string;
  readonly run: StageCommand;
  readonly progress: (e: ProgressEvent) => void;
  readonly now: () => number;
  readonly toolVersions: () => Promise<string>;
  readonly log: (line: string) => void;
}

function diffoscope(a: string, b: string, report: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const c = spawn('timeout', [String(Math.round(timeoutMs / 1000)), 'diffoscope', '--text', report, '--max-report-size', '2000000', a, b], { stdio: 'ignore' });
    c.once('error', () => resolve());
    c.once('close', () => resolve());
  });
}

/**
 * Builds the target in two different folders (the root file system rebuilt both times; only the .deb cache is
 * shared) and compares SHA256SUMS. On a mismatch it names the differing outputs and partition images and runs
 * diffoscope on the root file system tars and on each differing partition image (never on whole disks).
 */
export async function verifyReproducible(o: ReproOptions): Promise<{ summary: string }> {
  const base: Omit<BuildOptions, 'outDir' | 'useCache'> = { target: o.target, repoRoot: o.repoRoot, cacheDir: o.cacheDir, run: o.run, progress: o.progress, now: o.now, toolVersions: o.toolVersions };
  let dirA: string;
  if (o.firstOutDir !== undefined) {
    dirA = path.join(o.firstOutDir, o.target.name);
    if (!existsSync(path.join(dirA, 'SHA256SUMS'))) throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `${dirA} holds no finished build (no SHA256SUMS)`);
  } else {
    o.log(`verify-repro: first build in ${path.join(o.outDir, 'a')}`);
    dirA = (await buildImage({ ...base, outDir: path.join(o.outDir, 'a'), useCache: false })).dir;
  }
  o.log(`verify-repro: second build in ${path.join(o.outDir, 'b')}`);
  const dirB = (await buildImage({ ...base, outDir: path.join(o.outDir, 'b'), useCache: false })).dir;
  const sumsA = readFileSync(path.join(dirA, 'SHA256SUMS'), 'utf8');
  const sumsB = readFileSync(path.join(dirB, 'SHA256SUMS'), 'utf8');
  const differing = diffSums(sumsA, sumsB);
  if (differing.length === 0) {
    return { summary: `reproducible: ${o.target.name} built twice (${dirA}, ${dirB}) with identical SHA256SUMS:\n${sumsA.trim()}` };
  }
  const wa = path.join(dirA, 'work');
  const wb = path.join(dirB, 'work');
  const parts: string[] = [];
  for (const f of partitionImages(wa)) {
    if (existsSync(path.join(wb, f)) && (await sha256File(path.join(wa, f))) !== (await sha256File(path.join(wb, f)))) parts.push(f);
  }
  const reports = path.join(o.outDir, 'diffoscope');
  rmSync(reports, { recursive: true, force: true });
  mkdirSync(reports, { recursive: true });
  const pairs = ['rootfs.tar', ...parts.filter((p) => p !== 'disk.img')].filter((f) => existsSync(path.join(wa, f)) && existsSync(path.join(wb, f)));
  for (const f of pairs) {
    o.log(`verify-repro: diffoscope ${f}`);
    await diffoscope(path.join(wa, f), path.join(wb, f), path.join(reports, `${f}.txt`), 20 * 60_000);
  }
  writeFileSync(path.join(reports, 'SHA256SUMS.diff'), `first:\n${sumsA}\nsecond:\n${sumsB}`);
  throw new OutpostError(
    'OUTPOST_E_IMAGE_NOT_REPRODUCIBLE',
    `${o.target.name} is not reproducible: ${differing.join(', ')} differ (partition images: ${parts.join(', ') || 'none'}); diffoscope reports in ${reports}`,
    { details: { differing, partitions: parts, reports } },
  );
}
