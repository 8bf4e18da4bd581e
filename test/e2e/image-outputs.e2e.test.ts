import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256File } from '../../image/lib/hash.js';
import { E2E_DIR, REPO } from './harness.js';

/** The outputs of a finished build, checked with independent tools: sha256sum, sfdisk, RAUC, unsquashfs. */
const TARGET = process.env['OUTPOST_E2E_TARGET'] ?? 'x86-64';
const dir = path.join(process.env['OUTPOST_E2E_BUILD'] ?? path.join(REPO, '.image-build', 'out'), TARGET);
const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

describe(`image outputs (${TARGET})`, () => {
  const manifest = JSON.parse(readFileSync(path.join(dir, 'build-manifest.json'), 'utf8')) as Record<string, unknown> & { partitions: Record<string, string> };

  it('SHA256SUMS matches the files (sha256sum -c)', () => {
    const r2 = spawnSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: dir, encoding: 'utf8' });
    expect(r2.status, r2.stdout + r2.stderr).toBe(0);
    expect(r2.stdout.trim().split('\n')).toHaveLength(4);
  });

  it('the disk has the documented GPT: fixed disk GUID, labels, and slot A holding the slot image', async () => {
    const work = path.join(dir, 'work');
    const d = JSON.parse(run('sfdisk', ['--json', path.join(work, 'disk.img')]).stdout) as { partitiontable: { label: string; id: string; partitions: Array<{ name: string; start: number; size: number; uuid: string }> } };
    expect(d.partitiontable.label).toBe('gpt');
    const names = d.partitiontable.partitions.map((p) => p.name);
    expect(names).toEqual(TARGET === 'x86-64' ? ['esp', 'rootA', 'rootB', 'data'] : ['bootcfg', 'bootA', 'bootB', 'rootA', 'rootB', 'data']);
    const rootA = d.partitiontable.partitions.find((p) => p.name === 'rootA');
    const sq = readFileSync(path.join(work, 'rootfs.squashfs'));
    const disk = readFileSync(path.join(work, 'disk.img'));
    const slice = disk.subarray((rootA?.start ?? 0) * 512, (rootA?.start ?? 0) * 512 + sq.length);
    expect(createHash('sha256').update(slice).digest('hex')).toBe(manifest.partitions['rootfs.squashfs']);
    expect(await sha256File(path.join(work, 'rootfs.squashfs'))).toBe(manifest.partitions['rootfs.squashfs']);
  });

  it('RAUC accepts the bundle (signature with codeSigning, compatible, version) and it carries the same slot image', () => {
    const bundle = path.join(dir, `outpost-${TARGET}-${String(manifest['version'])}.raucb`);
    const conf = path.join(E2E_DIR, `rauc-${TARGET}.conf`);
    writeFileSync(conf, `[system]\ncompatible=outpost-${TARGET}\nbootloader=noop\n[keyring]\npath=${path.join(REPO, 'image/keys/ca.cert.pem')}\ncheck-purpose=codesign\n`);
    const info = run('rauc', ['-c', conf, 'info', '--output-format=json', bundle]);
    expect(info.status, info.stderr).toBe(0);
    const j = JSON.parse(info.stdout) as { compatible: string; version: string; images: Array<Record<string, { filename: string; checksum: string }>> };
    expect(j.compatible).toBe(`outpost-${TARGET}`);
    expect(j.version).toBe(manifest['version']);
    const rootfs = j.images.map((i) => i['rootfs']).find((x) => x !== undefined);
    expect(rootfs?.checksum).toBe(manifest.partitions['rootfs.squashfs']);
    // A bundle signed by a key outside the keyring is refused.
    const other = path.join(E2E_DIR, 'other-ca.pem');
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${other}.key`, '-out', other, '-days', '2', '-subj', '/CN=other']);
    writeFileSync(conf, `[system]\ncompatible=outpost-${TARGET}\nbootloader=noop\n[keyring]\npath=${other}\ncheck-purpose=codesign\n`);
    expect(run('rauc', ['-c', conf, 'info', bundle]).status).not.toBe(0);
  });

  it("Outpost's own updater (outpost ota info) verifies the bundle against the image's keyring", () => {
    const bundle = path.join(dir, `outpost-${TARGET}-${String(manifest['version'])}.raucb`);
    const cfg = path.join(E2E_DIR, `ota-${TARGET}.yaml`);
    writeFileSync(cfg, [
      'gateway: { dataDir: ./ota-data }',
      'ota:',
      `  compatible: outpost-${TARGET}`,
      `  keyring: ${path.join(REPO, 'image/keys/ca.cert.pem')}`,
      // The slot classes the target's bundle carries (rpi-arm64: rootfs and boot), or `ota info` says install would refuse it.
      TARGET === 'x86-64'
        ? '  slots: [{ bootname: A, device: /dev/null }, { bootname: B, device: /dev/null }]'
        : '  slots: [{ bootname: A, devices: { rootfs: /dev/null, boot: /dev/null } }, { bootname: B, devices: { rootfs: /dev/null, boot: /dev/null } }]',
      `  bootloader: { type: grub, grubenv: ${path.join(E2E_DIR, 'grubenv')} }`,
      '',
    ].join('\n'));
    const r = run('node', [path.join(REPO, 'dist/services/outpost.js'), 'ota', 'info', '--json', '-c', cfg, bundle]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`outpost-${TARGET}`);
    expect(r.stdout).toContain(manifest.partitions['rootfs.squashfs'] as string);
  });

  it('the SBOM lists Debian and npm packages with versions and licences', () => {
    const sbom = JSON.parse(readFileSync(path.join(dir, `outpost-${TARGET}-${String(manifest['version'])}.sbom.cdx.json`), 'utf8')) as { bomFormat: string; components: Array<{ name: string; version: string; purl: string; licenses: unknown[] }> };
    expect(sbom.bomFormat).toBe('CycloneDX');
    const node = sbom.components.find((c) => c.name === 'nodejs');
    expect(node?.version).toMatch(/^20\./);
    expect(JSON.stringify(node?.licenses)).toMatch(/Expat|MIT/);
    const mqtt = sbom.components.find((c) => c.purl.startsWith('pkg:npm/mqtt@'));
    expect(mqtt?.licenses).toEqual([{ expression: 'MIT' }]);
    expect(sbom.components.some((c) => c.purl.startsWith('pkg:npm/vitest@'))).toBe(false); // production dependencies only
  });
});
