import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadTarget } from '../../image/lib/config.js';
import { buildSbom, copyrightLicences, listNpmPackages, parseDpkgStatus } from '../../image/lib/sbom.js';

const IMAGE = path.join(import.meta.dirname, '..', '..', 'image');
const root = mkdtempSync(path.join(tmpdir(), 'outpost-sbom-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const STATUS = `Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.3.dfsg-1

Package: removed-one
Status: deinstall ok config-files
Version: 1.0

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.37-2
`;

function write(rel: string, text: string) {
  mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  writeFileSync(path.join(root, rel), text);
}

describe('image SBOM', () => {
  it('reads installed packages only, sorted, with their source package', () => {
    expect(parseDpkgStatus(STATUS)).toEqual([
      { name: 'bash', version: '5.2.37-2', arch: 'amd64', source: 'bash' },
      { name: 'zlib1g', version: '1:1.3.dfsg-1', arch: 'amd64', source: 'zlib' },
    ]);
  });

  it('takes the licence short names of a machine-readable copyright file', () => {
    expect(copyrightLicences('Format: https://…\n\nFiles: *\nLicense: GPL-3+\n\nFiles: lib/*\nLicense: BSD-3-clause\n text\nLicense: GPL-3+\n')).toEqual(['GPL-3+', 'BSD-3-clause']);
    expect(copyrightLicences('This package was debianized by someone.\n')).toEqual([]);
  });

  it('builds a CycloneDX document with Debian and npm components and a content-derived serial number', () => {
    write('var/lib/dpkg/status', STATUS);
    write('usr/share/doc/bash/copyright', 'Files: *\nLicense: GPL-3+\n');
    write('opt/outpost/node_modules/mqtt/package.json', JSON.stringify({ name: 'mqtt', version: '5.16.0', license: 'MIT' }));
    write('opt/outpost/node_modules/@scope/pkg/package.json', JSON.stringify({ name: '@scope/pkg', version: '1.0.0', license: { type: 'ISC' } }));
    write('opt/outpost/node_modules/mqtt/node_modules/ws/package.json', JSON.stringify({ name: 'ws', version: '8.0.0' }));
    expect(listNpmPackages(path.join(root, 'opt/outpost/node_modules')).map((p) => `${p.name}@${p.version}`)).toEqual(['@scope/pkg@1.0.0', 'mqtt@5.16.0', 'ws@8.0.0']);
    const target = loadTarget(IMAGE, 'x86-64');
    const sbom = buildSbom({ root, target, appVersion: '0.1.0' });
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.metadata.timestamp).toBe(new Date(target.sourceDateEpoch * 1000).toISOString());
    const bash = sbom.components.find((c) => c.name === 'bash');
    expect(bash?.licenses).toEqual([{ license: { name: 'GPL-3+' } }]);
    expect(bash?.purl).toBe('pkg:deb/debian/bash@5.2.37-2?arch=amd64&distro=debian-trixie');
    expect(sbom.components.find((c) => c.name === 'zlib1g')?.purl).toContain('zlib1g@1%3A1.3.dfsg-1');
    expect(sbom.components.find((c) => c.name === '@scope/pkg')?.licenses).toEqual([{ expression: 'ISC' }]);
    expect(sbom.components.find((c) => c.name === 'ws')?.licenses?.[0]).toEqual({ license: { name: 'unknown (no license field)' } });
    expect(buildSbom({ root, target, appVersion: '0.1.0' }).serialNumber).toBe(sbom.serialNumber);
    write('opt/outpost/node_modules/mqtt/package.json', JSON.stringify({ name: 'mqtt', version: '5.16.1', license: 'MIT' }));
    expect(buildSbom({ root, target, appVersion: '0.1.0' }).serialNumber).not.toBe(sbom.serialNumber);
  });
});
