import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ImageTarget } from './config.js';

/** One installed Debian package, from the root file system's dpkg status file. */
export interface DebPackage {
  readonly name: string;
  readonly version: string;
  readonly arch: string;
  readonly source: string;
}

/** Installed packages in a dpkg status file (only "install ok installed"), sorted by name. */
export function parseDpkgStatus(text: string): DebPackage[] {
  const out: DebPackage[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const f: Record<string, string> = {};
    for (const line of para.split('\n')) {
      const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
      if (m !== null) f[(m[1] as string).toLowerCase()] = m[2] as string;
    }
    if (f['package'] === undefined || f['status'] !== 'install ok installed') continue;
    out.push({ name: f['package'], version: f['version'] ?? '', arch: f['architecture'] ?? '', source: (f['source'] ?? f['package']).split(' ')[0] as string });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Licences named by a Debian copyright file: the `License:` short names of a machine-readable (DEP-5) file,
 * in order of first appearance. Free-form files yield nothing (the SBOM then says "see copyright file").
 */
export function copyrightLicences(text: string): string[] {
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    const m = /^License:\s*(\S.*)$/.exec(line);
    if (m !== null) seen.add((m[1] as string).trim());
  }
  return [...seen];
}

export interface NpmPackage {
  readonly name: string;
  readonly version: string;
  readonly license: string | undefined;
}

/** Every package under node_modules (nested ones included), sorted and de-duplicated by name@version. */
export function listNpmPackages(nodeModules: string): NpmPackage[] {
  const found = new Map<string, NpmPackage>();
  const visit = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.')) continue;
      const abs = path.join(dir, name);
      if (name.startsWith('@')) {
        visit(abs);
        continue;
      }
      const pj = path.join(abs, 'package.json');
      if (existsSync(pj)) {
        const p = JSON.parse(readFileSync(pj, 'utf8')) as { name?: string; version?: string; license?: unknown; licenses?: unknown };
        if (typeof p.name === 'string' && typeof p.version === 'string') {
          const lic = typeof p.license === 'string' ? p.license : typeof (p.license as { type?: unknown } | undefined)?.type === 'string' ? (p.license as { type: string }).type : undefined;
          found.set(`${p.name}@${p.version}`, { name: p.name, version: p.version, license: lic });
        }
      }
      visit(path.join(abs, 'node_modules'));
    }
  };
  visit(nodeModules);
  return [...found.values()].sort((a, b) => (`${a.name}@${a.version}` < `${b.name}@${b.version}` ? -1 : 1));
}

interface Component {
  type: 'library' | 'application' | 'operating-system';
  'bom-ref': string;
  name: string;
  version: string;
  purl?: string;
  licenses?: Array<{ license: { name: string } } | { expression: string }>;
  properties?: Array<{ name: string; value: string }>;
}

export interface Sbom {
  bomFormat: 'CycloneDX';
  specVersion: '1.5';
  serialNumber: string;
  version: 1;
  metadata: { timestamp: string; component: Component; tools: { components: Array<{ type: 'application'; name: string }> } };
  components: Component[];
}

/** CycloneDX 1.5 SBOM of an unpacked root file system: its Debian packages and the app's npm packages. */
export function buildSbom(o: { root: string; target: ImageTarget; appVersion: string }): Sbom {
  const debs = parseDpkgStatus(readFileSync(path.join(o.root, 'var/lib/dpkg/status'), 'utf8'));
  const components: Component[] = [];
  for (const d of debs) {
    const cf = path.join(o.root, 'usr/share/doc', d.name, 'copyright');
    const lic = existsSync(cf) ? copyrightLicences(readFileSync(cf, 'utf8')) : [];
    components.push({
      type: 'library',
      'bom-ref': `deb:${d.name}@${d.version}`,
      name: d.name,
      version: d.version,
      purl: `pkg:deb/debian/${d.name}@${encodeURIComponent(d.version)}?arch=${d.arch}&distro=debian-${o.target.suite}`,
      licenses: lic.length > 0 ? lic.map((name) => ({ license: { name } })) : [{ license: { name: `see /usr/share/doc/${d.name}/copyright` } }],
      properties: [{ name: 'debian:source', value: d.source }],
    });
  }
  for (const p of listNpmPackages(path.join(o.root, 'opt/outpost/node_modules'))) {
    components.push({
      type: 'library',
      'bom-ref': `npm:${p.name}@${p.version}`,
      name: p.name,
      version: p.version,
      purl: `pkg:npm/${p.name.startsWith('@') ? `%40${p.name.slice(1)}` : p.name}@${p.version}`,
      licenses: [p.license !== undefined ? { expression: p.license } : { license: { name: 'unknown (no license field)' } }],
    });
  }
  const name = o.target.vars['IMAGE_NAME'] ?? 'outpost';
  const version = o.target.vars['IMAGE_VERSION'] ?? '0';
  const digest = createHash('sha256').update(JSON.stringify(components)).update(`${name}/${o.target.name}/${version}`).digest('hex');
  // A name-based (v5-style) UUID from the content: same inputs, same serial number.
  const serial = `${digest.slice(0, 8)}-${digest.slice(8, 12)}-5${digest.slice(13, 16)}-${((parseInt(digest.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${digest.slice(18, 20)}-${digest.slice(20, 32)}`;
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${serial}`,
    version: 1,
    metadata: {
      timestamp: new Date(o.target.sourceDateEpoch * 1000).toISOString(),
      component: {
        type: 'operating-system',
        'bom-ref': `image:${name}-${o.target.name}@${version}`,
        name: `${name}-${o.target.name}`,
        version,
        properties: [
          { name: 'outpost:app-version', value: o.appVersion },
          { name: 'debian:suite', value: o.target.suite },
          { name: 'debian:arch', value: o.target.arch },
        ],
      },
      tools: { components: [{ type: 'application', name: 'outpost image build' }] },
    },
    components,
  };
}
