import { OutpostError } from '../../src/errors/outpost-error.js';

/** One `[image.<class>]` section of a RAUC manifest. */
export interface ManifestImage {
  /** Slot class the image is for (`rootfs`, `bootfs`…). */
  readonly slotClass: string;
  readonly variant?: string;
  readonly filename: string;
  /** Lower-case hex sha256 of the image file. */
  readonly sha256: string;
  readonly size: number;
}

export type BundleFormat = 'plain' | 'verity' | 'crypt';

/** The parts of a RAUC manifest (`manifest.raucm`, INI / GKeyFile syntax) that Outpost uses. */
export interface Manifest {
  readonly compatible: string;
  readonly version: string;
  readonly description?: string;
  readonly build?: string;
  readonly format: BundleFormat;
  /** Present for verity bundles: root hash and salt (hex), hash tree size in bytes. */
  readonly verity?: { readonly hash: string; readonly salt: string; readonly size: number };
  readonly images: readonly ManifestImage[];
  /** `[meta.<label>]` sections (RAUC ≥ 1.8 syntax; RAUC 1.8 itself drops them when it rebuilds the manifest). */
  readonly meta: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** `[meta.outpost] security-version`, 0 when absent. */
  readonly securityVersion: bigint;
  /** Manifest-level or image hooks that RAUC would run; Outpost refuses such bundles. */
  readonly hooks: readonly string[];
}

export type IniGroups = Map<string, Map<string, string>>;

const HEX64 = /^[0-9a-f]{64}$/;

function bad(message: string, details: Record<string, unknown> = {}): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_BUNDLE_MANIFEST', message, { details });
}

/** ASCII whitespace at either end of a line (GKeyFile's g_ascii_isspace; other spaces belong to the value). */
const EDGE_SPACE = /^[ \t\v\f\r]+|[ \t\v\f\r]+$/g;

/** GKeyFile-style INI: `[group]`, `key=value`, `#` comments. Duplicate groups or keys are errors. */
export function parseIni(text: string): IniGroups {
  const groups: IniGroups = new Map();
  let current: Map<string, string> | null = null;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').replace(EDGE_SPACE, '');
    if (line === '' || line.startsWith('#')) continue;
    const g = /^\[([^\]]+)\]$/.exec(line);
    if (g) {
      const name = (g[1] ?? '').trim();
      if (groups.has(name)) throw bad(`manifest line ${i + 1}: group [${name}] appears twice`);
      current = new Map();
      groups.set(name, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq <= 0 || current === null) throw bad(`manifest line ${i + 1}: expected [group] or key=value`, { line: i + 1 });
    const key = line.slice(0, eq).replace(EDGE_SPACE, '');
    if (current.has(key)) throw bad(`manifest line ${i + 1}: key ${key} appears twice in its group`);
    current.set(key, unescapeValue(line.slice(eq + 1).replace(EDGE_SPACE, '')));
  }
  return groups;
}

function unescapeValue(v: string): string {
  return v.replace(/\\([sntr\\])/g, (_m, c: string) => ({ s: ' ', n: '\n', t: '\t', r: '\r', '\\': '\\' })[c] ?? c);
}

function parseSize(v: string | undefined, where: string): number {
  if (v === undefined || !/^\d+$/.test(v)) throw bad(`${where}: size must be a non-negative integer`, { value: v });
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw bad(`${where}: size is too large`, { value: v });
  return n;
}

/** Parses and validates a manifest. Throws OUTPOST_E_OTA_BUNDLE_MANIFEST naming the field at fault. */
export function parseManifest(text: string): Manifest {
  const g = parseIni(text);
  const update = g.get('update');
  if (!update) throw bad('manifest has no [update] group');
  const compatible = update.get('compatible');
  if (!compatible) throw bad('manifest [update] has no compatible');
  const version = update.get('version');
  if (!version) throw bad('manifest [update] has no version');
  const bundle = g.get('bundle');
  const formatRaw = bundle?.get('format') ?? 'plain';
  if (formatRaw !== 'plain' && formatRaw !== 'verity' && formatRaw !== 'crypt') throw bad(`manifest [bundle] format "${formatRaw}" is not plain, verity or crypt`);
  const format: BundleFormat = formatRaw;
  let verity: Manifest['verity'];
  const vh = bundle?.get('verity-hash');
  if (vh !== undefined || bundle?.get('verity-salt') !== undefined || bundle?.get('verity-size') !== undefined) {
    const salt = bundle?.get('verity-salt') ?? '';
    if (!HEX64.test(vh ?? '')) throw bad('manifest [bundle] verity-hash must be 64 lower-case hex digits');
    if (!HEX64.test(salt)) throw bad('manifest [bundle] verity-salt must be 64 lower-case hex digits');
    const size = parseSize(bundle?.get('verity-size'), '[bundle] verity-size');
    if (size === 0 || size % 4096 !== 0) throw bad('manifest [bundle] verity-size must be a positive multiple of 4096', { size });
    verity = { hash: vh ?? '', salt, size };
  }
  const hooks: string[] = [];
  if (g.get('hooks')?.get('filename')) hooks.push('bundle');
  if (g.get('handler')?.get('filename')) hooks.push('handler');
  const images: ManifestImage[] = [];
  const meta: Record<string, Record<string, string>> = {};
  for (const [name, kv] of g) {
    if (name.startsWith('meta.')) {
      // Defined, not assigned: a group [meta.__proto__] is a label like any other, not meta's prototype.
      Object.defineProperty(meta, name.slice(5), { value: Object.fromEntries(kv), enumerable: true, writable: true, configurable: true });
      continue;
    }
    if (!name.startsWith('image.')) continue;
    const [slotClass, variant, ...rest] = name.slice(6).split('.');
    if (!slotClass || rest.length > 0) throw bad(`manifest group [${name}] is not [image.<class>] or [image.<class>.<variant>]`);
    const filename = kv.get('filename');
    if (!filename) throw bad(`manifest [${name}] has no filename`);
    if (filename.startsWith('/') || filename.split('/').includes('..')) throw bad(`manifest [${name}] filename must be relative and stay inside the bundle`, { filename });
    const sha256 = (kv.get('sha256') ?? '').toLowerCase();
    if (!HEX64.test(sha256)) throw bad(`manifest [${name}] has no sha256 (64 hex digits)`);
    const size = parseSize(kv.get('size'), `[${name}]`);
    if (kv.get('hooks')) hooks.push(`${name}: ${kv.get('hooks')}`);
    images.push({ slotClass, ...(variant ? { variant } : {}), filename, sha256, size });
  }
  if (images.length === 0) throw bad('manifest has no [image.<class>] group');
  const sv = meta['outpost']?.['security-version'] ?? '0';
  if (!/^\d{1,19}$/.test(sv)) throw bad('manifest [meta.outpost] security-version must be a non-negative integer', { value: sv });
  const description = update.get('description');
  const build = update.get('build');
  return {
    compatible,
    version,
    ...(description !== undefined ? { description } : {}),
    ...(build !== undefined ? { build } : {}),
    format,
    ...(verity ? { verity } : {}),
    images,
    meta,
    securityVersion: BigInt(sv),
    hooks,
  };
}

function escapeValue(v: string): string {
  if (/[\n\r\v\f]/.test(v)) throw new OutpostError('OUTPOST_E_OTA_BUILD', 'manifest values cannot contain line breaks', { details: { value: v } });
  // Spaces and tabs at either end would be trimmed by a reader: escape them (\s, \t) as GKeyFile does at the start.
  const edge = (ws: string) => ws.replace(/ /g, '\\s').replace(/\t/g, '\\t');
  return v.replace(/\\/g, '\\\\').replace(/^[ \t]+/, edge).replace(/[ \t]+$/, edge);
}

/** Renders a manifest in RAUC's own layout ([update], [bundle], [image.*], [meta.*]). */
export function renderManifest(m: Omit<Manifest, 'hooks' | 'securityVersion'> & { securityVersion?: bigint }): string {
  const out: string[] = ['[update]', `compatible=${escapeValue(m.compatible)}`, `version=${escapeValue(m.version)}`];
  if (m.description !== undefined) out.push(`description=${escapeValue(m.description)}`);
  if (m.build !== undefined) out.push(`build=${escapeValue(m.build)}`);
  out.push('', '[bundle]', `format=${m.format}`);
  if (m.verity) out.push(`verity-hash=${m.verity.hash}`, `verity-salt=${m.verity.salt}`, `verity-size=${m.verity.size}`);
  for (const img of m.images) {
    out.push('', `[image.${img.slotClass}${img.variant ? `.${img.variant}` : ''}]`, `sha256=${img.sha256}`, `size=${img.size}`, `filename=${escapeValue(img.filename)}`);
  }
  const meta: Record<string, Readonly<Record<string, string>>> = { ...m.meta };
  if (m.securityVersion !== undefined && m.securityVersion > 0n) meta['outpost'] = { ...(meta['outpost'] ?? {}), 'security-version': m.securityVersion.toString() };
  for (const [label, kv] of Object.entries(meta)) {
    out.push('', `[meta.${label}]`);
    for (const [k, v] of Object.entries(kv)) out.push(`${k}=${escapeValue(v)}`);
  }
  return `${out.join('\n')}\n`;
}
