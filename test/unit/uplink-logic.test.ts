import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { IClientOptions, MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../hal/clock.js';
import { CommandRegistry } from '../../src/commands/command.js';
import { ConfigValidator } from '../../src/config/load.js';
import { DurableStore } from '../../src/store/durable-store.js';
import { CommandDispatcher } from '../../src/uplink/commands.js';
import { JsonProfile } from '../../src/uplink/json-profile.js';
import { MqttUplink } from '../../src/uplink/mqtt-uplink.js';
import type { MqttUpstreamConfig } from '../../src/uplink/schema.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';
import { readingRecord } from '../helpers/uplink.js';

/**
 * A fake MQTT client (logic test only; the real broker is exercised in test/integration): connects
 * when `up`, refuses publishes whose payload contains "poison" with reason code 0x97 (Quota exceeded,
 * a transient refusal), acknowledges the others.
 */
class FakeClient extends EventEmitter {
  readonly published: Array<{ topic: string; payload: string }> = [];
  constructor(up: boolean) {
    super();
    setImmediate(() => (up ? this.emit('connect', { cmd: 'connack', properties: { receiveMaximum: 20 } }) : this.emit('close')));
  }
  publish(topic: string, payload: Buffer, _o: unknown, cb: (e?: Error) => void): this {
    const text = payload.toString();
    this.published.push({ topic, payload: text });
    setImmediate(() => (text.includes('poison') ? cb(Object.assign(new Error('Publish error: Quota exceeded'), { code: 0x97 })) : cb()));
    return this;
  }
  async subscribeAsync(): Promise<void> {}
  end(_force?: boolean, _o?: unknown, cb?: () => void): this {
    cb?.();
    return this;
  }
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(o: { upAfter?: number; clock?: Clock; maxAttempts?: number } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'outpost-uplink-logic-'));
  dirs.push(dir);
  const config = new ConfigValidator().validate(
    { gateway: { id: 'gw', dataDir: dir }, upstream: { type: 'mqtt', url: 'mqtt://fake:1883', maxAttempts: o.maxAttempts ?? 2, reconnect: { initialMs: 100, maxMs: 1000 }, batch: { maxLatencyMs: 0 } } },
    ['t'],
    dir,
  ).upstream as MqttUpstreamConfig;
  const clock = o.clock ?? systemClock;
  const store = new DurableStore({ ...config.store, dir: path.join(dir, 'store'), minFreeBytes: 0, fsyncIntervalMs: 5 }, { clock, logger: silentLogger() });
  const clients: FakeClient[] = [];
  let attempts = 0;
  const uplink = new MqttUplink(config, {
    clock,
    logger: silentLogger(),
    store,
    profile: new JsonProfile({ topicPrefix: 'outpost', gatewayId: 'gw', bootId: 'b', version: 't', clientId: 'gw', protocolVersion: 5, compression: 'none', now: () => clock.now() }),
    credentials: { load: async () => ({}) },
    commands: new CommandDispatcher(new CommandRegistry(), silentLogger()),
    random: () => 0.5,
    connect: (_url: string, _o: IClientOptions) => {
      const c = new FakeClient(++attempts > (o.upAfter ?? 0));
      clients.push(c);
      return c as unknown as MqttClient;
    },
  });
  return { uplink, store, clients, dir, attempts: () => attempts };
}

describe('MqttUplink logic (fake client)', () => {
  it('retries a transiently refused record alone, quarantines it after maxAttempts, and delivers the rest', async () => {
    const { uplink, clients, dir } = setup({ maxAttempts: 2 });
    await uplink.start();
    const poison = readingRecord(5, 'telemetry', 5);
    const p = { ...poison, message: { ...poison.message, body: { ...poison.message.body, reason: 'poison' } } } as typeof poison;
    await Promise.all([...Array.from({ length: 10 }, (_, i) => uplink.enqueue(readingRecord(i, 'telemetry', 5))), uplink.enqueue(p)]);
    await waitFor(() => uplink.counters()['store_records'] === 0, 15_000);
    const c = uplink.counters();
    expect(c['quarantined_total']).toBe(1);
    expect(c['delivered_total']).toBe(10);
    // The poison went out in the first batch, then alone twice (maxAttempts 2) before the quarantine.
    const poisonSends = clients.flatMap((x) => x.published).filter((m) => m.payload.includes('poison'));
    expect(poisonSends).toHaveLength(3);
    const q = JSON.parse(readFileSync(path.join(dir, 'store', 'quarantine.ndjson'), 'utf8').trim()) as Record<string, unknown>;
    expect(q).toMatchObject({ reason: 'refused', reasonCode: 0x97, attempts: 2 });
    await uplink.stop();
  });

  it('backs off exponentially with jitter between failed connection attempts', async () => {
    const delays: number[] = [];
    const clock: Clock = { ...systemClock, setTimeout: (fn: () => void, ms: number) => { delays.push(ms); return setTimeout(fn, 1); } };
    const { uplink, attempts } = setup({ upAfter: 5, clock });
    await uplink.start();
    await waitFor(() => uplink.connected(), 10_000);
    expect(attempts()).toBe(6);
    // random() = 0.5: ceiling × 0.75 with the ceiling doubling from 100 ms (capped at 1000 ms).
    expect(delays.filter((d) => d >= 50)).toEqual([75, 150, 300, 600, 750]);
    await uplink.stop();
  });
});
