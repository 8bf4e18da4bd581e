import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type IClientOptions } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parsePasswordHash, verifyPassword } from '../../src/broker/passwords.js';
import { Gateway, BIN } from '../adversarial/gateway.js';
import { makeTestPki } from '../helpers/mosquitto.js';
import { freePort, waitFor, waitForPort } from '../helpers/net.js';

/**
 * Logging in to the embedded broker as docs/broker.md tells operators to: hashes from `outpost broker
 * passwd`, mosquitto_pub/mosquitto_sub with a user, and the TLS listener where a client certificate
 * (CN = user name) replaces the password.
 */

function passwd(input: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'broker', 'passwd', ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr };
}

describe('outpost broker passwd', () => {
  it('hashes a piped password into a hash that verifies only that password', async () => {
    const r = passwd('s3cret pass\n');
    expect(r.code).toBe(0);
    const hash = parsePasswordHash(r.out);
    expect(await verifyPassword(Buffer.from('s3cret pass'), hash)).toBe(true);
    expect(await verifyPassword(Buffer.from('s3cret pass\n'), hash)).toBe(false);
  });

  it('prints a ready users entry with --user, and refuses an empty password or a bad name (exit 2)', () => {
    const r = passwd('pw\n', '--user', 'hmi');
    expect(r.code).toBe(0);
    const entry = (parseYaml(r.out) as Array<Record<string, unknown>>)[0];
    expect(entry).toMatchObject({ username: 'hmi', publish: ['{prefix}/commands/write/+'] });
    expect(() => parsePasswordHash(String(entry?.['passwordHash']))).not.toThrow();
    expect(passwd('\n').code).toBe(2);
    const bad = passwd('pw\n', '--user', 'a/b');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('OUTPOST_E_CLI_USAGE');
  });
});

describe('logging in to the broker', () => {
  let dir: string;
  let gw: Gateway;
  let tlsPort: number;
  let pki: ReturnType<typeof makeTestPki>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-broker-access-'));
    pki = makeTestPki(path.join(dir, 'pki'));
    tlsPort = await freePort();
    const hash = passwd('hmi-pw\n').out;
    gw = await Gateway.start({
      distancePeriodMs: 86_400_000,
      broker: {
        users: [
          { username: 'hmi', passwordHash: hash, publish: ['{prefix}/commands/write/plc1.speed-setpoint'] },
          // The client certificate of makeTestPki has CN gw-test: a certificate-only user.
          { username: 'gw-test', publish: ['{prefix}/commands/write/plc1.speed-setpoint'] },
        ],
        tls: { port: tlsPort, cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, clientCerts: 'required' },
      },
    });
    await waitForPort(tlsPort, '127.0.0.1', 30_000);
  }, 120_000);

  afterAll(async () => {
    await gw?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs the documented mosquitto_pub command with a user and gets the reply on the user\'s reply topic', async () => {
    const sub = spawn('mosquitto_sub', ['-h', '127.0.0.1', '-p', String(gw.brokerPort), '-u', 'hmi', '-P', 'hmi-pw', '-t', 'outpost/replies/hmi/#', '-C', '1', '-W', '30']);
    let out = '';
    sub.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise<number | null>((resolve) => sub.once('exit', resolve));
    // mosquitto_sub is connected (and subscribes right after) once the broker counts a second client.
    await waitFor(async () => (await gw.metric('outpost_broker_clients_current')) >= 2, 30_000, 50);
    const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(gw.brokerPort), '-u', 'hmi', '-P', 'hmi-pw', '-t', 'outpost/commands/write/plc1.speed-setpoint', '-m', '{"value": 12, "id": "42", "replyTo": "outpost/replies/hmi/1"}'], { encoding: 'utf8', timeout: 30_000 });
    expect(pub.status).toBe(0);
    expect(await done).toBe(0);
    expect(JSON.parse(out)).toEqual({ id: '42', point: 'plc1.speed-setpoint', ok: true, value: 12 });
  });

  const tls = (o: IClientOptions = {}) =>
    mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, { reconnectPeriod: 0, connectTimeout: 20_000, ca: readFileSync(pki.ca), servername: 'localhost', ...o });

  it('logs a client certificate in as the user its CN names, who may then write', async () => {
    const c = await tls({ cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
    await c.subscribeAsync('outpost/replies/gw-test/#');
    const reply = new Promise<Record<string, unknown>>((resolve) => c.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as Record<string, unknown>)));
    await c.publishAsync('outpost/commands/write/plc1.speed-setpoint', JSON.stringify({ value: 12, id: 't1', replyTo: 'outpost/replies/gw-test/t' }), { qos: 1 });
    expect(await reply).toMatchObject({ id: 't1', ok: true });
    await c.endAsync();
  });

  /** 'connected', or 'closed' when the connection ends before a CONNACK (a refused TLS handshake). */
  function tlsOutcome(o: IClientOptions): Promise<'connected' | 'closed'> {
    const c = mqtt.connect(`mqtts://127.0.0.1:${tlsPort}`, { reconnectPeriod: 0, connectTimeout: 20_000, ca: readFileSync(pki.ca), servername: 'localhost', ...o });
    c.on('error', () => undefined);
    return new Promise((resolve) => {
      c.once('connect', () => {
        c.end(true);
        resolve('connected');
      });
      c.once('close', () => resolve('closed'));
    });
  }

  it('refuses TLS without a client certificate, or with one from another CA, in the handshake', async () => {
    const refused = await gw.metric('outpost_broker_auth_failures_total');
    expect(await tlsOutcome({})).toBe('closed');
    const other = path.join(dir, 'pki');
    expect(await tlsOutcome({ cert: readFileSync(path.join(other, 'other.pem')), key: readFileSync(path.join(other, 'other.key')) })).toBe('closed');
    // Refused by TLS itself: no MQTT login was even attempted.
    expect(await gw.metric('outpost_broker_auth_failures_total')).toBe(refused);
    expect(gw.alive()).toBe(true);
  });

  it('refuses a certificate presented with another user\'s name (CONNACK 4), and a certificate-only user on the plain port', async () => {
    await expect(tls({ cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey), username: 'hmi', password: 'hmi-pw' })).rejects.toMatchObject({ code: 4 });
    await expect(mqtt.connectAsync(gw.brokerUrl, { reconnectPeriod: 0, username: 'gw-test', password: '' })).rejects.toMatchObject({ code: 4 });
    expect(gw.alive()).toBe(true);
    await gw.readingsFlow();
  });
});
