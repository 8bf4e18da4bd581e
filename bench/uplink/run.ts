/**
 * `npm run bench:uplink`: the durable store + MQTT uplink against mosquitto, each figure next to a
 * baseline measured in the same run.
 *  1. Messages/s, one reading per message, fsync on: Outpost (enqueue → fdatasync → QoS 1 → PUBACK → ack)
 *     vs a bare mqtt.js QoS 1 publisher with the same in-flight window. Then readings/s with batching.
 *  2. RSS and CPU of `outpost run` producing ~1,000 readings/s into the uplink, vs the same config with
 *     the file upstream.
 *  3. A 10-minute backlog at 1,000 readings/s (600,000 readings) built while the broker is down: drain
 *     rate once it is back, and disk reclaimed after the drain.
 * Loops are bounded by counts and deadlines. Set BENCH_SCALE=0.1 for a quick run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { systemClock } from '../../hal/clock.js';
import { CommandRegistry } from '../../src/commands/command.js';
import { ConfigValidator } from '../../src/config/load.js';
import type { Message } from '../../src/model/reading.js';
import type { Upstream, UpstreamRecord } from '../../src/upstream/upstream.js';
import { createUplinkFactory } from '../../src/uplink/factory.js';

const SCALE = Number(process.env['BENCH_SCALE'] ?? '1');
const root = mkdtempSync(path.join(tmpdir(), 'outpost-bench-uplink-'));
const children: ChildProcess[] = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`bench: ${what} not reached within ${timeoutMs} ms`);
    await sleep(20);
  }
}

class Broker {
  private child: ChildProcess | null = null;
  constructor(readonly port: number) {}
  async start(): Promise<void> {
    const conf = path.join(root, `mosquitto-${this.port}.conf`);
    writeFileSync(conf, `listener ${this.port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n`);
    this.child = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
    children.push(this.child);
    await until(() => new Promise<boolean>((r) => {
      const c = mqtt.connect(this.url(), { reconnectPeriod: 0, connectTimeout: 500 });
      c.once('connect', () => { c.end(true); r(true); });
      c.once('error', () => { c.end(true); r(false); });
    }), 10_000, 'mosquitto up');
  }
  async stop(): Promise<void> {
    const c = this.child;
    this.child = null;
    if (!c || c.exitCode !== null) return;
    c.kill('SIGTERM');
    await new Promise((r) => c.once('exit', r));
  }
  url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }
}

function reading(n: number): UpstreamRecord {
  const message: Message = { kind: 'reading', source: '/readings/plc/p1', body: { point: `p${n % 10}`, device: 'plc', value: 20 + (n % 1000) / 100, quality: 'good', sourceTime: Date.now(), seq: n, bootId: 'a3f1c2d4-0000-4000-8000-000000000000' } };
  return { route: 'telemetry', priority: 5, ttlSeconds: 86_400, enqueuedAt: Date.now(), message };
}

async function uplink(url: string, dataDir: string, over: Record<string, unknown>): Promise<Upstream> {
  const config = new ConfigValidator().validate({ gateway: { id: 'bench', dataDir }, upstream: { type: 'mqtt', url, reconnect: { initialMs: 100, maxMs: 500 }, ...over } }, ['bench'], dataDir);
  const up = await createUplinkFactory({ version: 'bench' })(config.upstream, { clock: systemClock, logger: pino({ level: 'silent' }), gatewayId: 'bench', dataDir, commands: new CommandRegistry(), bootId: 'bench' });
  await up.start();
  return up;
}

/**
 * Enqueues n readings the way the runtime does (without waiting for each to be persisted), pausing
 * only while more than 4 MiB wait for the disk; resolves once all are persisted.
 */
async function produce(up: Upstream, n: number, chunk = 1000): Promise<void> {
  const chunks: Array<Promise<unknown>> = [];
  for (let i = 0; i < n; i += chunk) {
    while ((up.counters()['store_pending_bytes'] ?? 0) > 4 * 1024 * 1024) await sleep(1);
    const ps: Array<Promise<void>> = [];
    for (let k = i; k < Math.min(n, i + chunk); k++) ps.push(up.enqueue(reading(k)));
    chunks.push(Promise.all(ps));
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(chunks);
}

/** A bare mqtt.js QoS 1 publisher: one JSON-encoded reading per message, `window` messages in flight. */
async function bareBaseline(url: string, n: number, window: number): Promise<number> {
  const c = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  const t0 = performance.now();
  let sent = 0;
  let acked = 0;
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < n && sent - acked < window) {
        const payload = JSON.stringify(reading(sent).message);
        sent++;
        c.publish('bench/bare', payload, { qos: 1 }, () => {
          acked++;
          if (acked === n) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const rate = n / ((performance.now() - t0) / 1000);
  await c.endAsync();
  return rate;
}

async function throughput(broker: Broker): Promise<void> {
  const n = Math.round(20_000 * SCALE);
  const bare: number[] = [];
  const ours: number[] = [];
  const batched: number[] = [];
  for (let round = 0; round < 3; round++) {
    bare.push(await bareBaseline(broker.url(), n, 18));
    for (const [maxRecords, out] of [[1, ours], [500, batched]] as const) {
      const dir = mkdtempSync(path.join(root, 'tp-'));
      const up = await uplink(broker.url(), dir, { batch: { maxRecords, maxLatencyMs: 0 }, inflight: 32, store: { minFreeBytes: 0 } });
      await until(() => up.connected(), 10_000, 'uplink connected');
      const t0 = performance.now();
      await produce(up, n);
      await until(() => (up.counters()['delivered_total'] ?? 0) >= n, 300_000, 'all delivered');
      out.push(n / ((performance.now() - t0) / 1000));
      await up.stop();
    }
  }
  // Median of 3 interleaved rounds: the machine is shared, single runs swing by ±40 %.
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[1] as number;
  console.log(`\n1. Throughput to mosquitto, ${n} readings, QoS 1, fsync on (fsyncIntervalMs 200), median of 3 interleaved rounds`);
  console.log(`   bare mqtt.js publisher (JSON.stringify + publish, 1 reading/message, window 18): ${median(bare).toFixed(0)} msg/s`);
  console.log(`   outpost store+uplink, 1 reading/message:               ${median(ours).toFixed(0)} msg/s   ratio ${(median(ours) / median(bare)).toFixed(2)}`);
  console.log(`   outpost store+uplink, batches of ≤500 readings:        ${median(batched).toFixed(0)} readings/s   ratio ${(median(batched) / median(bare)).toFixed(2)} (readings/s vs bare msg/s)`);
}

function procStats(pid: number): { cpuTicks: number; rssKiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuTicks: Number(f[11]) + Number(f[12]), rssKiB: Number(rss?.[1] ?? 0) };
}

async function metric(api: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
}

async function footprint(broker: Broker): Promise<void> {
  const seconds = Math.max(5, Math.round(20 * SCALE));
  const result: Record<string, { rate: number; cpu: number; rssMiB: number; peakMiB: number }> = {};
  for (const kind of ['file', 'mqtt'] as const) {
    const dir = mkdtempSync(path.join(root, `fp-${kind}-`));
    const api = await freePort();
    const points = Array.from({ length: 10 }, (_, i) => `      - { id: p${i}, table: holding, address: ${i * 2}, type: float32, sim: { model: sine, min: 0, max: 1000, periodMs: ${500 + i * 37} } }`).join('\n');
    const upstream = kind === 'file' ? '  type: file' : `  type: mqtt\n  url: ${broker.url()}\n  store: { minFreeBytes: 0 }`;
    const cfg = path.join(dir, 'outpost.yaml');
    writeFileSync(cfg, `gateway: { id: bench, dataDir: ${dir}/data }\nlog: { level: warn }\napi: { port: ${api} }\nbroker: { enabled: false }\ndevices:\n  - id: plc\n    kind: modbus\n    connection: { type: sim }\n    pollIntervalMs: 10\n    points:\n${points}\nroutes:\n  - { id: telemetry, route: "FROM /readings/* INTO $upstream" }\nupstream:\n${upstream}\n`);
    const child = spawn(process.execPath, [path.resolve('dist/services/outpost.js'), 'run', '-c', cfg], { stdio: 'ignore' });
    children.push(child);
    await until(async () => (await fetch(`http://127.0.0.1:${api}/healthz`).then((r) => r.status).catch(() => 0)) > 0, 30_000, 'outpost api');
    await sleep(3000);
    const r0 = await metric(api, 'outpost_pipeline_readings_total');
    const s0 = procStats(child.pid as number);
    const t0 = performance.now();
    let peak = 0;
    for (let i = 0; i < seconds * 4; i++) {
      await sleep(250);
      peak = Math.max(peak, procStats(child.pid as number).rssKiB);
    }
    const s1 = procStats(child.pid as number);
    const r1 = await metric(api, 'outpost_pipeline_readings_total');
    const dt = (performance.now() - t0) / 1000;
    result[kind] = { rate: (r1 - r0) / dt, cpu: ((s1.cpuTicks - s0.cpuTicks) / 100 / dt) * 100, rssMiB: s1.rssKiB / 1024, peakMiB: peak / 1024 };
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  const f = result['file'] as (typeof result)['file'];
  const m = result['mqtt'] as (typeof result)['mqtt'];
  console.log(`\n2. outpost run at ~1,000 readings/s for ${seconds} s (10 simulated Modbus points every 10 ms)`);
  console.log(`   file upstream (baseline): ${f.rate.toFixed(0)} readings/s, CPU ${f.cpu.toFixed(1)} % of one core, RSS ${f.rssMiB.toFixed(1)} MiB (peak ${f.peakMiB.toFixed(1)})`);
  console.log(`   MQTT uplink + store:      ${m.rate.toFixed(0)} readings/s, CPU ${m.cpu.toFixed(1)} % of one core, RSS ${m.rssMiB.toFixed(1)} MiB (peak ${m.peakMiB.toFixed(1)})`);
  const perK = (x: { cpu: number; rate: number }) => (x.cpu / x.rate) * 1000;
  console.log(`   CPU per 1,000 readings/s: file ${perK(f).toFixed(1)} %, uplink ${perK(m).toFixed(1)} %; ratios uplink/file: CPU per reading ${(perK(m) / perK(f)).toFixed(2)}, RSS ${(m.rssMiB / f.rssMiB).toFixed(2)}`);
}

async function dirBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n += (await stat(path.join(e.parentPath, e.name))).size;
  return n;
}

async function backlog(): Promise<void> {
  const n = Math.round(600_000 * SCALE);
  const port = await freePort();
  const broker = new Broker(port);
  const dir = mkdtempSync(path.join(root, 'backlog-'));
  const up = await uplink(broker.url(), dir, { store: { maxBytes: 512 * 1024 * 1024, segmentBytes: 4 * 1024 * 1024, minFreeBytes: 0 } });
  const t0 = performance.now();
  await produce(up, n);
  const fillS = (performance.now() - t0) / 1000;
  const storeDir = path.join(dir, 'store');
  const before = await dirBytes(storeDir);
  const rssBefore = process.memoryUsage().rss;
  const t1 = performance.now();
  await broker.start();
  await until(() => (up.counters()['delivered_total'] ?? 0) >= n, 600_000, 'backlog drained');
  const drainS = (performance.now() - t1) / 1000;
  await sleep(2500); // two checkpoint/reclaim passes
  const after = await dirBytes(storeDir);
  const c = up.counters();
  console.log(`\n3. Backlog of ${n} readings (10 min at 1,000/s) built with the broker down, then drained`);
  console.log(`   filled in ${fillS.toFixed(1)} s (${(n / fillS).toFixed(0)} readings/s persisted); store on disk ${(before / 1048576).toFixed(1)} MiB`);
  console.log(`   drained in ${drainS.toFixed(1)} s after the broker came back: ${(n / drainS).toFixed(0)} readings/s, ${c['messages_sent_total']} messages, ${((c['bytes_sent_total'] ?? 0) / 1048576).toFixed(1)} MiB sent; drain/fill ratio ${(fillS / drainS).toFixed(2)}`);
  console.log(`   disk after drain: ${(after / 1024).toFixed(1)} KiB (${((100 * (before - after)) / before).toFixed(2)} % reclaimed); bench process RSS ${(rssBefore / 1048576).toFixed(0)} → ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
  await up.stop();

  // The same link capped at 256 KiB/s: a backlog drains at the configured rate, not at link speed.
  const capped = mkdtempSync(path.join(root, 'capped-'));
  const rate = 256 * 1024;
  await broker.stop();
  const up2 = await uplink(broker.url(), capped, { drainRateBytesPerSec: rate, store: { minFreeBytes: 0 } });
  const m = Math.round(20_000 * Math.max(SCALE, 0.25));
  await produce(up2, m);
  await broker.start();
  await until(() => up2.connected(), 10_000, 'capped uplink connected');
  const t2 = performance.now();
  const b0 = up2.counters()['bytes_sent_total'] ?? 0;
  await until(() => (up2.counters()['delivered_total'] ?? 0) >= m, 600_000, 'capped backlog drained');
  const secs = (performance.now() - t2) / 1000;
  const sent = (up2.counters()['bytes_sent_total'] ?? 0) - b0;
  console.log(`   with drainRateBytesPerSec ${rate}: ${m} readings drained in ${secs.toFixed(1)} s = ${(sent / secs / 1024).toFixed(0)} KiB/s (limit ${rate / 1024} KiB/s, one burst of ${rate / 1024} KiB allowed)`);
  await up2.stop();
  await broker.stop();
}

const broker = new Broker(await freePort());
await broker.start();
console.log(`bench:uplink (scale ${SCALE}), mosquitto on ${broker.url()}, node ${process.version}`);
await throughput(broker);
await footprint(broker);
await broker.stop();
await backlog();
console.log(`\nbench process RSS at exit: ${(process.memoryUsage().rss / 1048576).toFixed(0)} MiB`);
process.exit(0);
