import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { listTargets, loadTarget, parseEnvFile, parseLock } from '../../image/lib/config.js';
import { combine } from '../../image/lib/hash.js';
import { diffSums } from '../../image/lib/repro.js';
import { isOutpostError } from '../../src/errors/outpost-error.js';

const IMAGE = path.join(import.meta.dirname, '..', '..', 'image');

describe('image inputs', () => {
  it('parses KEY=value files and names the file and line of a bad one', () => {
    expect(parseEnvFile('# c\nA=1\n\nB_C=x,y\n', 'f')).toEqual({ A: '1', B_C: 'x,y' });
    try {
      parseEnvFile('A=1\nB = 2\n', 'image/x.env');
      expect.fail('no error');
    } catch (e) {
      expect(isOutpostError(e, 'OUTPOST_E_IMAGE_CONFIG')).toBe(true);
      expect((e as Error).message).toMatch(/image\/x\.env:2/);
    }
  });

  it('loads both committed targets with distinct fixed GUIDs and their locks', () => {
    expect(listTargets(IMAGE)).toEqual(['rpi-arm64', 'x86-64']);
    const x = loadTarget(IMAGE, 'x86-64');
    expect(x.arch).toBe('amd64');
    expect(x.suite).toBe('trixie');
    const lock = parseLock(readFileSync(x.lockFile, 'utf8'), x.lockFile);
    expect(lock.header['packages']).toBe(x.vars['PACKAGES']);
    const names = lock.entries.map((e) => e.name);
    for (const p of ['nodejs', 'systemd', 'linux-image-amd64', 'grub-efi-amd64-bin']) expect(names).toContain(p);
    expect(new Set(names).size).toBe(names.length);
    expect(lock.entries.find((e) => e.name === 'nodejs')?.version).toMatch(/^20\./);
  });

  it('rejects an unknown target naming the known ones', () => {
    expect(() => loadTarget(IMAGE, 'riscv')).toThrow(/known targets: rpi-arm64, x86-64/);
  });

  it('rejects a malformed lock line', () => {
    expect(() => parseLock('# suite: trixie\napt 3.0 amd64 nothex 12 pool/a.deb\n', 'l.lock')).toThrow(/l\.lock:2/);
  });

  it('cache keys change with any input', () => {
    const a = combine([['lock', '1'], ['overlay', '2']]);
    expect(combine([['lock', '1'], ['overlay', '2']])).toBe(a);
    expect(combine([['lock', '1'], ['overlay', '3']])).not.toBe(a);
  });

  it('names the files whose checksums differ between two builds', () => {
    const a = 'aa  disk.img.zst\nbb  x.raucb\ncc  SBOM\n';
    const b = 'aa  disk.img.zst\nbx  x.raucb\ncc  SBOM\ndd  extra\n';
    expect(diffSums(a, a)).toEqual([]);
    expect(diffSums(a, b)).toEqual(['extra', 'x.raucb']);
  });
});
