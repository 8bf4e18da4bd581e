import { OutpostError } from '../../src/errors/outpost-error.js';

/** A parsed SemVer 2.0 version (`1.2.3`, `1.2.3-rc.1`, `1.2.3+build`); build metadata is ignored when comparing. */
export interface SemVer {
  readonly major: bigint;
  readonly minor: bigint;
  readonly patch: bigint;
  readonly pre: readonly (string | bigint)[];
}

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-.]+)?$/;

export function parseSemVer(v: string): SemVer | null {
  const m = SEMVER.exec(v.trim());
  if (!m) return null;
  const pre = m[4] ? m[4].split('.').map((p) => (/^\d+$/.test(p) ? BigInt(p) : p)) : [];
  return { major: BigInt(m[1] ?? '0'), minor: BigInt(m[2] ?? '0'), patch: BigInt(m[3] ?? '0'), pre };
}

function cmp(a: bigint | string, b: bigint | string): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'bigint') return -1;
  if (typeof b === 'bigint') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SemVer precedence: negative when a < b, 0 when equal, positive when a > b. */
export function compareSemVer(a: SemVer, b: SemVer): number {
  for (const k of ['major', 'minor', 'patch'] as const) {
    const c = cmp(a[k], b[k]);
    if (c !== 0) return c;
  }
  if (a.pre.length === 0 || b.pre.length === 0) return b.pre.length - a.pre.length;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    const c = cmp(x, y);
    if (c !== 0) return c;
  }
  return 0;
}

/** Compares two version strings; throws OUTPOST_E_OTA_DOWNGRADE naming the one that is not SemVer. */
export function compareVersions(a: string, b: string): number {
  const pa = parseSemVer(a);
  const pb = parseSemVer(b);
  if (!pa || !pb) {
    throw new OutpostError('OUTPOST_E_OTA_DOWNGRADE', `cannot compare versions: "${!pa ? a : b}" is not a SemVer version (MAJOR.MINOR.PATCH[-pre])`, {
      details: { a, b },
    });
  }
  return compareSemVer(pa, pb);
}
