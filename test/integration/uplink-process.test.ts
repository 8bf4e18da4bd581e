import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadSparkplugCodec } from '../../src/uplink/sparkplug-profile.js';
import { TestBroker } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';
import type { JsonBatch } from '../helpers/uplink.js';

/** The real `outpost run` (built by `npm test` / `npm run build`). */
const OUTPOST = path.resolve('dist/services/outpost.js');
const dirs: string[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'outpost-uplink-proc-'));
  dirs.push(d);
  return d;
}

function configYaml(o: { dataDir: string; upstream: string; api?: number; pollMs?: number }): string {
  return `gateway: { id: gwk, dataDir: ${o.dataDir} }
log: { level: debug }
api: { enabled: ${o.api ? 'true' : 'false'}, port: ${o.api ?? 0} }
broker: { enabled: false }
devices:
  - id: plc
    kind: modbus
    connection: { type: sim, seed: 1 }
    pollIntervalMs: ${o.pollMs ?? 10}
    points:
      - { id: c1, table: holding, address: 0, type: float32, sim: { model: sine, min: 0, max: 1000, periodMs: 1000 } }
      - { id: c2, table: holding, address: 2, type: float32, sim: { model: sine, min: 0, max: 1000, periodMs: 700 } }
      - { id: sp, table: holding, address: 4, type: uint16, writable: true, sim: { model: constant, value: 5 } }
routes:
  - { id: telemetry, route: "FROM /readings/* INTO $upstream", priority: 4 }
upstream:
${o.upstream}
`;
}

function run(configFile: string, env: NodeJS.ProcessEnv = {}): TestProcess {
  if (!existsSync(OUTPOST)) throw new Error(`${OUTPOST} is missing: run npm run build`);
  const p = startProcess(process.execPath, [OUTPOST, 'run', '-c', configFile], { env: { ...process.env, ...env } });
  cleanups.push(async () => void (await p.stop('SIGKILL')));
  return p;
}

async function subscribe(url: string, topic: string): Promise<{ client: MqttClient; messages: Array<{ topic: string; payload: Buffer }> }> {
  const messages: Array<{ topic: string; payload: Buffer }> = [];
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200 });
  client.on('message', (t, payload) => messages.push({ topic: t, payload }));
  await client.subscribeAsync(topic, { qos: 1 });
  cleanups.push(async () => void (await client.endAsync(true)));
  return { client, messages };
}

/** storeSeqs the process logged as fdatasync'ed ('records persisted' lines; one route, so ranges are exact). */
function persistedSeqs(output: string): number[] {
  const seqs: number[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('"records persisted"')) continue;
    const l = JSON.parse(line) as { firstSeq: number; lastSeq: number; count: number };
    expect(l.lastSeq - l.firstSeq + 1).toBe(l.count);
    for (let s = l.firstSeq; s <= l.lastSeq; s++) seqs.push(s);
  }
  return seqs;
}

describe('outpost run with the MQTT uplink', () => {
  it('delivers every reading acknowledged as persisted at least once across 20 kill -9 at random moments', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscribe(broker.url(), 'outpost/gwk/data/#');
    const cfg = path.join(dir, 'outpost.yaml');
    writeFileSync(cfg, configYaml({ dataDir: path.join(dir, 'data'), upstream: `  type: mqtt\n  url: ${broker.url()}\n  reconnect: { initialMs: 100, maxMs: 400 }\n  batch: { maxLatencyMs: 20, maxRecords: 50 }\n  store: { fsyncIntervalMs: 30, minFreeBytes: 0, segmentBytes: 65536, checkpointIntervalMs: 250 }` }));
    const acked = new Set<number>();
    const trials = 20;
    const marker = path.join(dir, 'clock-synchronized');
    const env = { OUTPOST_CLOCK_SYNC_MARKER: marker };
    let torn = 0;
    for (let t = 0; t < trials; t++) {
      const p = run(cfg, env);
      await p.waitForOutput(/"uplink connected"/, 30_000);
      // Kill at a random moment, but only once this run has persisted its share of readings: on a loaded machine a
      // fixed window after connecting may hold too few of them for the count below to mean anything.
      await waitFor(() => persistedSeqs(p.output()).length >= 60, 60_000, 25);
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 900)));
      p.child.kill('SIGKILL');
      await p.exited();
      for (const s of persistedSeqs(p.output())) acked.add(s);
      torn += /torn last record dropped/.test(p.output()) ? 1 : 0;
    }
    // A last clean run drains what the kills left behind; its clock is now known to be synchronised.
    writeFileSync(marker, '');
    const last = run(cfg, env);
    const lastBoot = (await last.waitForOutput(/"bootId":"([^"]+)"[^\n]*"runtime started"/, 30_000))[1];
    await last.waitForOutput(/"uplink connected"/, 30_000);
    const received = () => {
      const all: number[] = [];
      for (const m of sub.messages) all.push(...(JSON.parse(m.payload.toString()) as JsonBatch).records.map((r) => r.storeSeq));
      return all;
    };
    const bodies = () => sub.messages.flatMap((m) => (JSON.parse(m.payload.toString()) as JsonBatch).records.map((r) => r.message.body as { bootId: string; timeUncertain?: boolean }));
    await waitFor(() => {
      const got = new Set(received());
      return [...acked].every((s) => got.has(s)) && bodies().some((b) => b.bootId === lastBoot);
    }, 60_000, 200).catch(() => undefined);
    await last.stop('SIGTERM');
    const all = received();
    const unique = new Set(all);
    const missing = [...acked].filter((s) => !unique.has(s));
    const duplicates = all.length - unique.size;
    // Reported in the test output: how many readings were resent after a kill.
    console.log(`kill -9 trials: ${trials}; acknowledged as persisted: ${acked.size}; received: ${all.length} (${unique.size} distinct); duplicates: ${duplicates} (${((100 * duplicates) / Math.max(1, unique.size)).toFixed(2)} %); torn records dropped on restart: ${torn}; missing: ${missing.length}`);
    expect(acked.size).toBeGreaterThan(trials * 50);
    expect(missing).toEqual([]);
    // Readings taken before the clock was known to be synchronised are marked, not dropped.
    const all2 = bodies();
    expect(all2.filter((b) => b.bootId !== lastBoot).every((b) => b.timeUncertain === true)).toBe(true);
    const lastRun = all2.filter((b) => b.bootId === lastBoot);
    expect(lastRun.length).toBeGreaterThan(0);
    expect(lastRun.every((b) => b.timeUncertain === undefined)).toBe(true);
  }, 300_000);

  it('Sparkplug B: NBIRTH/DBIRTH/DDATA decode, bdSeq in NDEATH when the process is killed, rebirth on NCMD', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const sp = loadSparkplugCodec();
    const sub = await subscribe(broker.url(), 'spBv1.0/plant/#');
    const decoded = () =>
      sub.messages.map((m) => {
        const p = sp.decodePayload(m.payload) as { seq?: unknown; metrics?: Array<{ name: string; value: unknown; type: string; properties?: unknown }> };
        const num = (v: unknown) => (typeof v === 'object' && v !== null && 'toNumber' in v ? (v as { toNumber(): number }).toNumber() : (v as number));
        return { type: m.topic.split('/')[2], topic: m.topic, seq: p.seq === undefined || p.seq === null ? undefined : num(p.seq), metrics: (p.metrics ?? []).map((x) => ({ name: x.name, type: x.type, value: num(x.value) })) };
      });
    const cfg = path.join(dir, 'outpost.yaml');
    writeFileSync(cfg, configYaml({ dataDir: path.join(dir, 'data'), pollMs: 200, upstream: `  type: mqtt\n  url: ${broker.url()}\n  profile: { type: sparkplug, groupId: plant, edgeNodeId: gw-sp }\n  batch: { maxLatencyMs: 20 }\n  store: { fsyncIntervalMs: 20, minFreeBytes: 0 }` }));
    const p = run(cfg);
    await waitFor(() => decoded().some((d) => d.type === 'DDATA'), 30_000);
    const first = decoded();
    const nbirth = first.find((d) => d.type === 'NBIRTH');
    expect(nbirth?.topic).toBe('spBv1.0/plant/NBIRTH/gw-sp');
    expect(nbirth?.seq).toBe(0);
    const bdSeq = nbirth?.metrics.find((m) => m.name === 'bdSeq')?.value;
    expect(typeof bdSeq).toBe('number');
    expect(nbirth?.metrics.map((m) => m.name)).toContain('Node Control/Rebirth');
    const dbirthIdx = first.findIndex((d) => d.type === 'DBIRTH');
    const ddataIdx = first.findIndex((d) => d.type === 'DDATA');
    expect(dbirthIdx).toBeGreaterThan(-1);
    expect(dbirthIdx).toBeLessThan(ddataIdx);
    expect(first[dbirthIdx]?.topic).toBe('spBv1.0/plant/DBIRTH/gw-sp/plc');
    const ddata = first[ddataIdx];
    expect(ddata?.metrics.some((m) => ['c1', 'c2', 'sp'].includes(m.name) && typeof m.value === 'number')).toBe(true);
    // seq increases by one per message after NBIRTH.
    const seqs = first.filter((d) => d.type !== 'NDEATH').map((d) => d.seq);
    expect(seqs.slice(0, 4)).toEqual([0, 1, 2, 3].slice(0, Math.min(4, seqs.length)));

    // Rebirth on request.
    const births = () => decoded().filter((d) => d.type === 'NBIRTH').length;
    await sub.client.publishAsync('spBv1.0/plant/NCMD/gw-sp', Buffer.from(sp.encodePayload({ timestamp: Date.now(), metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }] })), { qos: 1 });
    await waitFor(() => births() >= 2, 10_000);
    // DCMD writes a point.
    await sub.client.publishAsync('spBv1.0/plant/DCMD/gw-sp/plc', Buffer.from(sp.encodePayload({ timestamp: Date.now(), metrics: [{ name: 'sp', type: 'Double', value: 42 }] })), { qos: 1 });
    await waitFor(() => decoded().some((d) => d.type === 'DDATA' && d.metrics.some((m) => m.name === 'sp' && m.value === 42)), 10_000);

    p.child.kill('SIGKILL');
    await p.exited();
    await waitFor(() => decoded().some((d) => d.type === 'NDEATH'), 10_000);
    const ndeath = decoded().find((d) => d.type === 'NDEATH');
    expect(ndeath?.topic).toBe('spBv1.0/plant/NDEATH/gw-sp');
    expect(ndeath?.metrics.find((m) => m.name === 'bdSeq')?.value).toBe(bdSeq);

    // The next session announces the next bdSeq.
    const again = run(cfg);
    await waitFor(() => births() >= 3, 30_000);
    expect(decoded().filter((d) => d.type === 'NBIRTH').at(-1)?.metrics.find((m) => m.name === 'bdSeq')?.value).toBe(((bdSeq as number) + 1) % 256);
    await again.stop('SIGTERM');
  }, 120_000);

  it('on a small tmpfs filled up, the on-full policy applies and Outpost keeps running', async () => {
    const dir = tmp();
    const data = path.join(dir, 'data');
    mkdirSync(data, { recursive: true });
    const api = await freePort();
    const dead = await freePort(); // nothing listens: the uplink stays offline and the store fills
    const cfg = path.join(dir, 'outpost.yaml');
    writeFileSync(cfg, configYaml({ dataDir: data, api, pollMs: 10, upstream: `  type: mqtt\n  url: mqtt://127.0.0.1:${dead}\n  reconnect: { initialMs: 200, maxMs: 1000 }\n  store: { fsyncIntervalMs: 50, minFreeBytes: 131072, segmentBytes: 32768, maxBytes: 16777216, onFull: drop-oldest }` }));
    // A private mount namespace: a 1 MiB tmpfs on the data directory, 640 KiB of it taken by a filler file.
    const script = `mount -t tmpfs -o size=1m outpost-test ${data} && head -c 655360 /dev/zero > ${data}/filler && exec ${process.execPath} ${OUTPOST} run -c ${cfg}`;
    const p = startProcess('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script]);
    cleanups.push(async () => void (await p.stop('SIGKILL')));
    const metric = async (name: string) => {
      const res = await fetch(`http://127.0.0.1:${api}/metrics`).catch(() => null);
      if (!res?.ok) return null;
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(await res.text());
      return m ? Number(m[1]) : 0;
    };
    await waitFor(async () => ((await metric('outpost_upstream_dropped_oldest_total')) ?? 0) > 0, 60_000, 250).catch((e: unknown) => {
      throw new Error(`no drop within 60 s; output:\n${p.output().slice(-3000)}`, { cause: e });
    });
    // Free space: 1 MiB − 640 KiB filler − 128 KiB floor ≈ 256 KiB; the store stays under it, give or take one segment.
    for (let i = 0; i < 8; i++) {
      const bytes = (await metric('outpost_upstream_store_bytes')) ?? 0;
      expect(bytes).toBeLessThanOrEqual(1048576 - 655360 - 131072 + 32768);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(p.child.exitCode).toBeNull();
    expect(await metric('outpost_upstream_write_errors_total')).toBe(0);
    // The cloud link is down, which is reported but not critical: the watchdog must not restart the gateway for it.
    const health = (await (await fetch(`http://127.0.0.1:${api}/healthz`)).json()) as { checks: Array<{ name: string; ok: boolean; critical: boolean }> };
    expect(health.checks.find((c) => c.name === 'upstream')).toEqual({ name: 'upstream', ok: false, critical: false });
    expect(((await metric('outpost_upstream_persisted_total')) ?? 0) > 0).toBe(true);
  }, 120_000);
});
