import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { DriverRegistry } from '../../services/driver-registry.js';
import { hashPassword } from '../../src/broker/passwords.js';
import { ConfigValidator } from '../../src/config/load.js';
import { ProcSystemProbe } from '../../src/health/proc-system-probe.js';
import { Runtime, type RuntimeEndpoints } from '../../src/runtime/runtime.js';
import { captureLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';

/**
 * The whole runtime on the four simulated device kinds, with its real embedded broker, HTTP API,
 * system probe and file upstream; a real MQTT client plays the local application.
 */
function config(dataDir: string, passwordHash: string) {
  return new ConfigValidator().validate(
    {
      gateway: { id: 'it-gw', dataDir },
      api: { port: 0 },
      // The application logs in: anonymous clients may only read readings, events and status.
      broker: { port: 0, users: [{ username: 'it-app', passwordHash, publish: ['{prefix}/commands/write/+'], subscribe: ['{prefix}/#', 'site/#'] }] },
      health: { sampleIntervalMs: 1000 },
      devices: [
        {
          id: 'plc1', kind: 'modbus', connection: { type: 'sim', seed: 3 }, pollIntervalMs: 100,
          points: [
            { id: 'plc1.temp', table: 'holding', address: 0, type: 'float32', byteOrder: 'CDAB', sim: { model: 'drift', start: 20, step: 0.5 } },
            { id: 'plc1.distance', table: 'input', address: 0, type: 'uint16', sim: { model: 'sine', min: 100, max: 900, periodMs: 1200 } },
            { id: 'plc1.setpoint', table: 'holding', address: 10, type: 'int16', writable: true, scale: { factor: 0.1 }, sim: { model: 'constant', value: 100 } },
          ],
        },
        { id: 'ua1', kind: 'opcua', connection: { type: 'sim' }, samplingIntervalMs: 100, points: [{ id: 'ua1.p', nodeId: 'ns=1;s=P' }] },
        {
          id: 'gps1', kind: 'serial', connection: { type: 'sim', intervalMs: 100 }, checksum: 'nmea',
          points: [{ id: 'gps1.alt', match: '^\\$GPGGA,', field: 9 }],
        },
        {
          id: 'io', kind: 'gpio', connection: { type: 'sim' }, pollIntervalMs: 200,
          points: [
            { id: 'io.door', pin: 17, direction: 'in', sim: { model: 'toggle', periodMs: 300 } },
            { id: 'io.run', pin: 23, direction: 'out', safeState: false, writable: true },
            { id: 'io.lamp', pin: 24, direction: 'out', safeState: false, writable: true },
          ],
        },
      ],
      rules: [
        {
          id: 'proximity-stop', point: 'plc1.distance', when: 'below', threshold: 300, hysteresis: 100,
          onTrigger: [{ write: { point: 'io.run', value: false } }], onRelease: [{ write: { point: 'io.run', value: true } }],
        },
      ],
      routes: [
        { id: 'telemetry', route: "FROM /readings/* WHERE quality = 'good' INTO $upstream", priority: 5 },
        { id: 'events', route: 'FROM /events/* INTO $upstream', priority: 0 },
        { id: 'doors', route: "FROM /readings/io/* WHERE point = 'io.door' INTO $broker(\"site/doors/{point}\")" },
      ],
    },
    [],
    dataDir,
  );
}

let dir: string;
let passwordHash: string;
let runtime: Runtime;
let endpoints: RuntimeEndpoints;
let client: MqttClient;
const received: Array<{ topic: string; body: any; retain: boolean }> = [];
const logs = captureLogger('info');

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-rt-'));
  passwordHash = await hashPassword('it-secret');
  runtime = new Runtime(config(dir, passwordHash), {
    clock: systemClock,
    logger: logs.logger,
    drivers: new DriverRegistry(),
    systemProbe: new ProcSystemProbe(['/']),
    version: '0.0.0-test',
  });
  endpoints = await runtime.start();
  client = await mqtt.connectAsync(`mqtt://127.0.0.1:${endpoints.broker?.port}`, { protocolVersion: 4, reconnectPeriod: 0, username: 'it-app', password: 'it-secret' });
  client.on('message', (topic, payload, packet) => {
    let body: unknown = null;
    try {
      body = JSON.parse(payload.toString());
    } catch {
      body = payload.toString();
    }
    received.push({ topic, body, retain: packet.retain });
  });
  await client.subscribeAsync(['outpost/#', 'site/#']);
});

afterAll(async () => {
  await client?.endAsync();
  await runtime?.stop();
  await rm(dir, { recursive: true, force: true });
});

const api = (p: string, init?: RequestInit) => fetch(`http://127.0.0.1:${endpoints.api?.port}${p}`, init);
/** A write as `outpost write` sends it: the token of the data directory, JSON content type. */
const write = async (point: string, body: string) =>
  api(`/api/points/${point}/write`, {
    method: 'POST',
    body,
    headers: { authorization: `Bearer ${(await readFile(path.join(dir, 'api-token'), 'utf8')).trim()}`, 'content-type': 'application/json' },
  });

describe('runtime on simulated devices', () => {
  it('publishes readings of all four device kinds on the embedded broker', async () => {
    // Wait for every reading looked at below (each device polls on its own schedule), not only for one per device.
    const devices = await waitFor(() => {
      const seen = new Set(received.filter((m) => m.topic.startsWith('outpost/readings/')).map((m) => m.body.device));
      const topics = new Set(received.map((m) => m.topic));
      const looked = ['outpost/readings/plc1/plc1.temp', 'outpost/readings/gps1/gps1.alt', 'outpost/status'].every((t) => topics.has(t));
      return looked && ['plc1', 'ua1', 'gps1', 'io'].every((d) => seen.has(d)) ? seen : null;
    }, 10_000);
    expect(devices.size).toBe(4);
    const r = received.find((m) => m.topic === 'outpost/readings/plc1/plc1.temp')?.body;
    expect(r).toMatchObject({ point: 'plc1.temp', device: 'plc1', quality: 'good', bootId: runtime.bootId, seq: 1 });
    expect(typeof r.value).toBe('number');
    expect(r.value).toBeGreaterThan(10);
    expect(r.sourceTime).toBeGreaterThan(Date.now() - 60_000);
    const alt = received.find((m) => m.topic === 'outpost/readings/gps1/gps1.alt')?.body;
    expect(alt.value).toBeGreaterThan(500);
    expect(received.find((m) => m.topic === 'outpost/status')?.body).toMatchObject({ state: 'online', gateway: 'it-gw' });
  });

  it('numbers the readings of each point 1, 2, 3… without gaps', async () => {
    await waitFor(() => received.filter((m) => m.topic === 'outpost/readings/plc1/plc1.temp').length >= 5, 10_000);
    const seqs = received.filter((m) => m.topic === 'outpost/readings/plc1/plc1.temp' && !m.retain).map((m) => m.body.seq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => seqs[0] + i));
  });

  it('runs the proximity rule locally: the output follows the distance with hysteresis', async () => {
    const events = await waitFor(() => {
      const e = received.filter((m) => m.topic === 'outpost/events/proximity-stop').map((m) => m.body);
      return e.some((x) => x.state === 'triggered') && e.some((x) => x.state === 'released') ? e : null;
    }, 10_000);
    const trig = events.find((e) => e.state === 'triggered');
    expect(trig.value).toBeLessThan(300);
    expect(trig.actions).toEqual([{ point: 'io.run', ok: true }]);
    const rel = events.find((e) => e.state === 'released');
    expect(rel.value).toBeGreaterThan(400);
    const runs = received.filter((m) => m.topic === 'outpost/readings/io/io.run').map((m) => m.body.value);
    expect(runs).toContain(false);
  });

  it('routes matching readings to a custom broker topic', async () => {
    const m = await waitFor(() => received.find((x) => x.topic === 'site/doors/io.door'), 10_000);
    expect(m.body.point).toBe('io.door');
  });

  it('writes through a broker command in engineering units and replies', async () => {
    await client.publishAsync('outpost/commands/write/plc1.setpoint', JSON.stringify({ value: 42.5, id: 'c1', replyTo: 'outpost/replies/it-app/r' }));
    const reply = await waitFor(() => received.find((m) => m.topic === 'outpost/replies/it-app/r' && m.body.id === 'c1'), 5000);
    expect(reply.body).toMatchObject({ ok: true, point: 'plc1.setpoint' });
    const r = await waitFor(async () => {
      const p = (await (await api('/api/points/plc1.setpoint')).json()) as { value: number };
      return Math.abs(p.value - 42.5) < 1e-9 ? p : null;
    }, 5000);
    expect(r.value).toBeCloseTo(42.5, 9);
  });

  it('answers a bad command with an error and never reaches a driver', async () => {
    await client.publishAsync('outpost/commands/write/plc1.temp', JSON.stringify({ value: 1, id: 'c2', replyTo: 'outpost/replies/it-app/r' }));
    await client.publishAsync('outpost/commands/write/io.run', 'not json');
    await client.publishAsync('outpost/commands/write/nope', JSON.stringify({ value: 1, id: 'c3', replyTo: 'outpost/replies/it-app/r' }));
    const ro = await waitFor(() => received.find((m) => m.topic === 'outpost/replies/it-app/r' && m.body.id === 'c2'), 5000);
    expect(ro.body).toMatchObject({ ok: false, error: { code: 'OUTPOST_E_RUNTIME_NOT_WRITABLE' } });
    const bad = await waitFor(() => received.find((m) => m.topic === 'outpost/commands/result/io.run' && m.body.ok === false), 5000);
    expect(bad.body.error.code).toBe('OUTPOST_E_BROKER_COMMAND');
    const unknown = await waitFor(() => received.find((m) => m.topic === 'outpost/replies/it-app/r' && m.body.id === 'c3'), 5000);
    expect(unknown.body.error.code).toBe('OUTPOST_E_RUNTIME_UNKNOWN_POINT');
  });

  it('keeps gateway topics for the gateway: a client cannot spoof a reading', async () => {
    const denied = async () => {
      const text = await (await api('/metrics')).text();
      const m = /^outpost_broker_denied_publishes_total(?:\{[^}]*\})? (\d+)/m.exec(text);
      if (!m) throw new Error('no outpost_broker_denied_publishes_total in /metrics');
      return Number(m[1]);
    };
    const before = await denied();
    const spoofer = await mqtt.connectAsync(`mqtt://127.0.0.1:${endpoints.broker?.port}`, { protocolVersion: 4, reconnectPeriod: 0 });
    spoofer.on('error', () => undefined);
    // onDenied: ignore (the default) acknowledges the refused publish and drops it: the PUBACK says the broker has handled it.
    await spoofer.publishAsync('outpost/readings/plc1/plc1.temp', JSON.stringify({ point: 'plc1.temp', value: -999 }), { qos: 1 });
    await spoofer.endAsync(true);
    await waitFor(async () => ((await denied()) >= before + 1 ? true : null), 10_000);
    // A reply published after the refusal reaches the subscriber after anything the broker had forwarded before it.
    await client.publishAsync('outpost/commands/write/plc1.temp', JSON.stringify({ value: 1, id: 'after-spoof', replyTo: 'outpost/replies/it-app/r' }));
    await waitFor(() => received.find((m) => m.topic === 'outpost/replies/it-app/r' && m.body.id === 'after-spoof'), 10_000);
    expect(received.some((m) => m.body?.value === -999)).toBe(false);
  });

  it('serves /api/points with current values and quality', async () => {
    const res = await api('/api/points');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { points: Array<Record<string, unknown>> };
    expect(body.points.map((p) => p['point'])).toEqual(['plc1.temp', 'plc1.distance', 'plc1.setpoint', 'ua1.p', 'gps1.alt', 'io.door', 'io.run', 'io.lamp']);
    for (const p of body.points) expect(p['quality'], String(p['point'])).toBe('good');
    expect((await api('/api/points/nope')).status).toBe(404);
  });

  it('writes through the API with the token of the data directory, and refuses read-only points', async () => {
    const anonymous = await api('/api/points/io.lamp/write', { method: 'POST', body: JSON.stringify({ value: true }), headers: { 'content-type': 'application/json' } });
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { error: { code: string } }).error.code).toBe('OUTPOST_E_API_UNAUTHORIZED');
    const ok = await write('io.lamp', JSON.stringify({ value: true }));
    expect(ok.status).toBe(200);
    const lamp = await waitFor(async () => ((await (await api('/api/points/io.lamp')).json()) as { value: boolean }).value === true, 5000);
    expect(lamp).toBe(true);
    const ro = await write('plc1.temp', JSON.stringify({ value: 1 }));
    expect(ro.status).toBe(409);
    expect(((await ro.json()) as { error: { code: string } }).error.code).toBe('OUTPOST_E_RUNTIME_NOT_WRITABLE');
    const bad = await write('io.lamp', '{');
    expect(bad.status).toBe(400);
    const notANumber = await write('plc1.setpoint', JSON.stringify({ value: 'fast' }));
    expect(notANumber.status).toBe(400);
    expect(((await notANumber.json()) as { error: { code: string } }).error.code).toBe('OUTPOST_E_HAL_VALUE');
    // A numeric string is a number in engineering units, scaled like one (7.5 → register 75).
    expect((await write('plc1.setpoint', JSON.stringify({ value: '7.5' }))).status).toBe(200);
    const sp = await waitFor(async () => {
      const p = (await (await api('/api/points/plc1.setpoint')).json()) as { value: number };
      return Math.abs(p.value - 7.5) < 1e-9 ? p : null;
    }, 5000);
    expect(sp.value).toBeCloseTo(7.5, 9);
  });

  it('reports health and Prometheus metrics with real values', async () => {
    const h = await api('/healthz');
    expect(h.status).toBe(200);
    const health = (await h.json()) as { status: string; checks: Array<{ name: string; ok: boolean }> };
    expect(health.status).toBe('ok');
    expect(health.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['event-loop', 'memory', 'broker', 'upstream', 'device:plc1', 'device:io']));
    const text = await (await api('/metrics')).text();
    const metric = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    expect(metric('outpost_process_resident_memory_bytes')).toBeGreaterThan(10 * 1024 * 1024);
    expect(metric('outpost_system_memory_total_bytes')).toBeGreaterThan(metric('outpost_system_memory_available_bytes'));
    expect(metric('outpost_pipeline_readings_total')).toBeGreaterThan(10);
    expect(text).toMatch(/^outpost_driver_connected\{device="plc1",kind="modbus"\} 1$/m);
    expect(text).toMatch(/^outpost_driver_requests_total\{device="plc1",kind="modbus"\} [1-9]\d*$/m);
    expect(text).toMatch(/^outpost_driver_frames_total\{device="gps1",kind="serial"\} [1-9]\d*$/m);
    expect(text).toMatch(/^outpost_route_messages_total\{route="telemetry",sink="upstream"\} [1-9]\d*$/m);
    expect(text).toMatch(/^# TYPE outpost_pipeline_samples_total counter$/m);
  });

  it('writes routed messages to the file upstream with route priority', async () => {
    const file = path.join(dir, 'upstream', 'outbox.ndjson');
    const lines = await waitFor(async () => {
      const l = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((x) => JSON.parse(x));
      return l.some((x) => x.kind === 'event') ? l : null;
    }, 10_000);
    expect(lines.find((x) => x.kind === 'event')).toMatchObject({ gateway: 'it-gw', route: 'events', priority: 0 });
    expect(lines.find((x) => x.kind === 'reading')).toMatchObject({ route: 'telemetry', priority: 5, body: { quality: 'good' } });
  });

  it('reports a system event upstream (route $system, priority 0) once accepted, and on the local broker', async () => {
    const stopped = new Runtime(config(dir, passwordHash), { clock: systemClock, logger: logs.logger, drivers: new DriverRegistry(), systemProbe: new ProcSystemProbe(['/']), version: '0' });
    await expect(stopped.reportSystemEvent('ota.committed', {})).rejects.toMatchObject({ code: 'OUTPOST_E_UPSTREAM_CLOSED' });
    await runtime.reportSystemEvent('ota.rolled-back', { updateId: 'u1', version: '2.0.0' });
    // Resolved: the record is in the outbox already, no waiting.
    const lines = (await readFile(path.join(dir, 'upstream', 'outbox.ndjson'), 'utf8')).split('\n').filter(Boolean).map((x) => JSON.parse(x));
    expect(lines.find((x) => x.kind === 'system')).toMatchObject({
      gateway: 'it-gw',
      route: '$system',
      priority: 0,
      body: { event: 'ota.rolled-back', bootId: runtime.bootId, data: { updateId: 'u1', version: '2.0.0' } },
    });
    const local = await waitFor(() => received.find((m) => m.topic === 'outpost/system/ota.rolled-back'), 5_000);
    expect(local.body).toMatchObject({ event: 'ota.rolled-back', data: { updateId: 'u1' } });
  });
});
