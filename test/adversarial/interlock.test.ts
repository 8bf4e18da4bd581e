import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashPassword } from '../../src/broker/passwords.js';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { BIN, Gateway, demoConfig } from './gateway.js';

/**
 * Interlocks against the real `outpost run` process: while proximity-stop is triggered it holds
 * io.machine-run and io.alarm-lamp; manual writes through every path — the HTTP API, the local
 * broker's command topic, the cloud uplink's `points.write` command (a real mosquitto plays the
 * cloud) and the CLI — are refused with OUTPOST_E_RUNTIME_INTERLOCKED naming the rule, and the
 * output keeps the rule's value. A rule with `allowOverride: true` lets them through; after the rule
 * releases, writes work again, and the next trip holds the outputs again.
 */

const HELD = { rule: 'proximity-stop', allowOverride: false };
type Point = { value: unknown; heldBy?: Array<{ rule: string; allowOverride: boolean }> };

async function point(gw: Gateway, id: string): Promise<Point> {
  return (await gw.request('GET', `/api/points/${id}`)).json as Point;
}

/** A client of a broker that collects every message of `topics` (parsed JSON). */
async function listen(url: string, topics: string[], login: { username: string; password: string } | null = null): Promise<{ client: MqttClient; got: Array<{ topic: string; body: any }> }> {
  const client = await mqtt.connectAsync(url, { clientId: `adv-il-${process.pid}-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 500, ...(login ?? {}) });
  const got: Array<{ topic: string; body: any }> = [];
  client.on('message', (topic, payload) => {
    try {
      got.push({ topic, body: JSON.parse(payload.toString()) });
    } catch {
      got.push({ topic, body: payload.toString() });
    }
  });
  await client.subscribeAsync(topics);
  return { client, got };
}

describe('a triggered rule holds its outputs against every write path', () => {
  let dir: string;
  let cloud: TestBroker;
  let gw: Gateway;
  let local: Awaited<ReturnType<typeof listen>>;
  let remote: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-adv-il-'));
    cloud = await new TestBroker({ dir: path.join(dir, 'cloud') }).start();
    remote = await listen(cloud.url(), ['outpost/adv-gw/cmd/res', 'outpost/adv-gw/status']);
    // The distance sweeps over an hour: it starts at 150 mm, so the rule triggers at once and holds for minutes.
    // A local application allowed to send write commands (the broker's users and ACLs: docs/broker.md).
    const hmi = { username: 'hmi', passwordHash: await hashPassword('hmi-password'), publish: ['{prefix}/commands/write/#'] };
    gw = await Gateway.start({ distancePeriodMs: 3_600_000, broker: { users: [hmi] }, extra: { upstream: { type: 'mqtt', url: cloud.url() } } });
    local = await listen(gw.brokerUrl, ['outpost/commands/result/#', 'outpost/replies/hmi/#'], { username: 'hmi', password: 'hmi-password' });
    await waitFor(() => remote.got.some((m) => m.topic === 'outpost/adv-gw/status' && m.body.state === 'online'), 30_000);
    await waitFor(async () => (await point(gw, 'io.machine-run')).value === false && (await point(gw, 'io.alarm-lamp')).value === true, 30_000, 100);
  }, 120_000);

  afterAll(async () => {
    await local?.client.endAsync();
    await remote?.client.endAsync();
    await gw?.stop();
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the rule event names the outputs it holds; /api/points shows the holder', async () => {
    const ev = gw.events.find((e) => e.rule === 'proximity-stop' && e.state === 'triggered');
    // The first trigger may precede the harness's subscription; the point state is authoritative either way.
    if (ev) expect(ev.holds).toEqual(['io.machine-run', 'io.alarm-lamp']);
    expect((await point(gw, 'io.machine-run')).heldBy).toEqual([HELD]);
    const all = (await gw.request('GET', '/api/points')).json as { points: Array<Point & { point: string }> };
    expect(all.points.filter((p) => p.heldBy).map((p) => p.point)).toEqual(['io.machine-run', 'io.alarm-lamp']);
  });

  it('HTTP API: 409 OUTPOST_E_RUNTIME_INTERLOCKED naming the rule; the output keeps its value', async () => {
    for (const [id, value] of [['io.machine-run', true], ['io.alarm-lamp', false]] as const) {
      const r = await gw.write(id, value);
      expect(r.status).toBe(409);
      expect(r.body.error).toMatchObject({ code: 'OUTPOST_E_RUNTIME_INTERLOCKED', details: { point: id, rule: 'proximity-stop' } });
      expect(r.body.error?.message).toContain('proximity-stop');
    }
    expect((await point(gw, 'io.machine-run')).value).toBe(false);
    expect((await point(gw, 'io.alarm-lamp')).value).toBe(true);
  });

  it('local broker command topic: an error reply with the code and the rule', async () => {
    await local.client.publishAsync('outpost/commands/write/io.machine-run', JSON.stringify({ value: true, id: 'l1', replyTo: 'outpost/replies/hmi/il' }));
    await local.client.publishAsync('outpost/commands/write/io.machine-run', 'true');
    const reply = await waitFor(() => local.got.find((m) => m.topic === 'outpost/replies/hmi/il' && m.body.id === 'l1'), 15_000);
    expect(reply.body).toMatchObject({ ok: false, point: 'io.machine-run', error: { code: 'OUTPOST_E_RUNTIME_INTERLOCKED' } });
    expect(reply.body.error.message).toContain('proximity-stop');
    const bare = await waitFor(() => local.got.find((m) => m.topic === 'outpost/commands/result/io.machine-run'), 15_000);
    expect(bare.body.error.code).toBe('OUTPOST_E_RUNTIME_INTERLOCKED');
    expect((await point(gw, 'io.machine-run')).value).toBe(false);
  });

  it('cloud command points.write over the MQTT uplink: an error reply with the code and the rule', async () => {
    await remote.client.publishAsync('outpost/adv-gw/cmd/req', JSON.stringify({ id: 'c1', name: 'points.write', params: { point: 'io.machine-run', value: true } }));
    const reply = await waitFor(() => remote.got.find((m) => m.topic === 'outpost/adv-gw/cmd/res' && m.body.id === 'c1' && m.body.status === 'error'), 20_000);
    expect(reply.body.error).toMatchObject({ code: 'OUTPOST_E_RUNTIME_INTERLOCKED', details: { point: 'io.machine-run', rule: 'proximity-stop' } });
    expect((await point(gw, 'io.machine-run')).value).toBe(false);
  });

  it('`outpost write` (the CLI, with the token from --config): exit 1 and the code', () => {
    const r = spawnSync(process.execPath, [BIN, 'write', 'io.machine-run', 'true', '--config', gw.configFile], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('OUTPOST_E_RUNTIME_INTERLOCKED: point io.machine-run is held by rule proximity-stop');
  });

  it('a point the rule does not hold stays writable through every path', async () => {
    expect((await gw.write('plc1.speed-setpoint', 33)).status).toBe(200);
    await local.client.publishAsync('outpost/commands/write/plc1.speed-setpoint', JSON.stringify({ value: 34, id: 'l2', replyTo: 'outpost/replies/hmi/il' }));
    expect((await waitFor(() => local.got.find((m) => m.topic === 'outpost/replies/hmi/il' && m.body.id === 'l2'), 15_000)).body.ok).toBe(true);
    await remote.client.publishAsync('outpost/adv-gw/cmd/req', JSON.stringify({ id: 'c2', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 35 } }));
    await waitFor(() => remote.got.find((m) => m.topic === 'outpost/adv-gw/cmd/res' && m.body.id === 'c2' && m.body.status === 'ok'), 20_000);
    await waitFor(async () => (await point(gw, 'plc1.speed-setpoint')).value === 35, 15_000, 100);
    expect(await gw.metric('outpost_runtime_writes_interlocked_total')).toBeGreaterThanOrEqual(6);
    expect(await gw.metric('outpost_runtime_writes_api_total')).toBe(1);
    expect(gw.alive()).toBe(true);
    await gw.readingsFlow();
  });
});

describe('allowOverride: true lets manual writes through, logged', () => {
  let gw: Gateway;

  beforeAll(async () => {
    const rule = (demoConfig({ apiPort: 0, brokerPort: 0, dataDir: '/x' })['rules'] as Array<Record<string, unknown>>)[0];
    gw = await Gateway.start({ distancePeriodMs: 3_600_000, extra: { rules: [{ ...rule, allowOverride: true }] } });
    await waitFor(async () => (await point(gw, 'io.machine-run')).heldBy !== undefined && (await point(gw, 'io.alarm-lamp')).value === true, 30_000, 100);
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
  });

  it('writes the held output, shows the holder as overridable and logs the override', async () => {
    expect((await point(gw, 'io.machine-run')).heldBy).toEqual([{ rule: 'proximity-stop', allowOverride: true }]);
    const r = await gw.write('io.machine-run', true);
    expect(r.status).toBe(200);
    await waitFor(async () => (await point(gw, 'io.machine-run')).value === true, 15_000, 100);
    await gw.proc.waitForOutput(/"msg":"write overrode an interlock \(allowOverride\)"/, 15_000);
    expect(await gw.metric('outpost_runtime_writes_overridden_total')).toBe(1);
  });
});

describe('release and re-trip', () => {
  let gw: Gateway;
  // A 30 s sweep: held from the start for ~5 s, released ~21 s, held again ~9 s, and so on.
  beforeAll(async () => {
    gw = await Gateway.start({ distancePeriodMs: 30_000 });
  }, 90_000);

  afterAll(async () => {
    await gw?.stop();
  });

  it('after the rule releases, writes work; when it trips again they are refused again', async () => {
    await waitFor(async () => {
      const p = await point(gw, 'io.machine-run');
      return p.heldBy === undefined && p.value === true;
    }, 60_000, 100);
    const since = Date.now();
    const free = await gw.write('io.alarm-lamp', true);
    expect(free.status).toBe(200);
    expect(free.body).toMatchObject({ ok: true, point: 'io.alarm-lamp', value: true });
    const trip = await waitFor(() => gw.events.find((e) => e.rule === 'proximity-stop' && e.state === 'triggered' && e.at > since), 60_000, 50);
    expect(trip.holds).toEqual(['io.machine-run', 'io.alarm-lamp']);
    const held = await gw.write('io.machine-run', true);
    expect(held.status).toBe(409);
    expect(held.body.error?.details).toMatchObject({ rule: 'proximity-stop' });
    const release = await waitFor(() => gw.events.find((e) => e.rule === 'proximity-stop' && e.state === 'released' && e.at > trip.at), 60_000, 50);
    expect(release.holds).toEqual([]);
    expect((await point(gw, 'io.machine-run')).heldBy).toBeUndefined();
    expect(gw.alive()).toBe(true);
  }, 200_000);
});
