import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Provisioner } from '../../provisioning/identity/provisioner.js';
import { IDENTITY_FILES, IdentityStore } from '../../provisioning/identity/store.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { pemEncode } from '../../provisioning/x509/der.js';
import { KU, OID, encodeName, extensions, issueCertificate } from '../../provisioning/x509/x509.js';
import { startPrivateBus, type PrivateBus } from '../helpers/abrmd.js';
import { testFactory } from '../helpers/factory.js';
import { freePort, waitFor, waitForPort } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';
import { makeLocalCa, startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/**
 * End to end: swtpm → tpm2-abrmd → `outpost identity tunnel` (tpm2 OpenSSL provider) → mosquitto
 * with `require_certificate true`. MQTT.js publishes through the tunnel's loopback port without TLS.
 */
const bin = resolve(import.meta.dirname, '../../dist/services/outpost.js');
const entry = resolve(import.meta.dirname, '../../dist/services/identity-tunnel.js');

describe('identity tunnel: mTLS to mosquitto with the TPM-held key', () => {
  const base = mkdtempSync(join(tmpdir(), 'outpost-tunnel-'));
  let tpmA: Swtpm;
  let tpmB: Swtpm;
  let bus: PrivateBus;
  let tctiA = '';
  let tctiB = '';
  let broker: TestProcess;
  let tlsPort = 0;
  let plainPort = 0;
  const procs: TestProcess[] = [];
  const dataA = join(base, 'unit-a');
  const dataB = join(base, 'unit-b');
  const dataForeign = join(base, 'unit-b-foreign');
  const brokerCa = join(base, 'broker-ca.pem');

  /** A broker CA and a server certificate for 127.0.0.1/localhost, made with the same X.509 code. */
  function brokerCertificates(): { cert: string; key: string } {
    const ca = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const caSpki = ca.publicKey.export({ type: 'spki', format: 'der' });
    const caName = encodeName([['CN', 'Test Broker CA']]);
    const now = Date.now();
    const caDer = issueCertificate(
      { serial: randomBytes(8), issuer: caName, subject: caName, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000), spki: caSpki, extensions: [extensions.basicConstraints(true), extensions.keyUsage(KU.keyCertSign)] },
      ca.privateKey,
    );
    const srv = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const srvSpki = srv.publicKey.export({ type: 'spki', format: 'der' });
    const srvDer = issueCertificate(
      {
        serial: randomBytes(8),
        issuer: caName,
        subject: encodeName([['CN', 'localhost']]),
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + 86_400_000),
        spki: srvSpki,
        extensions: [extensions.basicConstraints(false), extensions.keyUsage(KU.digitalSignature), extensions.extKeyUsage(OID.serverAuth), extensions.subjectAltName({ dns: ['localhost'], ips: ['127.0.0.1'] })],
      },
      ca.privateKey,
    );
    writeFileSync(brokerCa, pemEncode('CERTIFICATE', caDer));
    const cert = join(base, 'server.pem');
    const key = join(base, 'server.key');
    writeFileSync(cert, pemEncode('CERTIFICATE', srvDer));
    writeFileSync(key, srv.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    return { cert, key };
  }

  /**
   * The tunnel as `outpost identity tunnel` starts it (a launcher and a child), or `direct`ly as the
   * systemd unit does: `node --openssl-config=<printed config> dist/services/identity-tunnel.js`.
   */
  async function tunnel(dataDir: string, tcti: string, mode: 'cli' | 'direct' = 'cli'): Promise<{ port: number; proc: TestProcess }> {
    const port = await freePort();
    const common = ['--listen', `127.0.0.1:${port}`, '--remote', `127.0.0.1:${tlsPort}`, '--ca', brokerCa, '--servername', 'localhost'];
    let proc: TestProcess;
    if (mode === 'cli') {
      proc = startProcess(process.execPath, [bin, 'identity', 'tunnel', ...common, '--data-dir', dataDir, '--tcti', tcti], { env: bus.env });
    } else {
      const printed = spawnSync(process.execPath, [bin, 'identity', 'tunnel', '--print-openssl-config'], { encoding: 'utf8' });
      expect(printed.status).toBe(0);
      const cnf = join(base, 'tpm2-openssl.cnf');
      writeFileSync(cnf, printed.stdout);
      proc = startProcess(process.execPath, [`--openssl-config=${cnf}`, entry, ...common, '--identity-dir', join(dataDir, 'identity')], {
        env: { ...bus.env, TPM2OPENSSL_TCTI: tcti },
      });
    }
    procs.push(proc);
    return { port, proc };
  }

  /** Connects MQTT.js to the tunnel, publishes one QoS 1 message; resolves how it went. */
  function publish(port: number, clientId: string, topic: string): Promise<'published' | 'refused'> {
    return new Promise((done) => {
      const c = mqtt.connect(`mqtt://127.0.0.1:${port}`, { clientId, reconnectPeriod: 0, connectTimeout: 10_000 });
      const finish = (r: 'published' | 'refused') => {
        c.end(true);
        done(r);
      };
      c.once('connect', () => c.publish(topic, 'hello', { qos: 1 }, (e) => finish(e ? 'refused' : 'published')));
      c.once('error', () => finish('refused'));
      c.once('close', () => finish('refused'));
    });
  }

  beforeAll(async () => {
    const localCa = makeLocalCa(join(base, 'vendor'));
    tpmA = await startSwtpm({ localCa });
    tpmB = await startSwtpm({ localCa });
    const factory = await testFactory({ vendorRoots: [tpmA.ekRoots] });
    const foreign = await testFactory({ vendorRoots: [tpmA.ekRoots] });
    for (const [tpm, dir, serial, authority, keyHandle] of [
      [tpmA, dataA, 'GW-A', factory.authority, 0x81000002],
      [tpmB, dataB, 'GW-B', factory.authority, 0x81000002],
      [tpmB, dataForeign, 'GW-B', foreign.authority, 0x81000003],
    ] as const) {
      const client = await openTpm(tpm.spec);
      await new Provisioner(client, new IdentityStore(join(dir, 'identity')), authority, { keyHandle }).provision(serial);
      await client.close({ shutdown: true });
    }
    bus = await startPrivateBus();
    tctiA = await bus.abrmd(tpmA.port);
    tctiB = await bus.abrmd(tpmB.port);

    const server = brokerCertificates();
    tlsPort = await freePort();
    plainPort = await freePort();
    const conf = join(base, 'mosquitto.conf');
    writeFileSync(
      conf,
      [
        'per_listener_settings true',
        // started as root, mosquitto would drop to its own user and could not read the test's files
        'user root',
        'persistence false',
        `listener ${tlsPort} 127.0.0.1`,
        `cafile ${factory.ca.dir}/root/root-ca.pem`,
        `certfile ${server.cert}`,
        `keyfile ${server.key}`,
        'require_certificate true',
        'use_identity_as_username true',
        'allow_anonymous false',
        `listener ${plainPort} 127.0.0.1`,
        'allow_anonymous true',
        'log_dest stderr',
        'log_type all',
        '',
      ].join('\n'),
    );
    broker = startProcess('mosquitto', ['-c', conf]);
    await waitForPort(tlsPort);
    await waitForPort(plainPort);
  });

  afterAll(async () => {
    for (const p of procs) await p.stop();
    await broker?.stop();
    await bus?.stop();
    await tpmA?.stop();
    await tpmB?.stop();
  });

  it('accepts the provisioned unit: MQTT.js publishes through the tunnel, the broker sees the certificate CN', async () => {
    const sub = mqtt.connect(`mqtt://127.0.0.1:${plainPort}`, { reconnectPeriod: 0 });
    await new Promise<void>((r, j) => { sub.once('connect', () => r()); sub.once('error', j); });
    const received: string[] = [];
    sub.on('message', (t, m) => received.push(`${t}=${m.toString()}`));
    await new Promise<void>((r) => sub.subscribe('gw/#', { qos: 1 }, () => r()));
    const { port, proc } = await tunnel(dataA, tctiA);
    await proc.waitForOutput(/tunnel listening/, 20_000);
    expect(await publish(port, 'GW-A', 'gw/GW-A/hello')).toBe('published');
    await waitFor(() => received.includes('gw/GW-A/hello=hello'), 10_000);
    await waitForOutputOf(broker, /New client connected from 127\.0\.0\.1:\d+ as GW-A \(.*u'GW-A'\)/);
    expect(proc.output()).toMatch(/"msg":"tunnel connected"/);
    expect(await proc.stop()).toBe(0);
    // the same unit through a tunnel started as the systemd unit starts it
    const direct = await tunnel(dataA, tctiA, 'direct');
    await direct.proc.waitForOutput(/tunnel listening/, 20_000);
    expect(await publish(direct.port, 'GW-A', 'gw/GW-A/direct')).toBe('published');
    await waitFor(() => received.includes('gw/GW-A/direct=hello'), 10_000);
    await direct.proc.stop();
    sub.end(true);
  });

  it('refuses a unit presenting a certificate issued for another TPM\'s key', async () => {
    const mixed = join(base, 'mixed');
    mkdirSync(join(mixed, 'identity'), { recursive: true });
    cpSync(join(dataB, 'identity', IDENTITY_FILES.key), join(mixed, 'identity', IDENTITY_FILES.key));
    cpSync(join(dataA, 'identity', IDENTITY_FILES.chain), join(mixed, 'identity', IDENTITY_FILES.chain));
    const { port, proc } = await tunnel(mixed, tctiB);
    const code = await proc.exited();
    expect(code).toBe(2);
    expect(proc.output()).toContain('OUTPOST_E_IDENTITY_TUNNEL: the device certificate is not for the key in this TPM');
    expect(await publish(port, 'GW-A', 'gw/GW-A/mixed')).toBe('refused');
  });

  it('refuses identity files copied to another TPM: the key does not load there', async () => {
    const { port, proc } = await tunnel(dataA, tctiB);
    expect(await proc.exited()).toBe(2);
    expect(proc.output()).toContain('OUTPOST_E_IDENTITY_TUNNEL: cannot load the device key and certificate');
    expect(await publish(port, 'GW-A', 'gw/GW-A/copied')).toBe('refused');
  });

  it('refuses a unit certified by a CA the broker does not trust (the broker rejects the handshake); tunnel started as systemd does', async () => {
    const { port, proc } = await tunnel(dataForeign, tctiB, 'direct');
    await proc.waitForOutput(/tunnel listening/, 20_000);
    expect(await publish(port, 'GW-B', 'gw/GW-B/foreign')).toBe('refused');
    await proc.waitForOutput(/"code":"ERR_SSL_TLSV1_ALERT_UNKNOWN_CA".*"msg":"broker refused the tunnel"/, 10_000);
    await proc.stop();
  });
});

function waitForOutputOf(p: TestProcess, re: RegExp): Promise<RegExpMatchArray> {
  return p.waitForOutput(re, 10_000);
}
