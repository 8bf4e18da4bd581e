import { readFile, readdir, statfs } from 'node:fs/promises';
import { uptime } from 'node:os';
import path from 'node:path';
import type { SystemProbe, SystemSnapshot } from './system-probe.js';

/** CPU times from the first line of /proc/stat: total and idle (idle + iowait) jiffies. */
function cpuTimes(stat: string): { total: number; idle: number } | null {
  const line = stat.split('\n', 1)[0] ?? '';
  if (!line.startsWith('cpu ')) return null;
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  return { total: f.reduce((a, b) => a + b, 0), idle: (f[3] ?? 0) + (f[4] ?? 0) };
}

function meminfoBytes(text: string, key: string): number | null {
  const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** Zone types that name the main CPU or SoC sensor, in order of preference. */
const CPU_ZONES = [/^x86_pkg_temp$/, /cpu/i, /soc/i, /^acpitz$/];

/**
 * SystemProbe for Linux that reads /proc and /sys with asynchronous file reads and statfs: no child
 * processes. (systeminformation runs `cat /proc/stat`, `date`, `cat /proc/mounts` and more through
 * execSync on every sample, blocking the event loop for ~135 ms per sample on the 2-core build VM:
 * bench:probe.) Invariants: never spawns; the CPU load is the busy share since the previous sample
 * (since boot for the first); a missing sensor or mount yields null or no entry, not an error.
 */
export class ProcSystemProbe implements SystemProbe {
  private last: { total: number; idle: number } | null = null;

  constructor(
    private readonly mounts: readonly string[] = ['/'],
    private readonly roots: { proc: string; sys: string } = { proc: '/proc', sys: '/sys' },
  ) {}

  async sample(): Promise<SystemSnapshot> {
    const [stat, meminfo, temperatureC, disks] = await Promise.all([
      readFile(path.join(this.roots.proc, 'stat'), 'utf8'),
      readFile(path.join(this.roots.proc, 'meminfo'), 'utf8'),
      this.temperature(),
      Promise.all(this.mounts.map((m) => this.disk(m))),
    ]);
    const now = cpuTimes(stat);
    let cpuLoadPercent = 0;
    if (now) {
      const prev = this.last ?? { total: 0, idle: 0 };
      const dt = now.total - prev.total;
      cpuLoadPercent = dt > 0 ? Math.min(100, Math.max(0, (100 * (dt - (now.idle - prev.idle))) / dt)) : 0;
      this.last = now;
    }
    const total = meminfoBytes(meminfo, 'MemTotal') ?? 0;
    return {
      cpuLoadPercent,
      memTotalBytes: total,
      memAvailableBytes: meminfoBytes(meminfo, 'MemAvailable') ?? meminfoBytes(meminfo, 'MemFree') ?? 0,
      temperatureC,
      disks: disks.filter((d): d is NonNullable<typeof d> => d !== null),
      uptimeSeconds: uptime(),
    };
  }

  private async disk(mount: string): Promise<SystemSnapshot['disks'][number] | null> {
    try {
      const s = await statfs(mount);
      return { mount, sizeBytes: s.blocks * s.bsize, usedBytes: (s.blocks - s.bfree) * s.bsize };
    } catch {
      return null;
    }
  }

  private async temperature(): Promise<number | null> {
    const dir = path.join(this.roots.sys, 'class', 'thermal');
    let names: string[];
    try {
      names = (await readdir(dir)).filter((n) => n.startsWith('thermal_zone')).sort();
    } catch {
      return null;
    }
    const zones: Array<{ type: string; milli: number }> = [];
    for (const n of names) {
      try {
        const [type, temp] = await Promise.all([readFile(path.join(dir, n, 'type'), 'utf8'), readFile(path.join(dir, n, 'temp'), 'utf8')]);
        const milli = Number(temp.trim());
        if (Number.isFinite(milli)) zones.push({ type: type.trim(), milli });
      } catch {
        // A zone without a readable sensor (e.g. disabled) is skipped.
      }
    }
    for (const re of CPU_ZONES) {
      const z = zones.find((x) => re.test(x.type));
      if (z) return z.milli / 1000;
    }
    return zones[0] ? zones[0].milli / 1000 : null;
  }
}
