/** Host metrics as the health monitor sees them. */
export interface SystemSnapshot {
  readonly cpuLoadPercent: number;
  readonly memTotalBytes: number;
  readonly memAvailableBytes: number;
  /** Main CPU/SoC temperature, null where the host has no sensor. */
  readonly temperatureC: number | null;
  readonly disks: ReadonlyArray<{ readonly mount: string; readonly sizeBytes: number; readonly usedBytes: number }>;
  readonly uptimeSeconds: number;
}

export interface SystemProbe {
  sample(): Promise<SystemSnapshot>;
}

/**
 * SystemProbe backed by systeminformation, for hosts other than Linux (services/ uses ProcSystemProbe on
 * Linux: systeminformation runs shell commands through execSync on every sample, see bench:probe).
 * Invariant: systeminformation is loaded on the first sample only.
 */
export class SiSystemProbe implements SystemProbe {
  constructor(private readonly mounts: readonly string[] = ['/']) {}

  async sample(): Promise<SystemSnapshot> {
    const si = (await import('systeminformation')).default;
    const [load, mem, temp, fs] = await Promise.all([si.currentLoad(), si.mem(), si.cpuTemperature(), si.fsSize()]);
    const wanted = new Set(this.mounts);
    return {
      cpuLoadPercent: load.currentLoad,
      memTotalBytes: mem.total,
      memAvailableBytes: mem.available,
      temperatureC: typeof temp.main === 'number' && Number.isFinite(temp.main) ? temp.main : null,
      disks: fs.filter((d) => wanted.has(d.mount)).map((d) => ({ mount: d.mount, sizeBytes: d.size, usedBytes: d.used })),
      uptimeSeconds: si.time().uptime,
    };
  }
}
