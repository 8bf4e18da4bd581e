import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { parseLock, type ImageTarget } from './config.js';
import { combine, sha256File, sha256Tree } from './hash.js';
import type { StageCommand } from './runner.js';
import { buildSbom } from './sbom.js';

/**
 * The image build: a fixed list of stages, each a function of committed inputs, run in order with progress.
 * Invariants: outputs go to `<outDir>/<target>/`, scratch to its `work/`; nothing outside `outDir` and
 * `cacheDir` is written; the root file system tar (Debian, overlay, units; not the app, added by the slot stage)
 * is reused from the cache only when its input key matches;
 * SHA256SUMS and build-manifest.json hold no path, host name or wall-clock time, so two builds compare.
 */
export interface BuildOptions {
  readonly target: ImageTarget;
  readonly repoRoot: string;
  readonly outDir: string;
  /** Shared between builds: the .deb cache and the root file system tars, keyed by inputs. */
  readonly cacheDir: string;
  /** false: rebuild the root file system even if the cache has it (the reproducibility check). */
  readonly useCache: boolean;
  readonly run: StageCommand;
  readonly progress: (e: ProgressEvent) => void;
  readonly now: () => number;
  readonly toolVersions: () => Promise<string>;
}

export type ProgressEvent =
  | { kind: 'start'; index: number; total: number; stage: string; what: string }
  | { kind: 'done'; index: number; total: number; stage: string; ms: number; cached: boolean; note?: string }
  | { kind: 'heartbeat'; stage: string; line: string };

export interface BuildResult {
  readonly dir: string;
  readonly workDir: string;
  readonly outputs: Readonly<Record<string, string>>;
  readonly rootfsKey: string;
}

const STAGES = [
  ['fetch', 'locked .debs into the cache (sha256-checked)'],
  ['app', 'Outpost app: compile, npm ci --omit=dev'],
  ['rootfs', 'root file system (mmdebstrap from the local repository)'],
  ['slot', 'read-only slot image (squashfs) with the app'],
  ['disk', 'partition images and GPT disk'],
  ['bundle', 'OTA bundle (RAUC plain)'],
  ['sbom', 'SBOM (CycloneDX: Debian and npm packages)'],
  ['compress', 'compressed disk image (zstd)'],
  ['checksums', 'build manifest and SHA256SUMS'],
] as const;

export function outputNames(t: ImageTarget): { disk: string; bundle: string; sbom: string } {
  const base = `${t.vars['IMAGE_NAME']}-${t.name}-${t.vars['IMAGE_VERSION']}`;
  return { disk: `${base}.img.zst`, bundle: `${base}.raucb`, sbom: `${base}.sbom.cdx.json` };
}

export async function buildImage(o: BuildOptions): Promise<BuildResult> {
  const t = o.target;
  const dir = path.join(o.outDir, t.name);
  const work = path.join(dir, 'work');
  const logs = path.join(work, 'logs');
  mkdirSync(logs, { recursive: true });
  const scripts = path.join(t.imageDir, 'scripts');
  const env: NodeJS.ProcessEnv = { ...process.env, SOURCE_DATE_EPOCH: String(t.sourceDateEpoch), LC_ALL: 'C.UTF-8', TZ: 'UTC' };
  const debCache = path.join(o.cacheDir, `debs-${t.arch}`);
  const names = outputNames(t);
  const inputs: Array<[string, string]> = [];
  let rootfsKey = '';

  const sh = (stage: string, script: string, ...args: string[]) =>
    o.run(stage, 'bash', [path.join(scripts, script), ...args], {
      env,
      logFile: path.join(logs, `${stage}.log`),
      heartbeat: (line) => o.progress({ kind: 'heartbeat', stage, line }),
    });

  const steps: Record<(typeof STAGES)[number][0], () => Promise<{ cached?: boolean; note?: string }>> = {
    fetch: async () => {
      await sh('fetch', 'fetch.sh', t.name, debCache);
      const lock = parseLock(readFileSync(t.lockFile, 'utf8'), path.relative(o.repoRoot, t.lockFile));
      return { note: `${lock.entries.length} packages` };
    },
    app: async () => {
      await sh('app', 'app.sh', t.name, path.join(work, 'app'));
      inputs.push(['app-tree', sha256Tree(path.join(work, 'app'))]);
      return {};
    },
    rootfs: async () => {
      const own = await rootfsInputs(t, o.repoRoot);
      inputs.push(...own);
      rootfsKey = combine(own);
      const cached = path.join(o.cacheDir, 'rootfs', `${t.name}-${rootfsKey.slice(0, 16)}.tar`);
      const tar = path.join(work, 'rootfs.tar');
      rmSync(tar, { force: true });
      if (o.useCache && existsSync(cached)) {
        linkOrCopy(cached, tar);
        return { cached: true, note: `key ${rootfsKey.slice(0, 16)}` };
      }
      await sh('rootfs', 'repo.sh', t.name, debCache, path.join(work, 'repo'));
      await sh('rootfs', 'rootfs.sh', t.name, path.join(work, 'repo'), tar);
      rmSync(path.join(work, 'repo'), { recursive: true, force: true });
      mkdirSync(path.dirname(cached), { recursive: true });
      linkOrCopy(tar, `${cached}.tmp`);
      renameSync(`${cached}.tmp`, cached);
      return { note: `key ${rootfsKey.slice(0, 16)}` };
    },
    slot: async () => {
      await sh('slot', 'slot.sh', t.name, path.join(work, 'rootfs.tar'), path.join(work, 'app'), work);
      return { note: `${mib(path.join(work, 'rootfs.squashfs'))} MiB` };
    },
    disk: async () => {
      await sh('disk', `disk-${t.name}.sh`, work);
      return {};
    },
    bundle: async () => {
      await sh('bundle', 'bundle.sh', t.name, work, path.join(dir, names.bundle));
      return { note: `${mib(path.join(dir, names.bundle))} MiB` };
    },
    sbom: async () => {
      const sbom = buildSbom({ root: path.join(work, 'root'), target: t, appVersion: appVersion(o.repoRoot) });
      writeFileSync(path.join(dir, names.sbom), `${JSON.stringify(sbom, null, 2)}\n`);
      return { note: `${sbom.components.length} components` };
    },
    compress: async () => {
      const out = path.join(dir, names.disk);
      rmSync(out, { force: true });
      await o.run('compress', 'zstd', ['-q', `-${t.vars['ZSTD_LEVEL'] ?? '10'}`, '-T1', '-o', out, path.join(work, 'disk.img')], { env, logFile: path.join(logs, 'compress.log') });
      return { note: `${mib(out)} MiB` };
    },
    checksums: async () => {
      const parts: Record<string, string> = {};
      for (const f of partitionImages(work)) parts[f] = await sha256File(path.join(work, f));
      const manifest = {
        image: t.vars['IMAGE_NAME'],
        version: t.vars['IMAGE_VERSION'],
        target: t.name,
        suite: t.suite,
        arch: t.arch,
        sourceDateEpoch: t.sourceDateEpoch,
        appVersion: appVersion(o.repoRoot),
        inputs: Object.fromEntries(inputs),
        rootfsKey,
        partitions: parts,
        tools: Object.fromEntries((await o.toolVersions()).trim().split('\n').map((l) => { const i = l.indexOf(' '); return [l.slice(0, i), l.slice(i + 1)]; })),
      };
      writeFileSync(path.join(dir, 'build-manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      const files = [names.disk, names.bundle, names.sbom, 'build-manifest.json'].sort();
      const lines = [];
      for (const f of files) lines.push(`${await sha256File(path.join(dir, f))}  ${f}`);
      writeFileSync(path.join(dir, 'SHA256SUMS'), `${lines.join('\n')}\n`);
      return {};
    },
  };

  for (const [i, [stage, what]] of STAGES.entries()) {
    o.progress({ kind: 'start', index: i + 1, total: STAGES.length, stage, what });
    const t0 = o.now();
    const r = await steps[stage]();
    o.progress({ kind: 'done', index: i + 1, total: STAGES.length, stage, ms: o.now() - t0, cached: r.cached === true, ...(r.note ? { note: r.note } : {}) });
  }
  return {
    dir,
    workDir: work,
    rootfsKey,
    outputs: { disk: path.join(dir, names.disk), bundle: path.join(dir, names.bundle), sbom: path.join(dir, names.sbom), sums: path.join(dir, 'SHA256SUMS'), manifest: path.join(dir, 'build-manifest.json'), rawDisk: path.join(work, 'disk.img') },
  };
}

/** The inputs of the root file system stage, hashed: its cache key is combine() of these. */
export async function rootfsInputs(t: ImageTarget, repoRoot: string): Promise<Array<[string, string]>> {
  const scripts = path.join(t.imageDir, 'scripts');
  if (!existsSync(t.lockFile)) {
    throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `no package lock ${path.relative(repoRoot, t.lockFile)}: run image/scripts/lock.sh ${t.name} (docs/image.md, bumping the lock)`);
  }
  const keyring = process.env['OUTPOST_IMAGE_KEYRING'] ?? path.join(t.imageDir, 'keys', 'ca.cert.pem');
  return [
    ['lock', await sha256File(t.lockFile)],
    ['config.env', await sha256File(path.join(t.imageDir, 'config.env'))],
    ['target.env', await sha256File(path.join(t.imageDir, 'targets', `${t.name}.env`))],
    ['overlay-common', sha256Tree(path.join(t.imageDir, 'overlay', 'common'))],
    ['overlay-target', existsSync(path.join(t.imageDir, 'overlay', t.name)) ? sha256Tree(path.join(t.imageDir, 'overlay', t.name)) : 'none'],
    ['scripts', combine(await Promise.all(['lib.sh', 'repo.sh', 'rootfs.sh', 'customize.sh'].map(async (s) => [s, await sha256File(path.join(scripts, s))] as [string, string])))],
    ['outpost.service', await sha256File(path.join(repoRoot, 'services', 'outpost.service'))],
    ['keyring', await sha256File(keyring)],
  ];
}

/** Partition images a build leaves in its work directory (compared by the reproducibility check). */
export function partitionImages(work: string): string[] {
  return ['rootfs.squashfs', 'esp.vfat', 'bootcfg.vfat', 'boot.vfat', 'disk.img'].filter((f) => existsSync(path.join(work, f)));
}

function appVersion(repoRoot: string): string {
  return (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

function mib(file: string): number {
  return Math.round(statSync(file).size / 1024 / 1024);
}

function linkOrCopy(from: string, to: string): void {
  rmSync(to, { force: true });
  try {
    linkSync(from, to);
  } catch {
    copyFileSync(from, to);
  }
}

export { STAGES };
export function assertTool(ok: boolean, tool: string, pkg: string): void {
  if (!ok) throw new OutpostError('OUTPOST_E_IMAGE_TOOL', `${tool} is missing: install the Debian package ${pkg} (npm run setup installs everything)`, { details: { tool, pkg } });
}
