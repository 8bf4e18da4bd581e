import { connect, type Socket } from 'node:net';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/broker/passwords.js';
import { waitFor } from '../helpers/net.js';
import { Gateway } from './gateway.js';

/**
 * Hostile local MQTT clients against a real `outpost run` (docs/security-broker.md). The distance sweep
 * is a day long, so the safety rule `proximity-stop` holds the press stopped (io.machine-run false,
 * io.alarm-lamp true) for the whole file and no rule writes anything after start: every driver write
 * counted after the baseline came from an attacker. Each case ends with `intact()`: alive, readings
 * flowing, outputs unchanged, no driver write.
 */

const USERS = {
  hmi: { password: 'hmi-secret', publish: ['{prefix}/commands/write/plc1.speed-setpoint', 'hmi/#'], subscribe: ['{prefix}/#', 'hmi/#'] },
  app2: { password: 'app2-secret', publish: ['app2/#'], subscribe: ['app2/#', '{prefix}/readings/#', '{prefix}/replies/{username}/#'] },
  audit: { password: 'audit-secret', publish: [], subscribe: ['#'] },
  ops: { password: 'ops-secret', publish: ['{prefix}/commands/write/+'], subscribe: undefined },
};
const SETPOINT = 'outpost/commands/write/plc1.speed-setpoint';
const RESULT = 'outpost/commands/result/plc1.speed-setpoint';

let gw: Gateway;
let audit: MqttClient;
const seen: Array<{ topic: string; payload: Buffer; retain: boolean }> = [];
let baseline: { outputs: Record<string, unknown>; writes: number };
const clients: MqttClient[] = [];
const sockets: Socket[] = [];

async function login(user: keyof typeof USERS | null, extra: IClientOptions = {}): Promise<MqttClient> {
  const auth = user ? { username: user, password: USERS[user].password } : {};
  const c = await mqtt.connectAsync(gw.brokerUrl, { reconnectPeriod: 0, connectTimeout: 20_000, clientId: `adv-${user ?? 'anon'}-${Math.random().toString(16).slice(2)}`, ...auth, ...extra });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** CONNACK return code of a login attempt (0 = accepted). */
async function connackCode(o: IClientOptions): Promise<number> {
  const c = mqtt.connect(gw.brokerUrl, { reconnectPeriod: 0, connectTimeout: 20_000, ...o });
  clients.push(c);
  return new Promise((resolve, reject) => {
    c.once('connect', () => resolve(0));
    c.once('error', (e) => ((e as { code?: number }).code !== undefined ? resolve((e as { code: number }).code) : reject(e)));
  });
}

function closed(c: MqttClient | Socket): Promise<void> {
  return new Promise((resolve) => {
    if ('closed' in c && typeof c.closed === 'boolean' && c.closed) return resolve();
    if ('destroyed' in c && c.destroyed) return resolve();
    c.once('close', () => resolve());
  });
}

/** Waits for a broker counter to grow by `by` from `from`. */
async function counterAtLeast(name: string, from: number, by = 1): Promise<number> {
  return waitFor(async () => {
    const v = await gw.metric(`outpost_broker_${name}`);
    return v >= from + by ? v : null;
  }, 30_000, 100);
}

async function counter(name: string): Promise<number> {
  return gw.metric(`outpost_broker_${name}`);
}

/** The invariants every hostile case ends with. */
async function intact(): Promise<void> {
  expect(gw.alive()).toBe(true);
  await gw.readingsFlow();
  expect(await gw.outputs()).toEqual(baseline.outputs);
  expect(await gw.driverWrites()).toBe(baseline.writes);
}

// --- raw MQTT 3.1.1 frames, for what mqtt.js will not send ---
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}
function frame(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, ...varint(body.length)]), body]);
}
function connectFrame(clientId: string, login?: { username: string; password: string }): Buffer {
  const flags = 0x02 | (login ? 0xc0 : 0);
  const body = [str('MQTT'), Buffer.from([4, flags, 0, 60]), str(clientId), ...(login ? [str(login.username), str(login.password)] : [])];
  return frame(0x10, Buffer.concat(body));
}
function publishQos2(topic: string, id: number, payload: string): Buffer {
  return frame(0x34, Buffer.concat([str(topic), Buffer.from([id >> 8, id & 0xff]), Buffer.from(payload)]));
}
async function rawSocket(): Promise<Socket> {
  const s = connect(gw.brokerPort, '127.0.0.1');
  s.on('error', () => undefined);
  sockets.push(s);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  return s;
}

/** SUBACK return codes of one SUBSCRIBE (mqtt.js rejects when any is 128; the codes are on the error). */
async function suback(c: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await c.subscribeAsync(filters)).map((g) => g.qos);
  } catch (e) {
    const granted = (e as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw e;
    return granted;
  }
}

/** The next command reply on the point's result topic (the hmi client listens there). */
function nextResult(c: MqttClient, topic = RESULT): Promise<Record<string, any>> {
  return new Promise((resolve) => {
    const on = (t: string, p: Buffer) => {
      if (t !== topic) return;
      c.off('message', on);
      resolve(JSON.parse(p.toString()) as Record<string, any>);
    };
    c.on('message', on);
  });
}

beforeAll(async () => {
  const users = await Promise.all(
    Object.entries(USERS).map(async ([username, u]) => ({ username, passwordHash: await hashPassword(u.password), publish: u.publish, ...(u.subscribe ? { subscribe: u.subscribe } : {}) })),
  );
  gw = await Gateway.start({ distancePeriodMs: 86_400_000, broker: { users } });
  audit = await login('audit');
  clients.splice(clients.indexOf(audit), 1);
  audit.on('message', (topic, payload, packet) => {
    if (!topic.startsWith('outpost/readings/')) seen.push({ topic, payload: Buffer.from(payload.subarray(0, 256)), retain: packet.retain });
    if (seen.length > 20_000) seen.splice(0, 10_000);
  });
  await audit.subscribeAsync('#');
  // The rule fires on the first reading (distance 150 mm): the press is stopped, then nothing writes.
  const outputs = await waitFor(async () => {
    const o = await gw.outputs();
    return o['io.machine-run'] === false && o['io.alarm-lamp'] === true && o['plc1.speed-setpoint'] === 12 ? o : null;
  }, 30_000, 100);
  baseline = { outputs, writes: await gw.driverWrites() };
}, 120_000);

/** Each case closes what it opened, so connection counts start from the same few. */
afterEach(() => {
  for (const c of clients.splice(0)) c.end(true);
  for (const s of sockets.splice(0)) s.destroy();
});

afterAll(async () => {
  audit?.end(true);
  await gw?.stop();
});

describe('logins', () => {
  it('refuses a wrong password, an unknown user and a username without password (CONNACK 4), counted', async () => {
    const before = await counter('auth_failures_total');
    expect(await connackCode({ username: 'hmi', password: 'wrong' })).toBe(4);
    expect(await connackCode({ username: 'root', password: 'hmi-secret' })).toBe(4);
    expect(await connackCode({ username: 'hmi' })).toBe(4);
    expect(await counter('auth_failures_total')).toBe(before + 3);
    await intact();
  });

  it('does not let an anonymous client take over a logged-in client id (CONNACK 2); the holder stays connected', async () => {
    const hmi = await login('hmi', { clientId: 'hmi-panel-1' });
    expect(await connackCode({ clientId: 'hmi-panel-1' })).toBe(2);
    expect(hmi.connected).toBe(true);
    await intact();
  });
});

describe('anonymous clients are read-only', () => {
  it('refuses subscriptions to #, $SYS/#, outpost/# and commands (SUBACK 128), grants readings', async () => {
    const anon = await login(null);
    expect(await suback(anon, ['#', '$SYS/#', 'outpost/#', 'outpost/commands/#', 'outpost/replies/#', 'outpost/readings/#'])).toEqual([128, 128, 128, 128, 128, 0]);
    await intact();
  });

  it('drops publishes on app topics, spoofed readings and command topics: nothing delivered, nothing written', async () => {
    const anon = await login(null);
    const before = await counter('denied_publishes_total');
    const commands = await counter('commands_total');
    await anon.publishAsync('x/y', 'hello', { qos: 1 });
    await anon.publishAsync('outpost/readings/plc1/plc1.distance', JSON.stringify({ point: 'plc1.distance', value: 9999, quality: 'good' }), { qos: 1, retain: true });
    await anon.publishAsync('outpost/commands/write/io.machine-run', JSON.stringify({ value: true }), { qos: 1 });
    await counterAtLeast('denied_publishes_total', before, 3);
    expect(await counter('commands_total')).toBe(commands);
    expect(seen.filter((m) => m.topic === 'x/y' || m.topic.startsWith('outpost/commands/write/io.'))).toEqual([]);
    // A new subscriber gets the gateway's retained reading, not the spoofed one.
    const fresh = await login(null);
    const retained = new Promise<Record<string, unknown>>((resolve) => fresh.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)));
    await fresh.subscribeAsync('outpost/readings/plc1/plc1.distance');
    expect((await retained)['value']).not.toBe(9999);
    await intact();
  });

  it('never publishes an anonymous Will on a gateway topic', async () => {
    const before = await counter('denied_publishes_total');
    const c = await login(null, { will: { topic: 'outpost/status', payload: Buffer.from('{"state":"offline"}'), qos: 1, retain: true } });
    (c.stream as Socket).destroy();
    await counterAtLeast('denied_publishes_total', before);
    expect(seen.filter((m) => m.topic === 'outpost/status' && m.payload.toString().includes('offline'))).toEqual([]);
    await intact();
  });
});

describe('topic ACLs of logged-in users', () => {
  it('refuses spoofed readings, another application namespace, an output outside the ACL and a retained command', async () => {
    const hmi = await login('hmi');
    const before = await counter('denied_publishes_total');
    const commands = await counter('commands_total');
    await hmi.publishAsync('outpost/readings/plc1/plc1.distance', JSON.stringify({ point: 'plc1.distance', value: 1000 }), { qos: 1 });
    await hmi.publishAsync('app2/inbox', 'not yours', { qos: 1 });
    await hmi.publishAsync('outpost/commands/write/io.machine-run', JSON.stringify({ value: true }), { qos: 1 });
    await hmi.publishAsync(SETPOINT, JSON.stringify({ value: 99 }), { qos: 1, retain: true });
    await hmi.publishAsync('outpost/events/proximity-stop', JSON.stringify({ state: 'released' }), { qos: 1 });
    await counterAtLeast('denied_publishes_total', before, 5);
    expect(await counter('commands_total')).toBe(commands);
    expect(seen.filter((m) => m.topic === 'app2/inbox' || m.topic === 'outpost/events/proximity-stop' || m.topic.startsWith('outpost/commands/write/'))).toEqual([]);
    await intact();
  });

  it('refuses filters outside a user\'s subscribe list, and subscriptions beyond limits.maxSubscriptions (100)', async () => {
    const app2 = await login('app2');
    expect(await suback(app2, ['hmi/#', 'outpost/commands/#', 'outpost/replies/hmi/#', 'app2/#'])).toEqual([128, 128, 128, 0]);
    const hmi = await login('hmi');
    const granted = await suback(hmi, Array.from({ length: 150 }, (_, i) => `hmi/f${i}`));
    expect(granted.filter((g) => g === 0).length).toBe(100);
    expect(granted.filter((g) => g === 128).length).toBe(50);
    await intact();
  });

  it('keeps every session clean: no messages are queued for an absent client', async () => {
    const first = await login('app2', { clientId: 'app2-durable', clean: false });
    await first.subscribeAsync('app2/queue', { qos: 1 });
    await first.endAsync();
    const sender = await login('app2');
    await sender.publishAsync('app2/queue', 'while you were away', { qos: 1 });
    await waitFor(() => seen.some((m) => m.topic === 'app2/queue'), 10_000);
    const again = mqtt.connect(gw.brokerUrl, { reconnectPeriod: 0, clientId: 'app2-durable', clean: false, username: 'app2', password: USERS.app2.password });
    clients.push(again);
    const got: string[] = [];
    again.on('message', (_t, p) => got.push(p.toString()));
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) => again.once('connect', (p) => resolve(p)));
    expect(connack.sessionPresent).toBe(false);
    // A round trip through the broker: had anything been queued, it would have arrived before this.
    await again.subscribeAsync('app2/ping');
    const ping = new Promise<void>((resolve) => again.on('message', (t) => t === 'app2/ping' && resolve()));
    await again.publishAsync('app2/ping', 'x', { qos: 1 });
    await ping;
    expect(got.filter((m) => m === 'while you were away')).toEqual([]);
    await intact();
  });
});

describe('write commands: replyTo and payloads', () => {
  const reserved = [
    'outpost/readings/plc1/plc1.distance',
    'outpost/commands/write/io.machine-run',
    'outpost/commands/write/plc1.speed-setpoint',
    'outpost/commands/result/io.machine-run',
    'outpost/events/proximity-stop',
    'outpost/status',
    'outpost/system/ota.committed',
    'outpost',
    'outpost/replies',
    'outpost/replies/app2/inbox',
    'outpost/replies/_anonymous/x',
    'outpost/replies/hmi',
    'app2/inbox',
    '$SYS/broker/x',
  ];

  it.each(reserved)('refuses replyTo %s: not executed, error on the result topic, nothing published there', async (replyTo) => {
    const hmi = await login('hmi');
    await hmi.subscribeAsync(RESULT);
    const commands = await counter('commands_total');
    const reply = nextResult(hmi);
    const mark = seen.length;
    await hmi.publishAsync(SETPOINT, JSON.stringify({ value: 99, id: 'r1', replyTo }), { qos: 1 });
    const r = await reply;
    expect(r).toMatchObject({ id: 'r1', ok: false, error: { code: 'OUTPOST_E_BROKER_REPLY_TO' } });
    expect(await counter('commands_total')).toBe(commands + 1);
    // Only a reply would carry "ok"; the command itself is visible to the auditor on its own topic.
    expect(seen.slice(mark).filter((m) => m.topic === replyTo && m.payload.toString().includes('"ok"'))).toEqual([]);
    await intact();
  });

  const payloads: Array<[string, string, string]> = [
    ['not JSON', '{"value": 1', 'OUTPOST_E_BROKER_COMMAND'],
    ['a JSON array', '[1, 2]', 'OUTPOST_E_BROKER_COMMAND'],
    ['an object value', '{"value": {"raw": 1}}', 'OUTPOST_E_BROKER_COMMAND'],
    ['null', 'null', 'OUTPOST_E_BROKER_COMMAND'],
    ['an unknown field', '{"value": 1, "force": true}', 'OUTPOST_E_BROKER_COMMAND'],
    ['a numeric id', '{"value": 1, "id": 7}', 'OUTPOST_E_BROKER_COMMAND'],
    ['1e999 (infinity)', '{"value": 1e999}', 'OUTPOST_E_HAL_VALUE'],
    ['NaN as a string', '{"value": "NaN"}', 'OUTPOST_E_HAL_VALUE'],
    ['a 15 KiB string', JSON.stringify({ value: 'x'.repeat(15_000) }), 'OUTPOST_E_HAL_VALUE'],
    ['a 20 KiB command (over limits.maxCommandBytes)', JSON.stringify({ value: 1, id: 'y'.repeat(20_000) }), 'OUTPOST_E_BROKER_COMMAND'],
    ['nesting 5000 deep', `{"value": ${'['.repeat(5000)}${']'.repeat(5000)}}`, 'OUTPOST_E_BROKER_COMMAND'],
  ];

  it.each(payloads)('answers %s with an error and writes nothing', async (_label, payload, code) => {
    const hmi = await login('hmi');
    await hmi.subscribeAsync(RESULT);
    const reply = nextResult(hmi);
    await hmi.publishAsync(SETPOINT, payload, { qos: 1 });
    expect(await reply).toMatchObject({ ok: false, error: { code } });
    await intact();
  });

  it('answers commands for an unknown or a read-only point with the runtime\'s errors, from a user allowed every command topic', async () => {
    const ops = await login('ops');
    await ops.subscribeAsync(['outpost/commands/result/#', 'outpost/replies/ops/#']);
    const unknown = nextResult(ops, 'outpost/replies/ops/1');
    await ops.publishAsync('outpost/commands/write/nope', JSON.stringify({ value: 1, replyTo: 'outpost/replies/ops/1' }), { qos: 1 });
    expect(await unknown).toMatchObject({ ok: false, error: { code: 'OUTPOST_E_RUNTIME_UNKNOWN_POINT' } });
    const readOnly = nextResult(ops, 'outpost/commands/result/plc1.distance');
    await ops.publishAsync('outpost/commands/write/plc1.distance', '500', { qos: 1 });
    expect(await readOnly).toMatchObject({ ok: false, error: { code: 'OUTPOST_E_RUNTIME_NOT_WRITABLE' } });
    await intact();
  });
});

describe('oversize and malformed packets', () => {
  it('disconnects a client publishing a 10 MiB command before reading it: not executed, nothing retained', async () => {
    const hmi = await login('hmi');
    const before = await counter('oversize_packets_total');
    const commands = await counter('commands_total');
    const gone = closed(hmi);
    hmi.publish(SETPOINT, Buffer.alloc(10 * 1024 * 1024, 0x20), { qos: 0, retain: true });
    await gone;
    expect(await counter('oversize_packets_total')).toBe(before + 1);
    expect(await counter('commands_total')).toBe(commands);
    await intact();
  });

  it('disconnects as soon as a header announces 256 MiB, with only 5 bytes sent', async () => {
    const s = await rawSocket();
    s.write(connectFrame('raw-big', { username: 'hmi', password: USERS.hmi.password }));
    await new Promise((r) => s.once('data', r));
    const before = await counter('oversize_packets_total');
    const gone = closed(s);
    s.write(Buffer.from([0x30, ...varint(268_435_455)]));
    await gone;
    expect(await counter('oversize_packets_total')).toBe(before + 1);
    await intact();
  });

  it('disconnects an oversize CONNECT (a 1 MiB client id) and a remaining length of five bytes', async () => {
    const a = await rawSocket();
    const goneA = closed(a);
    a.write(connectFrame('c'.repeat(1024 * 1024)).subarray(0, 16));
    await goneA;
    const b = await rawSocket();
    const before = await counter('malformed_packets_total');
    const goneB = closed(b);
    b.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await goneB;
    expect(await counter('malformed_packets_total')).toBe(before + 1);
    await intact();
  });

  it('disconnects a client holding more than limits.maxInflight (16) QoS 2 messages without PUBREL', async () => {
    const s = await rawSocket();
    s.write(connectFrame('raw-qos2', { username: 'hmi', password: USERS.hmi.password }));
    await new Promise((r) => s.once('data', r));
    const gone = closed(s);
    for (let id = 1; id <= 40; id++) s.write(publishQos2('hmi/q2', id, 'x'));
    await gone;
    await intact();
  });
});

describe('floods', () => {
  it('closes connections beyond limits.maxConnections (64) at once, and idle ones that never send CONNECT', async () => {
    const before = await counter('refused_connections_total');
    const open = await counter('connections_current');
    const opened = await Promise.all(Array.from({ length: 100 }, () => rawSocket().catch(() => null)));
    const refused = await counterAtLeast('refused_connections_total', before, 1);
    expect(await counter('connections_current')).toBeLessThanOrEqual(64);
    expect(refused - before).toBeGreaterThanOrEqual(100 - (64 - open));
    // The others are closed by limits.connectTimeoutMs (10 s) since they never log in.
    await Promise.all(opened.map((s) => (s ? closed(s) : undefined)));
    const hmi = await login('hmi');
    expect(hmi.connected).toBe(true);
    await intact();
  }, 60_000);

  /** RSS before a flood: after a small flood of the same kind (code paths loaded) and the collection that follows it. */
  async function settledBaseline(warmUp: () => Promise<void>): Promise<number> {
    await warmUp();
    let previous = gw.rssMiB();
    return waitFor(async () => {
      await new Promise((r) => setTimeout(r, 1000));
      const now = gw.rssMiB();
      const stable = Math.abs(now - previous) < 1;
      previous = now;
      return stable ? now : null;
    }, 30_000, 0);
  }

  async function retainedFlood(n: number, bytes: number): Promise<void> {
    const app2 = await login('app2');
    for (let i = 0; i < n; i++) await app2.publishAsync(`app2/retained/${i}`, Buffer.alloc(bytes, 0x61), { retain: true, qos: 1 });
    for (let i = 0; i < n; i++) await app2.publishAsync(`app2/retained/${i}`, Buffer.alloc(0), { retain: true, qos: 1 });
    await app2.endAsync();
  }

  it('keeps client retained messages within limits.maxRetainedBytes (4 MiB); after clearing them RSS is back within 20 %', async () => {
    const base = await settledBaseline(() => retainedFlood(5, 100 * 1024));
    const refusedBefore = await counter('retained_refused_total');
    const app2 = await login('app2');
    for (let i = 0; i < 100; i++) await app2.publishAsync(`app2/retained/${i}`, Buffer.alloc(100 * 1024, 0x62), { retain: true, qos: 1 });
    expect(await counter('retained_bytes')).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(await counter('retained_messages')).toBeLessThan(100);
    expect(await counter('retained_refused_total')).toBeGreaterThan(refusedBefore);
    for (let i = 0; i < 100; i++) await app2.publishAsync(`app2/retained/${i}`, Buffer.alloc(0), { retain: true, qos: 1 });
    expect(await counter('retained_messages')).toBe(0);
    const rss = await gw.rssWithin(base * 1.2);
    expect(rss, `RSS ${rss.toFixed(1)} MiB after the flood, ${base.toFixed(1)} MiB before`).toBeLessThanOrEqual(base * 1.2);
    await intact();
  }, 120_000);

  it('keeps the count of client retained messages within limits.maxRetainedMessages (1000)', async () => {
    const app2 = await login('app2');
    const refusedBefore = await counter('retained_refused_total');
    await Promise.all(Array.from({ length: 1200 }, (_, i) => app2.publishAsync(`app2/many/${i}`, 'r', { retain: true, qos: 1 })));
    expect(await counter('retained_messages')).toBe(1000);
    expect(await counter('retained_refused_total')).toBe(refusedBefore + 200);
    await Promise.all(Array.from({ length: 1200 }, (_, i) => app2.publishAsync(`app2/many/${i}`, '', { retain: true, qos: 1 })));
    expect(await counter('retained_messages')).toBe(0);
    await intact();
  }, 60_000);

  it('survives 60 logins with wrong passwords at once: refused (CONNACK 4, or 3 beyond the verification queue), RSS back within 20 %', async () => {
    const base = await settledBaseline(async () => {
      expect(await connackCode({ username: 'app2', password: 'warm-up' })).toBe(4);
    });
    const codes = await Promise.all(Array.from({ length: 60 }, (_, i) => connackCode({ username: i % 2 ? 'app2' : `nobody${i}`, password: `guess-${i}` })));
    expect(codes.every((c) => c === 4 || c === 3)).toBe(true);
    expect(codes.filter((c) => c === 4).length).toBeGreaterThan(0);
    const rss = await gw.rssWithin(base * 1.2);
    expect(rss, `RSS ${rss.toFixed(1)} MiB after the flood, ${base.toFixed(1)} MiB before`).toBeLessThanOrEqual(base * 1.2);
    await intact();
  }, 120_000);

  async function publishFlood(clientsN: number, perClient: number, bytes: number): Promise<void> {
    const pubs = await Promise.all(Array.from({ length: clientsN }, () => login('app2')));
    const payload = Buffer.alloc(bytes, 0x63);
    await Promise.all(pubs.map(async (c, k) => {
      for (let i = 0; i < perClient; i++) await c.publishAsync(`app2/flood/${k}`, payload, { qos: 1 });
    }));
    await Promise.all(pubs.map((c) => c.endAsync()));
  }

  it('slows down 10 clients flooding 100 KiB messages (byte rate) and is back within 20 % of its RSS afterwards', async () => {
    const base = await settledBaseline(() => publishFlood(10, 5, 100 * 1024));
    const throttled = await counter('throttled_total');
    await publishFlood(10, 100, 100 * 1024);
    expect(await counter('throttled_total')).toBeGreaterThan(throttled);
    const rss = await gw.rssWithin(base * 1.2);
    expect(rss, `RSS ${rss.toFixed(1)} MiB after the flood, ${base.toFixed(1)} MiB before`).toBeLessThanOrEqual(base * 1.2);
    await intact();
  }, 180_000);

  it('slows a client sending 1000 small messages at once (message rate) without losing any', async () => {
    const c = await login('app2');
    const throttled = await counter('throttled_total');
    const mark = seen.length;
    await Promise.all(Array.from({ length: 1000 }, (_, i) => c.publishAsync('app2/rate', String(i), { qos: 0 })));
    await waitFor(() => seen.slice(mark).filter((m) => m.topic === 'app2/rate').length === 1000, 60_000, 100);
    expect(await counter('throttled_total')).toBeGreaterThan(throttled);
    await intact();
  }, 90_000);
});

describe('after all of this', () => {
  it('still executes a legitimate command and replies on the user\'s reply topic', async () => {
    const hmi = await login('hmi');
    await hmi.subscribeAsync('outpost/replies/hmi/#');
    const reply = nextResult(hmi, 'outpost/replies/hmi/ok');
    await hmi.publishAsync(SETPOINT, JSON.stringify({ value: 12, id: 'ok-1', replyTo: 'outpost/replies/hmi/ok' }), { qos: 1 });
    expect(await reply).toMatchObject({ id: 'ok-1', ok: true, point: 'plc1.speed-setpoint', value: 12 });
    expect(await gw.driverWrites()).toBe(baseline.writes + 1);
    expect(await gw.outputs()).toEqual(baseline.outputs);
    expect(gw.alive()).toBe(true);
  });
});
