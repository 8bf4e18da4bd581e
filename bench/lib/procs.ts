import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Small process helpers for benchmarks: start, wait for output, stop, and read CPU/RSS from /proc. */
export interface Proc {
  readonly child: ChildProcess;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  stop(): Promise<void>;
}

export function start(cmd: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    output: () => out,
    waitFor: async (pattern, timeoutMs) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = out.match(pattern);
        if (m) return m;
        if (child.exitCode !== null) throw new Error(`${cmd} exited (${child.exitCode}) before ${pattern}:\n${out.slice(-3000)}`);
        if (Date.now() > deadline) throw new Error(`${cmd}: no ${pattern} within ${timeoutMs} ms:\n${out.slice(-3000)}`);
        await sleep(100);
      }
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) used so far by a process. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100 on Linux)
}

/** Resident set size in MiB. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Samples a process over `ms`: CPU as % of one core, peak and final RSS. */
export async function measure(pid: number, ms: number): Promise<{ cpuPercent: number; rssMiB: number; peakRssMiB: number }> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  let peak = rssMiB(pid);
  const end = t0 + ms;
  while (performance.now() < end) {
    await sleep(Math.min(1000, end - performance.now()));
    peak = Math.max(peak, rssMiB(pid));
  }
  const elapsed = (performance.now() - t0) / 1000;
  return { cpuPercent: ((cpuSeconds(pid) - c0) / elapsed) * 100, rssMiB: rssMiB(pid), peakRssMiB: peak };
}
