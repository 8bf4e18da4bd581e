import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ProcSystemProbe } from '../src/health/proc-system-probe.js';
import { SiSystemProbe, type SystemProbe } from '../src/health/system-probe.js';

/**
 * `npm run bench:probe`: what one health sample costs the runtime (the health monitor samples every
 * `health.sampleIntervalMs`, 10 s by default). Baseline: systeminformation (SiSystemProbe), which runs
 * shell commands through execSync; against it, ProcSystemProbe reading /proc and /sys directly. Per
 * sample: wall time, the longest event-loop stall while sampling, this process's CPU and its children's
 * CPU (the shells). Same process, same run, alternating rounds.
 */
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 30);
const TICK_MS = 1000 / 100; // USER_HZ on Linux

function childCpuMs(): number {
  // /proc/self/stat fields 16 and 17 (cutime, cstime): CPU of waited-for children, in clock ticks.
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[13]) + Number(f[14])) * TICK_MS;
}

interface Cost {
  wallMs: number;
  maxStallMs: number;
  cpuMs: number;
  childCpuMs: number;
}

async function measure(probe: SystemProbe): Promise<Cost> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const cpu0 = process.cpuUsage();
  const child0 = childCpuMs();
  const t0 = performance.now();
  h.enable();
  for (let i = 0; i < SAMPLES; i++) {
    await probe.sample();
    await new Promise((r) => setTimeout(r, 5));
  }
  h.disable();
  const wall = performance.now() - t0 - SAMPLES * 5;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs: wall / SAMPLES, maxStallMs: h.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000 / SAMPLES, childCpuMs: (childCpuMs() - child0) / SAMPLES };
}

async function main(): Promise<void> {
  const si = new SiSystemProbe(['/']);
  const proc = new ProcSystemProbe(['/']);
  await si.sample();
  await proc.sample(); // warm both (module load, first /proc/stat)
  const rounds: Array<{ si: Cost; proc: Cost }> = [];
  for (let r = 0; r < 3; r++) rounds.push({ si: await measure(si), proc: await measure(proc) });
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const pick = (k: 'si' | 'proc', f: keyof Cost) => med(rounds.map((x) => x[k][f]));
  const fmt = (n: number) => n.toFixed(2).padStart(8);
  console.log(`health sample cost, ${SAMPLES} samples x 3 rounds (median of rounds), per sample:`);
  console.log('                                   wall ms  max stall ms  CPU ms  child CPU ms');
  for (const [k, name] of [['si', 'systeminformation (baseline)'], ['proc', 'ProcSystemProbe']] as const) {
    console.log(`  ${name.padEnd(30)} ${fmt(pick(k, 'wallMs'))} ${fmt(pick(k, 'maxStallMs'))}     ${fmt(pick(k, 'cpuMs'))} ${fmt(pick(k, 'childCpuMs'))}`);
  }
  const ratio = (f: keyof Cost) => (pick('proc', f) / Math.max(pick('si', f), 1e-9)).toFixed(3);
  const total = (k: 'si' | 'proc') => pick(k, 'cpuMs') + pick(k, 'childCpuMs');
  console.log(`ProcSystemProbe / systeminformation: wall ${ratio('wallMs')}x, max event-loop stall ${ratio('maxStallMs')}x, CPU incl. children ${(total('proc') / total('si')).toFixed(3)}x`);
  console.log(`RSS ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB (both probes loaded)`);
}

await main();
