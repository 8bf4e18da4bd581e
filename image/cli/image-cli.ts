import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { CliIo } from '../../src/cli/program.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { assertTool, buildImage, rootfsInputs, type ProgressEvent } from '../lib/build.js';
import { combine } from '../lib/hash.js';
import { listTargets, loadTarget } from '../lib/config.js';
import { flashImage } from '../lib/flash.js';
import { realSystem } from '../lib/flash-guard.js';
import { verifyReproducible } from '../lib/repro.js';
import { spawnStage } from '../lib/runner.js';

/** Repository root: the folder holding image/ and package.json (dist/image/cli/ → ../../..). */
export function repoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const r = path.resolve(here, up);
    if (existsSync(path.join(r, 'image', 'config.env')) && existsSync(path.join(r, 'package.json'))) return r;
  }
  throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', 'image inputs not found: run `outpost image` from an Outpost source checkout');
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  return env['OUTPOST_IMAGE_CACHE'] ?? path.join(env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'), 'outpost-image');
}

const HOST_TOOLS: Array<[string, string]> = [
  ['mmdebstrap', 'mmdebstrap'], ['mksquashfs', 'squashfs-tools'], ['mkfs.vfat', 'dosfstools'], ['mcopy', 'mtools'], ['sfdisk', 'fdisk'],
  ['zstd', 'zstd'], ['rauc', 'rauc'], ['faketime', 'faketime'], ['apt-ftparchive', 'apt-utils'], ['grub-editenv', 'grub-common'], ['arch-test', 'arch-test'],
];

function hasTool(t: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status === 0;
}

export function formatProgress(e: ProgressEvent): string {
  const secs = (ms: number) => (ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`);
  if (e.kind === 'start') return `[${e.index}/${e.total}] ${e.stage}: ${e.what} …`;
  if (e.kind === 'done') return `[${e.index}/${e.total}] ${e.stage}: ${e.cached ? 'cached' : 'done'} in ${secs(e.ms)}${e.note ? ` (${e.note})` : ''}`;
  return `      ${e.stage}: still running${e.line ? `: ${e.line.slice(0, 100)}` : ''}`;
}

function toolVersions(root: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('bash', ['-c', `. "${path.join(root, 'image/scripts/lib.sh')}" && tool_versions`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    c.once('error', reject);
    c.once('close', () => resolve(out));
  });
}

function flushBuffers(device: string): Promise<void> {
  return new Promise((resolve) => {
    const c = spawn('blockdev', ['--flushbufs', device], { stdio: 'ignore' });
    c.once('error', () => resolve());
    c.once('close', () => resolve());
  });
}

/** `outpost image build|verify-repro|targets` and `outpost flash`. */
export function registerImageCli(program: Command, io: CliIo): void {
  const image = program.command('image').description('build the reproducible A/B OS image (docs/image.md)');
  // Errors propagate to runCli, which prints them and sets the exit code; a failed stage's log tail comes first.
  const run = (fn: () => Promise<number>) => async () => {
    try {
      await fn();
    } catch (e) {
      if (e instanceof OutpostError && typeof e.details['logTail'] === 'string') io.err(String(e.details['logTail']));
      throw e;
    }
  };
  const common = (o: { out?: string; cache?: string }) => {
    const root = repoRoot();
    for (const [tool, pkg] of HOST_TOOLS) assertTool(hasTool(tool), tool, pkg);
    return { root, outDir: path.resolve(o.out ?? path.join(root, '.image-build', 'out')), cacheDir: path.resolve(o.cache ?? defaultCacheDir(io.env)) };
  };
  image
    .command('targets')
    .description('list the image targets')
    .action(() => io.out(listTargets(path.join(repoRoot(), 'image')).join('\n')));
  image
    .command('key')
    .description("print the cache key of a target's root file system (a hash of its inputs; the app is not one)")
    .requiredOption('-t, --target <target>', 'x86-64 or rpi-arm64')
    .action((o: { target: string }) =>
      run(async () => {
        const root = repoRoot();
        io.out(combine(await rootfsInputs(loadTarget(path.join(root, 'image'), o.target), root)));
        return 0;
      })());
  image
    .command('build')
    .description('build the disk image, OTA bundle, SBOM, SHA256SUMS and build manifest of a target')
    .requiredOption('-t, --target <target>', 'x86-64 or rpi-arm64')
    .option('-o, --out <dir>', 'output folder (default .image-build/out)')
    .option('--cache <dir>', 'cache of .debs and root file systems (default $OUTPOST_IMAGE_CACHE or ~/.cache/outpost-image)')
    .option('--no-cache', 'rebuild the root file system even when the cache has it')
    .action((o: { target: string; out?: string; cache?: string | false }) =>
      run(async () => {
        const c = common({ ...(o.out ? { out: o.out } : {}), ...(typeof o.cache === 'string' ? { cache: o.cache } : {}) });
        const target = loadTarget(path.join(c.root, 'image'), o.target);
        const t0 = Date.now();
        const r = await buildImage({
          target, repoRoot: c.root, outDir: c.outDir, cacheDir: c.cacheDir, useCache: o.cache !== false,
          run: spawnStage, progress: (e) => io.err(formatProgress(e)), now: Date.now, toolVersions: () => toolVersions(c.root),
        });
        io.out(`image ${target.name} built in ${Math.round((Date.now() - t0) / 1000)} s: ${r.dir}`);
        for (const [k, v] of Object.entries(r.outputs)) io.out(`  ${k.padEnd(8)} ${path.relative(process.cwd(), v) || v}`);
        return 0;
      })());
  image
    .command('verify-repro')
    .description('build a target twice in two folders and compare SHA256SUMS; on a mismatch, diffoscope shows what differs')
    .requiredOption('-t, --target <target>', 'x86-64 or rpi-arm64')
    .option('-o, --out <dir>', 'folder for both builds (default .image-build/repro)')
    .option('--cache <dir>', '.deb cache (the root file systems are always rebuilt)')
    .option('--first <dir>', 'use an existing build output folder as the first build')
    .action((o: { target: string; out?: string; cache?: string; first?: string }) =>
      run(async () => {
        const c = common({ out: o.out ?? path.join(repoRoot(), '.image-build', 'repro'), ...(o.cache ? { cache: o.cache } : {}) });
        const target = loadTarget(path.join(c.root, 'image'), o.target);
        const rep = await verifyReproducible({
          target, repoRoot: c.root, outDir: c.outDir, cacheDir: c.cacheDir, ...(o.first ? { firstOutDir: path.resolve(o.first) } : {}),
          run: spawnStage, progress: (e) => io.err(formatProgress(e)), now: Date.now, toolVersions: () => toolVersions(c.root), log: io.err,
        });
        io.out(rep.summary);
        return 0;
      })());

  program
    .command('flash')
    .description('write a disk image (.img or .img.zst) to a block device or file, then verify it by reading back')
    .argument('<image>', 'disk image, e.g. outpost-x86-64-0.1.0.img.zst')
    .argument('<target>', 'block device (/dev/sdX, /dev/mmcblk0) or file')
    .action((imagePath: string, target: string) =>
      run(async () => {
        let last = -1;
        const tty = process.stderr.isTTY === true;
        const r = await flashImage({
          image: imagePath, target, system: realSystem, flushBuffers,
          progress: (phase, done, total) => {
            const pct = total ? Math.floor((done / total) * 100) : -1;
            const step = tty ? pct : Math.floor(pct / 10) * 10;
            if (step === last && pct !== 100) return;
            last = step;
            const bar = total ? `[${'#'.repeat(Math.floor(pct / 4)).padEnd(25, '.')}] ${String(pct).padStart(3)}%` : '';
            const line = `${phase === 'write' ? 'writing  ' : 'verifying'} ${bar} ${Math.round(done / 1048576)} MiB`;
            if (tty) process.stderr.write(`\r${line}`);
            else io.err(line);
            if (pct === 100) { last = -1; if (tty) process.stderr.write('\n'); }
          },
        });
        io.out(`flashed ${target}: ${r.bytes} bytes, sha256 ${r.sha256}, verified by reading back`);
        return 0;
      })());
}
