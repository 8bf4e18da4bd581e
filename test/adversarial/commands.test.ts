import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { DriverRegistry } from '../../services/driver-registry.js';
import { ConfigValidator } from '../../src/config/load.js';
import { ProcSystemProbe } from '../../src/health/proc-system-probe.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { CommandDispatcher, type CommandReply } from '../../src/uplink/commands.js';
import { silentLogger } from '../helpers/logger.js';
import { TestBroker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { demoConfig, Gateway } from './gateway.js';

/**
 * Hostile cloud commands (docs/security-broker.md): the command envelope `{id, name, params}` as the
 * uplink receives it. In process against the real Runtime's CommandRegistry (points.write → runtime.write,
 * the simulated devices of the adversarial demo), then through a real mosquitto to a real `outpost run`.
 * The distance sweep is a day long: the safety rule holds the press stopped and nothing else writes, so
 * any driver write after the baseline came from a command.
 */

const OUTPUTS = ['io.machine-run', 'io.alarm-lamp', 'plc1.speed-setpoint'];

describe('cloud commands in process (CommandDispatcher on the runtime)', () => {
  let dir: string;
  let runtime: Runtime;
  let baseline: { outputs: unknown[]; writes: number };

  const outputs = () => OUTPUTS.map((p) => runtime.points().find((s) => s.point === p)?.value);
  const writes = () => ['plc1', 'io'].reduce((n, d) => n + (runtime.driver(d)?.counters()['writes_total'] ?? 0), 0);

  /** Sends one raw request; resolves with every reply once the final (ok/error) one arrives. */
  async function ask(d: CommandDispatcher, payload: string | Buffer): Promise<CommandReply[]> {
    const replies: CommandReply[] = [];
    await d.handleRaw(Buffer.isBuffer(payload) ? payload : Buffer.from(payload), (r) => replies.push(r));
    return replies;
  }
  const final = (rs: CommandReply[]) => rs[rs.length - 1] as CommandReply;

  async function intact(): Promise<void> {
    expect(outputs()).toEqual(baseline.outputs);
    expect(writes()).toBe(baseline.writes);
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-adv-cmd-'));
    const cfg = demoConfig({ apiPort: 0, brokerPort: 0, dataDir: path.join(dir, 'data'), distancePeriodMs: 86_400_000 });
    cfg['api'] = { enabled: false };
    cfg['broker'] = { enabled: false };
    runtime = new Runtime(new ConfigValidator().validate(cfg, [], dir), {
      clock: systemClock,
      logger: silentLogger(),
      drivers: new DriverRegistry(),
      systemProbe: new ProcSystemProbe(['/']),
      version: '0.0.0-adv',
    });
    await runtime.start();
    const stopped = await waitFor(() => {
      const o = outputs();
      return o[0] === false && o[1] === true && o[2] === 12 ? o : null;
    }, 30_000, 50);
    baseline = { outputs: stopped, writes: writes() };
  }, 60_000);

  afterAll(async () => {
    await runtime?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const malformed: Array<[string, string | Buffer, RegExp]> = [
    ['not JSON', '{"id":"a","name":"points.write"', /not valid JSON/],
    ['a 1 MiB envelope', JSON.stringify({ id: 'big', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 1, pad: 'x'.repeat(1024 * 1024) } }), /larger than 65536 bytes/],
    ['params nested 100,000 deep (over the size limit too)', `{"id":"deep","name":"points.write","params":${'['.repeat(100_000)}${']'.repeat(100_000)}}`, /larger than/],
    ['params nested 1,000 deep', `{"id":"deep2","name":"points.write","params":${'{"a":'.repeat(1000)}1${'}'.repeat(1000)}}`, /nested deeper than 32/],
    ['a numeric id', '{"id":42,"name":"points.write","params":{}}', /\/id must be string/],
    ['a numeric name', '{"id":"n","name":5}', /\/name must be string/],
    ['an empty id', '{"id":"","name":"points.write"}', /\/id must NOT have fewer than 1 characters/],
    ['a 10 KiB id', JSON.stringify({ id: 'i'.repeat(10_000), name: 'points.write' }), /\/id must NOT have more than 128 characters/],
    ['an extra envelope field', '{"id":"x","name":"points.write","run":"rm -rf /"}', /must NOT have additional properties \(run\)/],
    ['a JSON array', '[{"id":"x","name":"points.write"}]', /must be object/],
    ['a name with a path', '{"id":"x","name":"../../etc/passwd"}', /\/name must match pattern/],
    ['a 1 MiB binary blob', Buffer.alloc(1024 * 1024, 0xff), /larger than/],
  ];

  it.each(malformed)('refuses %s with OUTPOST_E_UPLINK_COMMAND, before any handler', async (_label, payload, message) => {
    const d = new CommandDispatcher(runtime.commands, silentLogger());
    const rs = await ask(d, payload);
    expect(rs).toHaveLength(1);
    expect(rs[0]).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_UPLINK_COMMAND' } });
    expect(rs[0]?.error?.message).toMatch(message);
    await intact();
  });

  const refusedByHandlers: Array<[string, unknown, string]> = [
    ['an unknown command', { id: 'u1', name: 'system.reboot' }, 'OUTPOST_E_COMMAND_UNKNOWN'],
    ['a name inherited from Object', { id: 'u2', name: 'constructor' }, 'OUTPOST_E_COMMAND_UNKNOWN'],
    ['points.write without a point', { id: 'p1', name: 'points.write', params: { value: 1 } }, 'OUTPOST_E_COMMAND_PARAMS'],
    ['points.write with an object value', { id: 'p2', name: 'points.write', params: { point: 'io.machine-run', value: { on: true } } }, 'OUTPOST_E_COMMAND_PARAMS'],
    ['points.write with params as a string', { id: 'p3', name: 'points.write', params: 'io.machine-run=true' }, 'OUTPOST_E_COMMAND_PARAMS'],
    ['points.write of 1e999', { id: 'p4', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 'placeholder' } }, 'OUTPOST_E_HAL_VALUE'],
    ['points.write of a 30 KiB string to a number', { id: 'p5', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 'x'.repeat(30_000) } }, 'OUTPOST_E_HAL_VALUE'],
    ['points.write of "maybe" to an output', { id: 'p6', name: 'points.write', params: { point: 'io.machine-run', value: 'maybe' } }, 'OUTPOST_E_HAL_VALUE'],
    ['points.write to an unknown point', { id: 'p7', name: 'points.write', params: { point: '../io.machine-run', value: true } }, 'OUTPOST_E_RUNTIME_UNKNOWN_POINT'],
    ['points.write to a sensor', { id: 'p8', name: 'points.write', params: { point: 'plc1.distance', value: 1000 } }, 'OUTPOST_E_RUNTIME_NOT_WRITABLE'],
  ];

  it.each(refusedByHandlers)('answers %s with %s and writes nothing', async (_label, req, code) => {
    const d = new CommandDispatcher(runtime.commands, silentLogger());
    // JSON has no Infinity: 1e999 is written into the text (JSON.parse reads it as Infinity).
    const text = JSON.stringify(req).replace('"placeholder"', '1e999');
    const rs = await ask(d, text);
    expect(final(rs)).toMatchObject({ status: 'error', error: { code } });
    await intact();
  });

  it('does not let __proto__ in params pollute objects', async () => {
    const d = new CommandDispatcher(runtime.commands, silentLogger());
    const rs = await ask(d, '{"id":"pp","name":"points.write","params":{"__proto__":{"polluted":true},"point":"plc1.distance","value":1}}');
    expect(final(rs)).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_RUNTIME_NOT_WRITABLE' } });
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    await intact();
  });

  it('runs an id once: a replayed command is refused with OUTPOST_E_UPLINK_COMMAND_DUPLICATE', async () => {
    const d = new CommandDispatcher(runtime.commands, silentLogger());
    const cmd = JSON.stringify({ id: 'once', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 12 } });
    expect(final(await ask(d, cmd))).toMatchObject({ status: 'ok' });
    baseline.writes = writes();
    expect(final(await ask(d, cmd))).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_UPLINK_COMMAND_DUPLICATE' } });
    // A refused (not accepted) id may be retried: a busy refusal must not turn into a duplicate.
    const bad = JSON.stringify({ id: 'retry-me', name: 'points.write', params: { point: 'plc1.distance', value: 1 } });
    expect(final(await ask(d, bad))).toMatchObject({ error: { code: 'OUTPOST_E_RUNTIME_NOT_WRITABLE' } });
    await intact();
  });

  it('starts at most ratePerSec×2 of a flood of 2000 commands at once; the rest are refused busy and not run', async () => {
    const d = new CommandDispatcher(runtime.commands, silentLogger());
    const all = await Promise.all(
      Array.from({ length: 2000 }, (_, i) => ask(d, JSON.stringify({ id: `f${i}`, name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 12 } }))),
    );
    const ok = all.filter((rs) => final(rs).status === 'ok').length;
    const busy = all.filter((rs) => final(rs).error?.code === 'OUTPOST_E_UPLINK_COMMAND_BUSY').length;
    expect(ok + busy).toBe(2000);
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThanOrEqual(d.limits.maxConcurrent + d.limits.ratePerSec * 2);
    expect(writes()).toBe(baseline.writes + ok);
    baseline.writes = writes();
    expect(outputs()).toEqual(baseline.outputs);
  });

  it('runs at most maxConcurrent slow commands at once', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let running = 0;
    let peak = 0;
    runtime.commands.register({
      name: 'test.slow',
      parse: (p: unknown) => p,
      run: async () => {
        peak = Math.max(peak, ++running);
        await gate;
        running--;
        return null;
      },
    });
    const d = new CommandDispatcher(runtime.commands, silentLogger(), { maxConcurrent: 3, ratePerSec: 0 });
    const pending = Array.from({ length: 10 }, (_, i) => ask(d, JSON.stringify({ id: `s${i}`, name: 'test.slow' })));
    await waitFor(() => running === 3, 5000);
    release();
    const all = await Promise.all(pending);
    expect(peak).toBe(3);
    expect(all.filter((rs) => final(rs).status === 'ok')).toHaveLength(3);
    expect(all.filter((rs) => final(rs).error?.code === 'OUTPOST_E_UPLINK_COMMAND_BUSY')).toHaveLength(7);
    await intact();
  });
});

describe('cloud commands through mosquitto to outpost run', () => {
  let dir: string;
  let broker: TestBroker;
  let gw: Gateway;
  let cloud: MqttClient;
  const replies: Array<Record<string, any>> = [];
  let baseline: { outputs: Record<string, unknown>; writes: number };

  async function intact(): Promise<void> {
    expect(gw.alive()).toBe(true);
    await gw.readingsFlow();
    expect(await gw.outputs()).toEqual(baseline.outputs);
    expect(await gw.driverWrites()).toBe(baseline.writes);
  }

  const send = (payload: string | Buffer) => cloud.publishAsync('outpost/adv-gw/cmd/req', payload, { qos: 1 });
  const finalReply = (id: string) => waitFor(() => replies.find((r) => r['id'] === id && (r['status'] === 'ok' || r['status'] === 'error')), 30_000, 50);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-adv-cloud-'));
    broker = await new TestBroker({ dir: path.join(dir, 'mosquitto') }).start();
    gw = await Gateway.start({ distancePeriodMs: 86_400_000, extra: { upstream: { type: 'mqtt', url: broker.url(), protocolVersion: 5 } } });
    cloud = await mqtt.connectAsync(broker.url(), { protocolVersion: 5, reconnectPeriod: 0 });
    cloud.on('message', (_t, p) => {
      try {
        replies.push(JSON.parse(p.toString()) as Record<string, any>);
      } catch {
        /* not a reply */
      }
    });
    await cloud.subscribeAsync('outpost/adv-gw/cmd/res', { qos: 1 });
    await waitFor(async () => (await gw.metric('outpost_upstream_connects_total')) >= 1, 30_000, 100);
    const outputs = await waitFor(async () => {
      const o = await gw.outputs();
      return o['io.machine-run'] === false && o['io.alarm-lamp'] === true && o['plc1.speed-setpoint'] === 12 ? o : null;
    }, 30_000, 100);
    baseline = { outputs, writes: await gw.driverWrites() };
  }, 120_000);

  afterAll(async () => {
    await cloud?.endAsync().catch(() => undefined);
    await gw?.stop();
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('never receives a 1 MiB command (MQTT 5 maximum packet size), and answers the next one', async () => {
    const received = await gw.metric('outpost_upstream_commands_received_total');
    await send(JSON.stringify({ id: 'huge', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 99, pad: 'x'.repeat(1024 * 1024) } }));
    await send(JSON.stringify({ id: 'after-huge', name: 'points.write', params: { point: 'plc1.distance', value: 1 } }));
    expect(await finalReply('after-huge')).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_RUNTIME_NOT_WRITABLE' } });
    expect(replies.filter((r) => r['id'] === 'huge')).toEqual([]);
    expect(await gw.metric('outpost_upstream_commands_received_total')).toBe(received + 1);
    await intact();
  });

  it('answers bad JSON, deep nesting and 1e999 with errors', async () => {
    await send('{"id":"bad-json",');
    await send(`{"id":"deep","name":"points.write","params":${'['.repeat(1000)}${']'.repeat(1000)}}`);
    await send('{"id":"inf","name":"points.write","params":{"point":"plc1.speed-setpoint","value":1e999}}');
    expect(await finalReply('deep')).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_UPLINK_COMMAND' } });
    expect(await finalReply('inf')).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_HAL_VALUE' } });
    await waitFor(() => replies.find((r) => r['id'] === null && r['error']?.code === 'OUTPOST_E_UPLINK_COMMAND'), 30_000, 50);
    await intact();
  });

  it('runs a redelivered command id once', async () => {
    const cmd = JSON.stringify({ id: 'redelivered', name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 12 } });
    await send(cmd);
    expect(await finalReply('redelivered')).toMatchObject({ status: 'ok' });
    baseline.writes = await gw.driverWrites();
    const mark = replies.length;
    await send(cmd);
    await waitFor(() => replies.slice(mark).find((r) => r['id'] === 'redelivered' && r['status'] === 'error'), 30_000, 50);
    expect(replies.slice(mark).find((r) => r['id'] === 'redelivered')).toMatchObject({ error: { code: 'OUTPOST_E_UPLINK_COMMAND_DUPLICATE' } });
    await intact();
  });

  it('refuses most of a flood of 500 commands as busy and stays healthy', async () => {
    const mark = replies.length;
    await Promise.all(Array.from({ length: 500 }, (_, i) => send(JSON.stringify({ id: `flood-${i}`, name: 'points.write', params: { point: 'plc1.speed-setpoint', value: 12 } }))));
    const finals = await waitFor(() => {
      const f = replies.slice(mark).filter((r) => String(r['id']).startsWith('flood-') && (r['status'] === 'ok' || r['status'] === 'error'));
      return f.length === 500 ? f : null;
    }, 60_000, 100);
    const ok = finals.filter((r) => r['status'] === 'ok').length;
    expect(finals.filter((r) => r['error']?.code === 'OUTPOST_E_UPLINK_COMMAND_BUSY').length).toBe(500 - ok);
    expect(ok).toBeLessThan(500);
    baseline.writes += ok;
    await intact();
    expect((await fetch(`${gw.api}/healthz`)).status).toBe(200);
  }, 90_000);
});
