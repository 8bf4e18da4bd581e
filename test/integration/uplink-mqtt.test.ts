import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Upstream } from '../../src/upstream/upstream.js';
import { captureLogger, silentLogger } from '../helpers/logger.js';
import { makeTestPki, TestBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { buildUplink, readingRecord, type JsonBatch } from '../helpers/uplink.js';

const dirs: string[] = [];
const cleanups: Array<() => Promise<void>> = [];
function tmp(prefix = 'outpost-uplink-'): string {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function subscriber(url: string, topics: string[], opts: mqtt.IClientOptions = {}): Promise<{ client: MqttClient; messages: Array<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }> }> {
  const messages: Array<{ topic: string; payload: Buffer; packet: mqtt.IPublishPacket }> = [];
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200, ...opts });
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload, packet }));
  await client.subscribeAsync(topics, { qos: 1 });
  cleanups.push(async () => void (await client.endAsync(true)));
  return { client, messages };
}

async function started(uplink: Upstream): Promise<Upstream> {
  await uplink.start();
  cleanups.push(() => uplink.stop());
  return uplink;
}

/** storeSeqs received per route, in arrival order (duplicates kept). */
function byRoute(messages: Array<{ payload: Buffer }>): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const msg of messages) {
    const b = JSON.parse(msg.payload.toString()) as JsonBatch;
    m.set(b.route, [...(m.get(b.route) ?? []), ...b.records.map((r) => r.storeSeq)]);
  }
  return m;
}

describe('MQTT uplink against mosquitto', () => {
  it('delivers 10,000 readings produced while the broker was down, in order per (route, priority)', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker'), persistence: true }).start();
    cleanups.push(() => broker.stop());
    // A persistent subscriber session: messages published after the restart wait for it in the broker.
    const sub = await subscriber(broker.url(), ['outpost/gw1/data/#'], { clientId: 'checker', clean: false, protocolVersion: 4 });
    const { uplink } = await buildUplink(
      { type: 'mqtt', url: broker.url(), reconnect: { initialMs: 100, maxMs: 1000 }, batch: { maxLatencyMs: 20 }, store: { fsyncIntervalMs: 20 } },
      { dataDir: path.join(dir, 'data'), logger: silentLogger() },
    );
    await started(uplink);
    await waitFor(() => uplink.connected(), 10_000);
    await Promise.all(Array.from({ length: 500 }, (_, i) => uplink.enqueue(readingRecord(i, 'telemetry', 6))));
    await waitFor(() => (byRoute(sub.messages).get('telemetry')?.length ?? 0) >= 500, 20_000);

    await broker.stop();
    const produced = { alarms: 0, telemetry: 0 };
    const accepted: Promise<void>[] = [];
    for (let i = 0; i < 10_000; i++) {
      const alarm = i % 10 === 0;
      accepted.push(uplink.enqueue(readingRecord(i, alarm ? 'alarms' : 'telemetry', alarm ? 1 : 6)));
      produced[alarm ? 'alarms' : 'telemetry']++;
    }
    await Promise.all(accepted);
    expect(uplink.connected()).toBe(false);
    await broker.start();

    await waitFor(() => {
      const r = byRoute(sub.messages);
      return new Set(r.get('alarms')).size >= 1000 && new Set(r.get('telemetry')).size >= 9500;
    }, 60_000, 100);
    const r = byRoute(sub.messages);
    for (const [route, seqs] of r) {
      // First occurrences are strictly increasing: duplicates (resent after the outage) never reorder.
      const seen = new Set<number>();
      const firsts = seqs.filter((s) => (seen.has(s) ? false : (seen.add(s), true)));
      expect(firsts, route).toEqual([...firsts].sort((a, b) => a - b));
    }
    expect(new Set(r.get('alarms')).size).toBe(1000);
    expect(new Set(r.get('telemetry')).size).toBe(9500);
    await waitFor(() => uplink.counters()['store_records'] === 0, 10_000);
    const c = uplink.counters();
    expect(c['route_telemetry_bytes_sent_total']).toBeGreaterThan(0);
    expect(c['route_alarms_bytes_sent_total']).toBeGreaterThan(0);
    expect(c['disconnects_total']).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it('connects with mTLS to a broker that requires a client certificate, and verifies the server', async () => {
    const dir = tmp();
    const pki = makeTestPki(path.join(dir, 'pki'));
    const broker = await new TestBroker({ dir: path.join(dir, 'broker'), tls: { ca: pki.ca, cert: pki.serverCert, key: pki.serverKey, requireCertificate: true } }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/#'], { ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
    const { uplink } = await buildUplink(
      { type: 'mqtt', url: broker.url(), tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey }, reconnect: { initialMs: 100, maxMs: 500 }, store: { fsyncIntervalMs: 10 } },
      { dataDir: path.join(dir, 'data'), logger: silentLogger() },
    );
    await started(uplink);
    await uplink.enqueue(readingRecord(1, 'telemetry', 5));
    await waitFor(() => sub.messages.some((m) => m.topic === 'outpost/gw1/data/telemetry'), 15_000);

    // Without a client certificate the broker refuses; with a server signed by another CA the uplink refuses.
    for (const tls of [{ ca: pki.ca }, { ca: pki.otherCa, cert: pki.clientCert, key: pki.clientKey }]) {
      const { uplink: bad } = await buildUplink(
        { type: 'mqtt', url: broker.url(), tls, reconnect: { initialMs: 100, maxMs: 300 }, store: { fsyncIntervalMs: 10 } },
        { dataDir: path.join(tmp(), 'data'), logger: silentLogger() },
      );
      await started(bad);
      await bad.enqueue(readingRecord(2, 'telemetry', 5));
      await waitFor(() => (bad.counters()['connect_errors_total'] ?? 0) >= 2, 15_000);
      expect(bad.connected()).toBe(false);
      expect(bad.counters()['store_records']).toBe(1);
    }
  }, 90_000);

  it('authenticates with a username and a password file', async () => {
    const dir = tmp();
    const pw = path.join(dir, 'passwd');
    writeFileSync(pw, '');
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync('mosquitto_passwd', ['-b', pw, 'gw1', 's3cret']).status).toBe(0);
    const broker = await new TestBroker({ dir: path.join(dir, 'broker'), passwordFile: pw }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/#'], { username: 'gw1', password: 's3cret' });
    writeFileSync(path.join(dir, 'secret'), 's3cret\n');
    const { uplink } = await buildUplink(
      { type: 'mqtt', url: broker.url(), auth: { username: 'gw1', passwordFile: path.join(dir, 'secret') }, store: { fsyncIntervalMs: 10 } },
      { dataDir: path.join(dir, 'data'), logger: silentLogger() },
    );
    await started(uplink);
    await uplink.enqueue(readingRecord(7, 'telemetry', 5));
    await waitFor(() => sub.messages.some((m) => m.topic === 'outpost/gw1/data/telemetry'), 15_000);
    const status = sub.messages.find((m) => m.topic === 'outpost/gw1/status');
    expect(JSON.parse(status?.payload.toString() ?? '{}')).toMatchObject({ state: 'online', gateway: 'gw1' });
  }, 120_000);

  it('quarantines a refused route and an oversized record without blocking the records behind them', async () => {
    const dir = tmp();
    const acl = path.join(dir, 'acl');
    writeFileSync(acl, 'topic readwrite outpost/gw1/status\ntopic readwrite outpost/gw1/cmd/#\ntopic readwrite outpost/gw1/data/good\ntopic read outpost/#\n');
    const broker = await new TestBroker({ dir: path.join(dir, 'broker'), aclFile: acl }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/data/#']);
    const cap = captureLogger('warn');
    const { uplink } = await buildUplink(
      { type: 'mqtt', url: broker.url(), maxMessageBytes: 4096, batch: { maxLatencyMs: 10 }, store: { fsyncIntervalMs: 10 } },
      { dataDir: path.join(dir, 'data'), logger: cap.logger },
    );
    await started(uplink);
    await waitFor(() => uplink.connected(), 10_000);
    const big = readingRecord(1_000_000, 'good', 5);
    const bigMsg = { ...big, message: { ...big.message, body: { ...big.message.body, value: 'x'.repeat(10_000) } } } as typeof big;
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      ps.push(uplink.enqueue(readingRecord(i, i % 3 === 0 ? 'bad' : 'good', 5)));
      if (i === 150) ps.push(uplink.enqueue(bigMsg));
    }
    await Promise.all(ps);
    await waitFor(() => (byRoute(sub.messages).get('good')?.length ?? 0) >= 200 && uplink.counters()['store_records'] === 0, 30_000).catch((e: unknown) => {
      throw new Error(`not drained: ${JSON.stringify(uplink.counters())} logs=${JSON.stringify(cap.lines.filter((l) => l["msg"] !== "record quarantined" && l["msg"] !== "broker refused a message").slice(0, 5))}`, { cause: e });
    });
    const c = uplink.counters();
    expect(new Set(byRoute(sub.messages).get('good')).size).toBe(200);
    expect(c['quarantined_total']).toBe(101);
    expect(c['route_bad_quarantined_total']).toBe(100);
    const q = readFileSync(path.join(dir, 'data', 'store', 'quarantine.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; reasonCode?: number });
    expect(q.filter((e) => e.reason === 'oversized')).toHaveLength(1);
    expect(q.filter((e) => e.reason === 'refused' && e.reasonCode === 135)).toHaveLength(100);
    expect(cap.lines.some((l) => l['msg'] === 'record quarantined')).toBe(true);
  }, 120_000);

  it('answers commands with correlation, relays progress, and replies with an error to bad commands', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const { uplink, commands } = await buildUplink({ type: 'mqtt', url: broker.url(), store: { fsyncIntervalMs: 10 } }, { dataDir: path.join(dir, 'data'), logger: silentLogger() });
    const writes: unknown[] = [];
    commands.register({
      name: 'points.write',
      parse: (p: unknown) => {
        const v = p as { point?: unknown; value?: unknown };
        if (typeof v?.point !== 'string') throw new OutpostError('OUTPOST_E_COMMAND_PARAMS', 'points.write needs "point"');
        return v as { point: string; value: unknown };
      },
      run: async (p) => {
        writes.push(p);
        return { written: p.point };
      },
    });
    commands.register({
      name: 'ota.install',
      parse: (p: unknown) => p,
      run: async (_p, progress) => {
        for (const percent of [10, 50, 100]) progress({ percent, state: 'downloading' });
        return { installed: true };
      },
    });
    await started(uplink);
    await waitFor(() => uplink.connected(), 10_000);
    const replies = await subscriber(broker.url(), ['replies/#', 'outpost/gw1/cmd/res'], { protocolVersion: 5 });
    const send = async (payload: string, props: mqtt.IClientPublishOptions['properties'] = {}) => replies.client.publishAsync('outpost/gw1/cmd/req', payload, { qos: 1, properties: props });
    const bodies = () => replies.messages.map((m) => ({ topic: m.topic, body: JSON.parse(m.payload.toString()) as Record<string, unknown>, corr: m.packet.properties?.correlationData?.toString() }));

    await send(JSON.stringify({ id: 'c1', name: 'points.write', params: { point: 'valve', value: 1 } }), { responseTopic: 'replies/a', correlationData: Buffer.from('corr-1') });
    await waitFor(() => bodies().some((b) => b.body['id'] === 'c1' && b.body['status'] === 'ok'), 10_000);
    expect(bodies().find((b) => b.body['id'] === 'c1' && b.body['status'] === 'ok')).toMatchObject({ topic: 'replies/a', corr: 'corr-1', body: { result: { written: 'valve' } } });
    expect(writes).toEqual([{ point: 'valve', value: 1 }]);

    await send(JSON.stringify({ id: 'c2', name: 'ota.install', params: { url: 'x' } }));
    await waitFor(() => bodies().some((b) => b.body['id'] === 'c2' && b.body['status'] === 'ok'), 10_000);
    const c2 = bodies().filter((b) => b.body['id'] === 'c2').map((b) => [b.body['status'], b.body['percent']]);
    expect(c2).toEqual([['accepted', undefined], ['progress', 10], ['progress', 50], ['progress', 100], ['ok', undefined]]);

    await send('{not json');
    await send(JSON.stringify({ id: 'c3', name: 'no.such.command' }));
    await send(JSON.stringify({ id: 'c4', name: 'points.write', params: { value: 1 } }));
    await send(JSON.stringify({ id: 'c5', name: 'points.write', extra: true }));
    await waitFor(() => bodies().filter((b) => b.body['status'] === 'error').length >= 4, 10_000);
    const errors = bodies().filter((b) => b.body['status'] === 'error').map((b) => [b.body['id'], (b.body['error'] as { code: string }).code]);
    expect(errors).toEqual([
      [null, 'OUTPOST_E_UPLINK_COMMAND'],
      ['c3', 'OUTPOST_E_COMMAND_UNKNOWN'],
      ['c4', 'OUTPOST_E_COMMAND_PARAMS'],
      ['c5', 'OUTPOST_E_UPLINK_COMMAND'],
    ]);
    // Still running and delivering after the bad commands.
    expect(uplink.connected()).toBe(true);
  }, 120_000);

  it('publishes retained online status, and offline on a clean stop', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const { uplink } = await buildUplink({ type: 'mqtt', url: broker.url(), store: { fsyncIntervalMs: 10 } }, { dataDir: path.join(dir, 'data'), logger: silentLogger() });
    await uplink.start();
    await waitFor(() => uplink.connected(), 10_000);
    const late = await subscriber(broker.url(), ['outpost/gw1/status']);
    await waitFor(() => late.messages.length > 0, 5000);
    expect(late.messages[0]?.packet.retain).toBe(true);
    expect(JSON.parse(late.messages[0]?.payload.toString() ?? '{}')).toMatchObject({ state: 'online' });
    await uplink.stop();
    await waitFor(() => late.messages.some((m) => JSON.parse(m.payload.toString()).state === 'offline'), 5000);
  }, 120_000);

  it('speaks the Azure IoT Hub topic layout: telemetry events with a property bag, direct methods answered with $rid', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const hub = await subscriber(broker.url(), ['devices/#', '$iothub/methods/res/#']);
    const { uplink, commands } = await buildUplink(
      { type: 'mqtt', url: broker.url(), profile: { type: 'azure', hubHostname: 'myhub.azure-devices.net', deviceId: 'dev-42' }, store: { fsyncIntervalMs: 10 }, batch: { maxLatencyMs: 10 } },
      { dataDir: path.join(dir, 'data'), logger: silentLogger() },
    );
    commands.register({ name: 'points.write', parse: (p: unknown) => p, run: async (p) => ({ ok: p }) });
    await started(uplink);
    await waitFor(() => uplink.connected(), 10_000);
    await Promise.all([1, 2, 3].map((i) => uplink.enqueue(readingRecord(i, 'telemetry', 3))));
    await waitFor(() => hub.messages.some((m) => m.topic.includes('type=batch')), 10_000);
    const batch = hub.messages.find((m) => m.topic.includes('type=batch'));
    expect(batch?.topic).toBe('devices/dev-42/messages/events/$.ct=application%2Fjson&$.ce=utf-8&type=batch&route=telemetry&priority=3');
    expect((JSON.parse(batch?.payload.toString() ?? '{}') as JsonBatch).records.map((r) => (r.message.body as { seq: number }).seq)).toEqual([1, 2, 3]);
    expect(hub.messages.some((m) => m.topic.includes('type=status') && JSON.parse(m.payload.toString()).state === 'online')).toBe(true);
    await hub.client.publishAsync('$iothub/methods/POST/points.write/?$rid=7', JSON.stringify({ point: 'valve', value: 2 }), { qos: 1 });
    await hub.client.publishAsync('$iothub/methods/POST/nope/?$rid=8', '{}', { qos: 1 });
    await hub.client.publishAsync('$iothub/methods/POST/points.write/?$rid=9', '{oops', { qos: 1 });
    await waitFor(() => hub.messages.filter((m) => m.topic.startsWith('$iothub/methods/res/')).length >= 3, 10_000);
    const res = hub.messages.filter((m) => m.topic.startsWith('$iothub/methods/res/')).map((m) => m.topic).sort();
    expect(res).toEqual(['$iothub/methods/res/200/?$rid=7', '$iothub/methods/res/400/?$rid=9', '$iothub/methods/res/404/?$rid=8']);
    expect(JSON.parse(hub.messages.find((m) => m.topic === '$iothub/methods/res/200/?$rid=7')?.payload.toString() ?? '{}')).toEqual({ ok: { point: 'valve', value: 2 } });
  }, 120_000);

  it('sends system events (route $system) on <prefix>/<gateway>/system, ahead of data', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/#']);
    const { uplink } = await buildUplink({ type: 'mqtt', url: broker.url(), store: { fsyncIntervalMs: 10 }, batch: { maxLatencyMs: 10 } }, { dataDir: path.join(dir, 'data'), logger: silentLogger() });
    await started(uplink);
    const body = { event: 'ota.rolled-back', time: 1, bootId: 'b1', data: { updateId: 'u1', state: 'rolled-back' } };
    await uplink.enqueue({ route: '$system', priority: 0, ttlSeconds: 60, enqueuedAt: Date.now(), message: { kind: 'system', source: '/system/ota.rolled-back', body } });
    const m = await waitFor(() => sub.messages.find((x) => x.topic === 'outpost/gw1/system'), 10_000);
    const batch = JSON.parse(m.payload.toString()) as JsonBatch;
    expect(batch).toMatchObject({ route: '$system', priority: 0 });
    expect(batch.records[0]?.message).toEqual({ kind: 'system', source: '/system/ota.rolled-back', body });
    expect(sub.messages.some((x) => x.topic.startsWith('outpost/gw1/data/'))).toBe(false);
  }, 120_000);

  it('gzips batches when asked and says so in a user property', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker') }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/data/#'], { protocolVersion: 5 });
    const { uplink } = await buildUplink({ type: 'mqtt', url: broker.url(), compression: 'gzip', store: { fsyncIntervalMs: 10 }, batch: { maxLatencyMs: 10 } }, { dataDir: path.join(dir, 'data'), logger: silentLogger() });
    await started(uplink);
    await Promise.all(Array.from({ length: 200 }, (_, i) => uplink.enqueue(readingRecord(i, 'telemetry', 5))));
    await waitFor(() => sub.messages.length > 0 && uplink.counters()['store_records'] === 0, 15_000);
    const m = sub.messages[0];
    expect(m?.packet.properties?.userProperties).toEqual({ 'content-encoding': 'gzip' });
    const { gunzipSync } = await import('node:zlib');
    const records = sub.messages.flatMap((x) => (JSON.parse(gunzipSync(x.payload).toString()) as JsonBatch).records);
    expect(records.map((r) => (r.message.body as { seq: number }).seq)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(uplink.counters()['bytes_sent_total']).toBeLessThan(200 * 150);
  }, 120_000);

  it('quarantines a record that makes the broker drop the connection, after isolating it', async () => {
    const dir = tmp();
    // An MQTT 3.1.1 client is not told the broker's packet limit: mosquitto just closes the connection.
    const broker = await new TestBroker({ dir: path.join(dir, 'broker'), extra: ['max_packet_size 3000'] }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/data/#']);
    const { uplink } = await buildUplink(
      { type: 'mqtt', url: broker.url(), protocolVersion: 4, maxAttempts: 3, reconnect: { initialMs: 50, maxMs: 200 }, batch: { maxBytes: 1500, maxLatencyMs: 10 }, store: { fsyncIntervalMs: 10 } },
      { dataDir: path.join(dir, 'data'), logger: silentLogger() },
    );
    await started(uplink);
    await waitFor(() => uplink.connected(), 10_000);
    const big = readingRecord(1_000_000, 'telemetry', 5);
    const bigMsg = { ...big, message: { ...big.message, body: { ...big.message.body, value: 'y'.repeat(6000) } } } as typeof big;
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      ps.push(uplink.enqueue(readingRecord(i, 'telemetry', 5)));
      if (i === 30) ps.push(uplink.enqueue(bigMsg));
    }
    await Promise.all(ps);
    await waitFor(() => uplink.counters()['store_records'] === 0, 60_000, 50).catch((e: unknown) => {
      throw new Error(`not drained: ${JSON.stringify(uplink.counters())}`, { cause: e });
    });
    const c = uplink.counters();
    expect(c['disconnects_total']).toBeGreaterThanOrEqual(3);
    expect(c['quarantined_total']).toBe(1);
    const got = new Set(sub.messages.flatMap((m) => (JSON.parse(m.payload.toString()) as JsonBatch).records.map((r) => (r.message.body as { seq: number }).seq)));
    expect([...got].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    const q = readFileSync(path.join(dir, 'data', 'store', 'quarantine.ndjson'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { reason: string; attempts: number });
    expect(q).toMatchObject([{ reason: 'connection-lost', attempts: 3 }]);
  }, 90_000);

  it('splits batches that keep losing the connection until their records get through', async () => {
    const dir = tmp();
    const broker = await new TestBroker({ dir: path.join(dir, 'broker'), extra: ['max_packet_size 3000'] }).start();
    cleanups.push(() => broker.stop());
    const sub = await subscriber(broker.url(), ['outpost/gw1/data/#']);
    // Batches of ~6 KB against a 3,000-byte limit the 3.1.1 client is not told about: each batch kills the connection.
    const { uplink } = await buildUplink(
      { type: 'mqtt', url: broker.url(), protocolVersion: 4, reconnect: { initialMs: 50, maxMs: 200 }, batch: { maxBytes: 6000, maxLatencyMs: 10 }, store: { fsyncIntervalMs: 10 } },
      { dataDir: path.join(dir, 'data'), logger: silentLogger() },
    );
    await started(uplink);
    await Promise.all(Array.from({ length: 40 }, (_, i) => uplink.enqueue(readingRecord(i, 'telemetry', 5))));
    await waitFor(() => uplink.counters()['store_records'] === 0, 60_000, 50);
    const got = new Set(sub.messages.flatMap((m) => (JSON.parse(m.payload.toString()) as JsonBatch).records.map((r) => (r.message.body as { seq: number }).seq)));
    expect(got.size).toBe(40);
    expect(uplink.counters()['quarantined_total'] ?? 0).toBe(0);
    expect(uplink.counters()['disconnects_total']).toBeGreaterThanOrEqual(3);
  }, 90_000);
});
