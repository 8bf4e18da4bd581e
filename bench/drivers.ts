/**
 * `npm run bench:drivers`: Modbus acquisition benchmarks against real peers on this machine.
 *  A. Requests per poll cycle for a realistic register map, counted at the pymodbus peer:
 *     Outpost's planner vs contiguous-only merging vs 16-register chunks vs one request per point.
 *  B. 10,000 points at 1 s on one Modbus TCP device: points/s delivered, CPU and RSS of `outpost run`.
 *  C. Side by side with Node-RED 4.1.15 + node-red-contrib-modbus 5.23.3 (installed into .bench/,
 *     not an Outpost dependency): 1,000 registers every 200 ms (BENCH_C_INTERVAL_MS), one MQTT message per value, same peer,
 *     same mosquitto; messages/s delivered, CPU and RSS.
 * Every figure is printed with its ratio to a baseline measured in the same run. Timings on a shared
 * 2-core VM vary by 2×: compare ratios.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { systemClock } from '../hal/clock.js';
import { registerCount } from '../hal/modbus/codec.js';
import { ModbusDriver } from '../hal/modbus/driver.js';
import { ModbusSerialPort, modbusSerialFactory } from '../hal/modbus/modbus-serial-port.js';
import type { ModbusDeviceConfig, ModbusType } from '../hal/modbus/schema.js';
import { ConfigValidator } from '../src/config/load.js';
import { ensureNodeRed, writeNodeRedProject, CONTRIB_MODBUS, NODE_RED } from './lib/node-red.js';
import { freePort, measure, rssMiB, sleep, start, type Proc } from './lib/procs.js';
import { realisticMap, type RawPoint } from './lib/register-map.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PEER = path.join(ROOT, 'test/peers/modbus_peer.py');
const OUTPOST = path.join(ROOT, 'dist/services/outpost.js');
const MEASURE_MS = Number(process.env['BENCH_MEASURE_MS'] ?? 30_000);
const log = (s: string) => process.stdout.write(`${s}\n`);
const fmt = (n: number, d = 1) => n.toFixed(d);

async function startPeer(args: string[]): Promise<{ port: number; proc: Proc; requests(): Promise<number> }> {
  const port = await freePort();
  const proc = start('/usr/bin/python3', [PEER, 'tcp', String(port), ...args]);
  await proc.waitFor(/ready/, 30_000);
  return {
    port,
    proc,
    requests: async () => {
      const before = proc.output().length;
      proc.child.kill('SIGUSR1');
      for (let i = 0; i < 100; i++) {
        const line = proc.output().slice(before).split('\n').find((l) => l.startsWith('{"requests"'));
        if (line) return Object.values((JSON.parse(line) as { requests: Record<string, number> }).requests).reduce((a, b) => a + b, 0);
        await sleep(50);
      }
      throw new Error('peer did not report its request count');
    },
  };
}

function deviceConfig(raw: Record<string, unknown>): ModbusDeviceConfig {
  return new ConfigValidator().validate({ devices: [raw] }, ['bench'], tmpdir()).devices[0] as ModbusDeviceConfig;
}

/** A. Requests per cycle, counted at the peer. */
async function requestsPerCycle(): Promise<void> {
  const points = realisticMap();
  const peer = await startPeer(['--map', 'bench:2000']);
  const logger = pino({ level: 'silent' });
  const factory = await modbusSerialFactory();
  const oneCycle = async (label: string, extra: Record<string, unknown>) => {
    const config = deviceConfig({
      id: 'bench',
      kind: 'modbus',
      connection: { type: 'tcp', host: '127.0.0.1', port: peer.port },
      pollIntervalMs: 3_600_000,
      points: points.map((p) => ({ ...p })),
      ...extra,
    });
    if (config.connection.type === 'sim') throw new Error('unreachable');
    const driver = new ModbusDriver(config, new ModbusSerialPort(config.connection, factory), { clock: systemClock, logger });
    let good = 0;
    let done = false;
    const before = await peer.requests();
    await driver.start({ onSamples: (s) => { good += s.filter((x) => x.quality.status === 'good').length; done = true; } });
    while (!done) await sleep(20);
    await driver.stop();
    const n = (await peer.requests()) - before;
    if (good !== points.length) throw new Error(`${label}: ${good} of ${points.length} points good`);
    return { label, requests: n };
  };
  const perPoint = async () => {
    const port = new ModbusSerialPort({ type: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 1000, retries: 0, inFlight: 1 }, factory);
    await port.connect();
    const before = await peer.requests();
    for (const p of points) await port.read(1, p.table, p.address, registerCount(p.type as ModbusType));
    await port.close();
    return { label: 'one request per point (EdgeX, ThingsBoard < 3.7.9)', requests: (await peer.requests()) - before };
  };
  try {
    const rows = [
      await oneCycle('Outpost planner (maxGap 10, 125 registers)', {}),
      await oneCycle('contiguous merge only (maxGap 0, Neuron-style)', { maxGap: 0 }),
      await oneCycle('contiguous merge, at most 16 registers per request', { maxGap: 0, maxRegistersPerRequest: 16 }),
      await perPoint(),
    ];
    const planner = rows[0]?.requests ?? 1;
    const tables = [...new Set(points.map((p) => p.table))].map((t) => `${points.filter((p) => p.table === t).length} ${t}`).join(', ');
    log(`\nA. Requests per poll cycle, counted at the pymodbus peer: ${points.length} points (${tables}) with gaps`);
    for (const r of rows) log(`   ${r.label.padEnd(62)} ${String(r.requests).padStart(5)} requests   ${fmt(r.requests / planner, 2)}× the planner`);
  } finally {
    await peer.proc.stop();
  }
}

async function waitHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer`);
    await sleep(200);
  }
}

async function metric(api: string, name: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function outpostConfig(dir: string, o: { apiPort: number; brokerPort: number | null; modbusPort: number; points: number; intervalMs?: number }): string {
  const file = path.join(dir, `outpost-${o.points}.yaml`);
  const lines = [
    'gateway: { id: bench, dataDir: ./data }',
    'log: { level: warn }',
    `api: { port: ${o.apiPort} }`,
    o.brokerPort === null ? 'broker: { enabled: false }' : `broker: { port: ${o.brokerPort}, retainReadings: false }`,
    'health: { maxRssMiB: 4000, maxEventLoopLagMs: 10000 }',
    'devices:',
    '  - id: plc',
    '    kind: modbus',
    `    connection: { type: tcp, host: 127.0.0.1, port: ${o.modbusPort} }`,
    `    pollIntervalMs: ${o.intervalMs ?? 1000}`,
    '    points:',
  ];
  for (let i = 0; i < o.points; i++) lines.push(`      - { id: p${i}, table: holding, address: ${i} }`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** RSS of an idle Node.js process, the floor under any Node program. */
async function idleNodeRss(): Promise<number> {
  const p = start(process.execPath, ['-e', 'setInterval(() => {}, 1000); console.log("up")']);
  await p.waitFor(/up/, 10_000);
  await sleep(1500);
  const r = rssMiB(p.child.pid as number);
  await p.stop();
  return r;
}

/** RSS of `outpost run` with no devices (API on, broker off): the runtime's own floor. */
async function idleOutpostRss(dir: string): Promise<number> {
  const apiPort = await freePort();
  const file = path.join(dir, 'outpost-idle.yaml');
  writeFileSync(file, `gateway: { id: bench, dataDir: ./data }\nlog: { level: warn }\napi: { port: ${apiPort} }\nbroker: { enabled: false }\n`);
  const gw = start(process.execPath, [OUTPOST, 'run', '-c', file]);
  try {
    await waitHttp(`http://127.0.0.1:${apiPort}/api/info`, 60_000);
    await sleep(3000);
    return rssMiB(gw.child.pid as number);
  } finally {
    await gw.stop();
  }
}

/** V8 flags compared in B and C: Node's defaults, and a 2 MiB young generation (less GC slack, a bit more CPU). */
const V8_VARIANTS: ReadonlyArray<{ label: string; flags: string[] }> = [
  { label: 'default V8 flags', flags: [] },
  { label: '--max-semi-space-size=2', flags: ['--max-semi-space-size=2'] },
];

/** B. 10,000 points at 1 s on one TCP device. */
async function tenThousand(dir: string, idle: number): Promise<void> {
  const idleOutpost = await idleOutpostRss(dir);
  const peer = await startPeer(['--map', 'bench:10000', '--tick', '250']);
  const secs = MEASURE_MS / 2000;
  log(`\nB. 10,000 holding registers at 1 s on one Modbus TCP device (pymodbus), \`outpost run\`, ${fmt(secs, 0)} s each`);
  try {
    for (const v of V8_VARIANTS) {
      const apiPort = await freePort();
      const gw = start(process.execPath, [...v.flags, OUTPOST, 'run', '-c', outpostConfig(dir, { apiPort, brokerPort: null, modbusPort: peer.port, points: 10_000 })]);
      const api = `http://127.0.0.1:${apiPort}`;
      try {
        await waitHttp(`${api}/api/info`, 60_000);
        await sleep(5000);
        const s0 = await metric(api, 'outpost_pipeline_samples_total');
        const r0 = await peer.requests();
        const m = await measure(gw.child.pid as number, secs * 1000);
        const s1 = await metric(api, 'outpost_pipeline_samples_total');
        const r1 = await peer.requests();
        const pps = (s1 - s0) / secs;
        log(`   ${v.label}:`);
        log(`     points/s delivered ${fmt(pps, 0)} of 10,000 ideal = ${fmt((pps / 10_000) * 100)} % (± one 1 s cycle in the ${fmt(secs, 0)} s window)`);
        log(`     requests/s at the peer ${fmt((r1 - r0) / secs)} (one request per point would be ${fmt(10_000 / ((r1 - r0) / secs), 0)}× more)`);
        log(`     CPU ${fmt(m.cpuPercent)} % of one core; RSS ${fmt(m.rssMiB)} MiB (peak ${fmt(m.peakRssMiB)})`);
        log(`     RSS = ${fmt(m.rssMiB / idleOutpost, 2)}× \`outpost run\` with no devices (${fmt(idleOutpost)} MiB), ${fmt(m.rssMiB / idle, 2)}× an idle Node.js process (${fmt(idle)} MiB)`);
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await peer.proc.stop();
  }
}

async function counter(mqttPort: number): Promise<{ count(prefix: string): number; close(): Promise<void> }> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'bench-counter' });
  const counts = new Map<string, number>();
  client.on('message', (topic) => {
    const prefix = topic.split('/')[0] as string;
    counts.set(prefix, (counts.get(prefix) ?? 0) + 1);
  });
  await client.subscribeAsync(['outpost/readings/#', 'nodered/readings/#'], { qos: 0 });
  return { count: (p) => counts.get(p) ?? 0, close: async () => void (await client.endAsync()) };
}

/** C. Outpost vs Node-RED + node-red-contrib-modbus, same peer, same mosquitto. */
async function versusNodeRed(dir: string): Promise<void> {
  const points = 1000;
  const intervalMs = Number(process.env['BENCH_C_INTERVAL_MS'] ?? 200);
  const peer = await startPeer(['--map', `bench:${points}`, '--tick', String(Math.max(20, Math.round(intervalMs / 2)))]);
  const mqttPort = await freePort();
  const brokerPort = await freePort();
  const apiPort = await freePort();
  // mosquitto is the broker both publish to; Outpost reaches it through a bridge from its embedded broker.
  const mconf = path.join(dir, 'mosquitto.conf');
  writeFileSync(
    mconf,
    [`listener ${mqttPort} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'connection outpost', `address 127.0.0.1:${brokerPort}`, 'topic outpost/readings/# in 0', 'try_private false', 'cleansession true', 'restart_timeout 1', ''].join('\n'),
  );
  const mosq = start('mosquitto', ['-c', mconf]);
  await sleep(500);
  const sub = await counter(mqttPort);
  const results: Array<{ name: string; variant: string; msgs: number; cpu: number; rss: number }> = [];
  const run = async (name: string, variant: string, prefix: string, launch: () => Promise<Proc>) => {
    const first = sub.count(prefix);
    const p = await launch();
    try {
      const deadline = Date.now() + 90_000;
      while (sub.count(prefix) < first + points * 2) {
        if (Date.now() > deadline) throw new Error(`${name}: no messages arrived at mosquitto:\n${p.output().slice(-2000)}`);
        await sleep(200);
      }
      await sleep(5000);
      const c0 = sub.count(prefix);
      const m = await measure(p.child.pid as number, MEASURE_MS);
      results.push({ name, variant, msgs: (sub.count(prefix) - c0) / (MEASURE_MS / 1000), cpu: m.cpuPercent, rss: m.rssMiB });
    } finally {
      await p.stop();
    }
  };
  try {
    const redDir = path.join(ROOT, '.bench', 'node-red');
    const red = ensureNodeRed(redDir, log);
    for (const v of V8_VARIANTS) {
      await run('Outpost (embedded broker, bridged)', v.label, 'outpost', async () => {
        const gw = start(process.execPath, [...v.flags, OUTPOST, 'run', '-c', outpostConfig(dir, { apiPort, brokerPort, modbusPort: peer.port, points, intervalMs })]);
        await waitHttp(`http://127.0.0.1:${apiPort}/api/info`, 60_000).catch(async (e: unknown) => {
          await gw.stop();
          throw e;
        });
        return gw;
      });
      const project = mkdtempSync(path.join(dir, 'nodered-'));
      const settings = writeNodeRedProject(project, { modbusPort: peer.port, mqttPort, blocks: points / 125, rateMs: intervalMs });
      await run(`Node-RED ${NODE_RED.split('@')[1]} + contrib-modbus ${CONTRIB_MODBUS.split('@')[1]}`, v.label, 'nodered', async () => {
        const p = start(process.execPath, [...v.flags, red, '--settings', settings], { cwd: project });
        await p.waitFor(/Started flows/, 90_000).catch(async (e: unknown) => {
          await p.stop();
          throw e;
        });
        return p;
      });
    }
  } finally {
    await sub.close();
    await mosq.stop();
    await peer.proc.stop();
  }
  log(`\nC. ${points} registers every ${intervalMs} ms (ideal ${fmt((points * 1000) / intervalMs, 0)} msgs/s), one MQTT message per value, same pymodbus peer, same mosquitto, ${fmt(MEASURE_MS / 1000, 0)} s each`);
  for (const v of V8_VARIANTS) {
    const [o, n] = results.filter((r) => r.variant === v.label) as [(typeof results)[0], (typeof results)[0]];
    log(`   ${v.label}:`);
    for (const r of [o, n]) log(`     ${r.name.padEnd(52)} ${fmt(r.msgs, 0).padStart(6)} msgs/s   CPU ${fmt(r.cpu).padStart(5)} %   RSS ${fmt(r.rss).padStart(6)} MiB`);
    log(`     Outpost / Node-RED: messages ${fmt(o.msgs / n.msgs, 2)}×, CPU ${fmt(o.cpu / n.cpu, 2)}×, RSS ${fmt(o.rss / n.rss, 2)}×`);
    const met = o.msgs >= 0.98 * n.msgs && o.cpu < 0.5 * n.cpu && o.rss < n.rss;
    log(`     goal (≥ as many messages, < half the CPU, less memory): ${met ? 'met' : 'NOT met'} in this run`);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'outpost-bench-drivers-'));
  const only = process.argv.slice(2);
  const want = (k: string) => only.length === 0 || only.includes(k);
  log(`Outpost driver benchmarks (node ${process.version}); measuring ${MEASURE_MS / 1000} s per run; work dir ${dir}`);
  const idle = await idleNodeRss();
  if (want('A')) await requestsPerCycle();
  if (want('B')) await tenThousand(dir, idle);
  if (want('C')) await versusNodeRed(dir);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
