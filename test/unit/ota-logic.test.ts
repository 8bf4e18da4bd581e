import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseManifest, renderManifest } from '../../ota/bundle/manifest.js';
import { checkBundlePolicy, evaluateBundlePolicy } from '../../ota/bundle/policy.js';
import { compareVersions } from '../../ota/bundle/version.js';
import { VERITY_BLOCK, VerityVerifier, createHashTree, verityLayout } from '../../ota/bundle/verity.js';
import { PRE_SWITCH, RESTING, TRANSITIONS, nextState, type FlowState } from '../../ota/flow/states.js';

const SHA = 'a'.repeat(64);
const manifest = (extra = '') => `[update]\ncompatible=GW\nversion=1.2.3\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nsha256=${SHA}\nsize=10\nfilename=rootfs.img\n${extra}`;

describe('RAUC manifest', () => {
  it('parses the fields Outpost uses and round-trips through the renderer', () => {
    const m = parseManifest(manifest('\n[meta.outpost]\nsecurity-version=4\n'));
    expect(m).toMatchObject({ compatible: 'GW', version: '1.2.3', format: 'plain', securityVersion: 4n });
    expect(m.images).toEqual([{ slotClass: 'rootfs', filename: 'rootfs.img', sha256: SHA, size: 10 }]);
    expect(parseManifest(renderManifest(m))).toMatchObject({ compatible: 'GW', version: '1.2.3', securityVersion: 4n });
  });

  it.each([
    ['no [update]', '[bundle]\nformat=plain\n', 'no [update]'],
    ['no compatible', '[update]\nversion=1\n[image.rootfs]\nfilename=a\n', 'no compatible'],
    ['a bad sha256', manifest().replace(SHA, 'xyz'), 'sha256'],
    ['a path escaping the bundle', manifest().replace('filename=rootfs.img', 'filename=../etc/passwd'), 'relative'],
    ['a duplicate key', manifest().replace('version=1.2.3', 'version=1\nversion=2'), 'twice'],
    ['a bad security version', manifest('\n[meta.outpost]\nsecurity-version=-1\n'), 'security-version'],
    ['a bad verity size', manifest().replace('format=plain', 'format=verity\nverity-hash=' + SHA + '\nverity-salt=' + SHA + '\nverity-size=100'), 'verity-size'],
  ])('refuses %s', (_n, text, words) => {
    expect(() => parseManifest(text)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_OTA_BUNDLE_MANIFEST', message: expect.stringContaining(words) }));
  });
});

describe('bundle policy', () => {
  const m = parseManifest(manifest('\n[meta.outpost]\nsecurity-version=4\n'));
  const policy = { compatible: 'GW', securityVersion: 3n, slotClasses: ['rootfs'] };
  it('accepts a matching bundle', () => expect(checkBundlePolicy(m, policy)).toHaveLength(1));
  it.each([
    [{ compatible: 'Other' }, 'OUTPOST_E_OTA_INCOMPATIBLE'],
    [{ minVersion: '1.3.0' }, 'OUTPOST_E_OTA_DOWNGRADE'],
    [{ securityVersion: 5n }, 'OUTPOST_E_OTA_DOWNGRADE'],
    [{ expectVersion: '1.2.4' }, 'OUTPOST_E_OTA_DIGEST'],
    [{ slotClasses: ['bootfs'] }, 'OUTPOST_E_OTA_CONFIG'],
  ])('refuses with %o', (over, code) => {
    expect(() => checkBundlePolicy(m, { ...policy, ...over })).toThrow(expect.objectContaining({ code }));
  });
});

describe('bundle policy, every check (outpost ota info)', () => {
  const m = parseManifest(manifest('\n[meta.outpost]\nsecurity-version=4\n'));
  it('reports each check in install order, with every refusal rather than the first', () => {
    const r = evaluateBundlePolicy(m, { compatible: 'Other', minVersion: '2.0.0', securityVersion: 5n, slotClasses: ['rootfs'] });
    expect(r.findings.map((f) => [f.check, f.refusal?.code ?? null])).toEqual([
      ['compatible', 'OUTPOST_E_OTA_INCOMPATIBLE'],
      ['min-version', 'OUTPOST_E_OTA_DOWNGRADE'],
      ['security-version', 'OUTPOST_E_OTA_DOWNGRADE'],
      ['hooks', null],
      ['images', null],
    ]);
    expect(() => checkBundlePolicy(m, { compatible: 'Other', minVersion: '2.0.0', securityVersion: 5n, slotClasses: ['rootfs'] })).toThrow(expect.objectContaining({ code: 'OUTPOST_E_OTA_INCOMPATIBLE' }));
  });

  it('marks what it could not check when the policy lacks the input', () => {
    const r = evaluateBundlePolicy(m, { compatible: 'GW' });
    expect(r.findings.filter((f) => !f.checked).map((f) => f.check)).toEqual(['min-version', 'security-version', 'images']);
    expect(r.findings.every((f) => f.refusal === null)).toBe(true);
    expect(r.images).toHaveLength(1);
  });

  it('refuses a version floor it cannot compare instead of throwing', () => {
    const r = evaluateBundlePolicy(parseManifest(manifest().replace('version=1.2.3', 'version=2024-05')), { compatible: 'GW', minVersion: '1.0.0' });
    expect(r.findings.find((f) => f.check === 'min-version')?.refusal?.code).toBe('OUTPOST_E_OTA_DOWNGRADE');
  });
});

describe('SemVer comparison', () => {
  it.each([
    ['1.2.3', '1.2.3', 0],
    ['1.2.3', '1.10.0', -1],
    ['2.0.0', '2.0.0-rc.1', 1],
    ['2.0.0-rc.2', '2.0.0-rc.10', -1],
    ['2.0.0-alpha', '2.0.0-1', 1],
    ['v3.0.0+build.5', '3.0.0', 0],
  ])('%s vs %s', (a, b, sign) => expect(Math.sign(compareVersions(a, b))).toBe(sign));
  it('names a version that is not SemVer', () => expect(() => compareVersions('2024-05', '1.0.0')).toThrow(/2024-05/));
});

describe('update state table', () => {
  it('is the documented chain, with every state reachable from idle', () => {
    const seen = new Set<FlowState>(['idle']);
    const queue: FlowState[] = ['idle'];
    while (queue.length) {
      for (const to of Object.values(TRANSITIONS[queue.shift() as FlowState])) if (!seen.has(to)) (seen.add(to), queue.push(to));
    }
    expect([...seen].sort()).toEqual(Object.keys(TRANSITIONS).sort());
    expect(nextState('idle', 'request')).toBe('downloading');
    expect(nextState('installing', 'installed')).toBe('reboot-pending');
    expect(nextState('trial-boot', 'healthy')).toBe('committed');
    expect(nextState('reboot-pending', 'booted-other')).toBe('rolled-back');
  });
  it('refuses events a state does not take', () => {
    expect(() => nextState('idle', 'healthy')).toThrow(expect.objectContaining({ code: 'OUTPOST_E_OTA_STATE' }));
    expect(() => nextState('trial-boot', 'cancelled')).toThrow(expect.objectContaining({ code: 'OUTPOST_E_OTA_STATE' }));
  });
  it('lets every pre-switch failure land in a resting state', () => {
    for (const s of PRE_SWITCH) expect(RESTING).toContain(nextState(s, 'failed'));
  });
});

describe('dm-verity hash tree (RAUC layout)', () => {
  it('computes the level layout of cryptsetup for 1, 128, 129 and 16385 blocks', () => {
    expect(verityLayout(1).hashBlocks).toBe(0);
    expect(verityLayout(128)).toMatchObject({ levelBlocks: [1], hashBlocks: 1 });
    expect(verityLayout(129)).toMatchObject({ levelBlocks: [2, 1], levelStart: [1, 0], hashBlocks: 3 });
    expect(verityLayout(16385).levelBlocks).toEqual([129, 2, 1]);
  });

  it('verifies what it created and names the first bad block', async () => {
    const blocks = 300;
    const data = randomBytes(blocks * VERITY_BLOCK);
    const salt = randomBytes(32);
    const { tree, rootHash } = await createHashTree(blocks, salt, async (first, count) => data.subarray(first * VERITY_BLOCK, (first + count) * VERITY_BLOCK));
    const v = new VerityVerifier(tree, blocks, salt, rootHash);
    v.verifyBlocks(0, data);
    const bad = Buffer.from(data.subarray(17 * VERITY_BLOCK, 19 * VERITY_BLOCK));
    bad.writeUInt8((bad.readUInt8(VERITY_BLOCK + 5) ^ 1), VERITY_BLOCK + 5);
    expect(() => v.verifyBlocks(17, bad)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_OTA_BUNDLE_PAYLOAD', details: expect.objectContaining({ block: 18 }) }));
    const t2 = Buffer.from(tree);
    t2.writeUInt8(t2.readUInt8(t2.length - 1) ^ 1, t2.length - 1); // the unused tail of level 0 must stay zero
    expect(() => new VerityVerifier(t2, blocks, salt, rootHash)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_OTA_BUNDLE_PAYLOAD' }));
    expect(() => new VerityVerifier(tree, blocks, randomBytes(32), rootHash)).toThrow(/root hash/);
  });
});
