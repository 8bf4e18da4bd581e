import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcSystemProbe } from '../../src/health/proc-system-probe.js';
import { SiSystemProbe } from '../../src/health/system-probe.js';

const dir = mkdtempSync(path.join(tmpdir(), 'outpost-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function fixture(name: string, o: { stat: string; zones?: Array<[string, string]> }): { proc: string; sys: string } {
  const root = path.join(dir, name);
  mkdirSync(path.join(root, 'proc'), { recursive: true });
  writeFileSync(path.join(root, 'proc', 'stat'), o.stat);
  writeFileSync(path.join(root, 'proc', 'meminfo'), 'MemTotal:        1000000 kB\nMemFree:          100000 kB\nMemAvailable:     600000 kB\n');
  (o.zones ?? []).forEach(([type, temp], i) => {
    const z = path.join(root, 'sys', 'class', 'thermal', `thermal_zone${i}`);
    mkdirSync(z, { recursive: true });
    writeFileSync(path.join(z, 'type'), `${type}\n`);
    writeFileSync(path.join(z, 'temp'), `${temp}\n`);
  });
  return { proc: path.join(root, 'proc'), sys: path.join(root, 'sys') };
}

describe('ProcSystemProbe (fixture /proc and /sys)', () => {
  it('computes the CPU load between samples from /proc/stat, memory from /proc/meminfo, the CPU zone temperature', async () => {
    const roots = fixture('a', { stat: 'cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n', zones: [['acpitz', '30000'], ['x86_pkg_temp', '48500']] });
    const probe = new ProcSystemProbe([dir, path.join(dir, 'no-such-mount')], roots);
    const first = await probe.sample();
    expect(first.cpuLoadPercent).toBeCloseTo(20); // since boot: 200 busy of 1000
    expect(first.memTotalBytes).toBe(1000000 * 1024);
    expect(first.memAvailableBytes).toBe(600000 * 1024);
    expect(first.temperatureC).toBe(48.5); // the package sensor wins over acpitz
    expect(first.disks.map((d) => d.mount)).toEqual([dir]); // a missing mount is left out
    expect(first.disks[0]?.sizeBytes).toBeGreaterThan(0);
    // 300 more jiffies, 150 of them idle or iowait: 50 % busy since the previous sample.
    writeFileSync(path.join(roots.proc, 'stat'), 'cpu  200 0 150 800 150 0 0 0 0 0\n');
    expect((await probe.sample()).cpuLoadPercent).toBeCloseTo(50);
  });

  it('reports no temperature where the host has no thermal zone, and 0 % load when no time passed', async () => {
    const roots = fixture('b', { stat: 'cpu  1 1 1 1 0 0 0 0\n' });
    const probe = new ProcSystemProbe(['/'], roots);
    await probe.sample();
    const s = await probe.sample();
    expect(s.temperatureC).toBeNull();
    expect(s.cpuLoadPercent).toBe(0);
  });
});

describe('ProcSystemProbe on this machine', () => {
  it('reads real values: memory as the OS reports it, a plausible load, the root file system, uptime', async () => {
    const probe = new ProcSystemProbe(['/']);
    await probe.sample();
    await new Promise((r) => setTimeout(r, 300));
    const s = await probe.sample();
    expect(s.memTotalBytes).toBe(totalmem());
    expect(s.memAvailableBytes).toBeGreaterThan(0);
    expect(s.memAvailableBytes).toBeLessThanOrEqual(s.memTotalBytes);
    expect(s.cpuLoadPercent).toBeGreaterThanOrEqual(0);
    expect(s.cpuLoadPercent).toBeLessThanOrEqual(100);
    expect(s.disks[0]?.mount).toBe('/');
    expect(s.disks[0]?.usedBytes).toBeLessThanOrEqual(s.disks[0]?.sizeBytes ?? 0);
    expect(s.uptimeSeconds).toBeGreaterThan(0);
  });
});

describe('SiSystemProbe (systeminformation, the fallback off Linux)', () => {
  it('agrees with ProcSystemProbe on memory and the root file system', async () => {
    const [a, b] = await Promise.all([new SiSystemProbe(['/']).sample(), new ProcSystemProbe(['/']).sample()]);
    expect(a.memTotalBytes).toBe(b.memTotalBytes);
    expect(a.disks[0]?.sizeBytes).toBe(b.disks[0]?.sizeBytes);
    expect(Math.abs(a.uptimeSeconds - b.uptimeSeconds)).toBeLessThan(5);
  });
});
