import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** The image inputs of one target: image/config.env merged with image/targets/<target>.env. */
export interface ImageTarget {
  readonly name: string;
  readonly imageDir: string;
  /** Every KEY=value of config.env then the target file (the target wins). */
  readonly vars: Readonly<Record<string, string>>;
  readonly suite: string;
  readonly arch: string;
  readonly sourceDateEpoch: number;
  readonly lockFile: string;
}

const REQUIRED = ['SUITE', 'SOURCE_DATE_EPOCH', 'IMAGE_NAME', 'IMAGE_VERSION', 'ARCH', 'PACKAGES', 'ROOT_MIB', 'DATA_MIB', 'DISK_GUID', 'COMPATIBLE'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses KEY=value lines (`#` comments, blank lines); anything else is an error naming file and line. */
export function parseEnvFile(text: string, file: string): Record<string, string> {
  const out: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Z][A-Z0-9_]*)=(\S*)$/.exec(line);
    if (m === null) {
      throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `${file}:${i + 1}: expected KEY=value without spaces or quotes`, { details: { file, line: i + 1 } });
    }
    out[m[1] as string] = m[2] as string;
  });
  return out;
}

export function listTargets(imageDir: string): string[] {
  return readdirSync(path.join(imageDir, 'targets'))
    .filter((f) => f.endsWith('.env'))
    .map((f) => f.slice(0, -'.env'.length))
    .sort();
}

/** Loads and checks the inputs of `target`. */
export function loadTarget(imageDir: string, target: string): ImageTarget {
  const targets = listTargets(imageDir);
  if (!targets.includes(target)) {
    throw new OutpostError('OUTPOST_E_IMAGE_TARGET', `unknown image target "${target}"; known targets: ${targets.join(', ')}`, { details: { target } });
  }
  const read = (f: string) => parseEnvFile(readFileSync(path.join(imageDir, f), 'utf8'), `image/${f}`);
  const vars = { ...read('config.env'), ...read(`targets/${target}.env`) };
  for (const k of REQUIRED) {
    if (vars[k] === undefined || vars[k] === '') {
      throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `image inputs of ${target}: ${k} is not set (image/config.env or image/targets/${target}.env)`, { details: { key: k } });
    }
  }
  for (const [k, v] of Object.entries(vars)) {
    if (k.endsWith('_GUID') && !GUID.test(v)) throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `image/targets/${target}.env: ${k} is not a lower-case GUID`, { details: { key: k } });
    if (k.endsWith('_MIB') && !/^[1-9][0-9]*$/.test(v)) throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `image/targets/${target}.env: ${k} is not a positive number of MiB`, { details: { key: k } });
  }
  const guids = Object.entries(vars).filter(([k]) => k.endsWith('_GUID')).map(([, v]) => v);
  if (new Set(guids).size !== guids.length) throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `image/targets/${target}.env: two partitions share a GUID`);
  const sde = Number(vars['SOURCE_DATE_EPOCH']);
  if (!Number.isInteger(sde) || sde <= 0) throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', 'image/config.env: SOURCE_DATE_EPOCH is not a positive integer');
  const suite = vars['SUITE'] as string;
  const arch = vars['ARCH'] as string;
  return { name: target, imageDir, vars, suite, arch, sourceDateEpoch: sde, lockFile: path.join(imageDir, 'lock', `${suite}-${arch}.lock`) };
}

export interface LockEntry {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly sha256: string;
  readonly size: number;
  readonly poolFile: string;
}

export interface PackageLock {
  readonly header: Readonly<Record<string, string>>;
  readonly entries: readonly LockEntry[];
}

/** Parses image/lock/<suite>-<arch>.lock (see image/scripts/lock.sh). */
export function parseLock(text: string, file: string): PackageLock {
  const header: Record<string, string> = {};
  const entries: LockEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^#\s*([a-z0-9-]+):\s*(.*)$/.exec(line);
      if (m !== null) header[m[1] as string] = m[2] as string;
      return;
    }
    const f = line.split(/\s+/);
    const [name, version, arch, sha256, size, poolFile] = f;
    if (f.length !== 6 || !/^[0-9a-f]{64}$/.test(sha256 ?? '') || !/^[0-9]+$/.test(size ?? '')) {
      throw new OutpostError('OUTPOST_E_IMAGE_CONFIG', `${file}:${i + 1}: expected "name version arch sha256 size pool-file"`, { details: { file, line: i + 1 } });
    }
    entries.push({ name: name as string, version: version as string, arch: arch as string, sha256: sha256 as string, size: Number(size), poolFile: poolFile as string });
  });
  return { header, entries };
}
