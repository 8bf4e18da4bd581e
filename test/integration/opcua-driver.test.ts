import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { systemClock } from '../../hal/clock.js';
import { OpcuaDriver } from '../../hal/opcua/driver.js';
import { NodeOpcuaPort, loadNodeOpcua, type NodeOpcuaModules } from '../../hal/opcua/node-opcua-port.js';
import type { OpcuaDeviceConfig } from '../../hal/opcua/schema.js';
import { parse as parseYaml } from 'yaml';
import { opcuaCli, listCertificates } from '../../services/opcua-cli.js';
import { ConfigValidator } from '../../src/config/load.js';
import { runCli, type CliIo } from '../../src/cli/program.js';
import { opcuaDevice } from '../helpers/config.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';
import { serverTrustsRejectedClients, startOpcuaServer, type OpcuaPeer } from '../helpers/opcua-peer.js';
import { tempDir } from '../helpers/peers.js';
import { CollectingSink } from '../helpers/sink.js';

let mods: NodeOpcuaModules;

function driverFor(config: OpcuaDeviceConfig, pkiDir: string): { driver: OpcuaDriver; port: NodeOpcuaPort } {
  if (config.connection.type !== 'opcua') throw new Error('real connection expected');
  const port = new NodeOpcuaPort(config.connection, { pkiDir, logger: silentLogger(), maxItemsPerCall: config.maxMonitoredItemsPerCall }, mods);
  return { driver: new OpcuaDriver(config, port, { clock: systemClock, logger: process.env['OPCUA_TEST_LOG'] ? pino({ level: 'debug' }) : silentLogger() }), port };
}

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`), env: {}, fetch: globalThis.fetch };
  const code = await runCli(args, { version: 'test', drivers: { create: async () => Promise.reject(new Error('unused')) }, systemProbe: () => { throw new Error('unused'); }, cliExtensions: [opcuaCli] }, io);
  return { code, out, err };
}

const device = (endpoint: string, extra: Record<string, unknown> = {}, points?: unknown[]) =>
  opcuaDevice({
    id: 'ua',
    kind: 'opcua',
    connection: { type: 'opcua', endpoint, securityMode: 'SignAndEncrypt', securityPolicy: 'Basic256Sha256', auth: { type: 'userpass', username: 'operator', password: 'secret' }, timeoutMs: 5000 },
    publishingIntervalMs: 100,
    samplingIntervalMs: 100,
    reconnectMaxMs: 2000,
    points: points ?? [
      ...Array.from({ length: 12 }, (_, i) => ({ id: `t${i}`, nodeId: `ns=1;s=T${i}` })),
      { id: 'sp', nodeId: 'ns=1;s=Setpoint', writable: true },
      { id: 'missing', nodeId: 'ns=1;s=Missing' },
    ],
    ...extra,
  });

describe('OPC UA driver against a node-opcua server process (own PKI, auto-accept off)', { timeout: 180_000 }, () => {
  let server: OpcuaPeer;
  let dir: string;
  let clientPki: string;
  beforeAll(async () => {
    mods = await loadNodeOpcua();
    dir = tempDir('opcua-driver');
    clientPki = path.join(dir, 'client-pki');
    server = await startOpcuaServer(path.join(dir, 'server-pki'), { maxPerCall: 5 });
  }, 90_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('rejects the unknown server, connects once both sides trust each other (certs CLI), keeps one client certificate', async () => {
    const { driver, port } = driverFor(device(server.endpoint), clientPki);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('t1', (s) => s.quality.status === 'bad' && (s.quality as { reason: string }).reason === 'untrusted server', 30_000);
      const listed = await cli(['opcua', 'certs', 'list', '--pki', clientPki]);
      expect(listed.code).toBe(0);
      const [entry] = await listCertificates(clientPki);
      expect(entry).toMatchObject({ status: 'rejected', applicationUri: expect.stringContaining('NodeOPCUA-Server') });
      expect(listed.out).toContain(entry!.thumbprint);
      expect((await cli(['opcua', 'certs', 'trust', 'deadbeef00', '--pki', clientPki])).code).toBe(2);
      const trusted = await cli(['opcua', 'certs', 'trust', entry!.thumbprint.slice(0, 12), '--pki', clientPki]);
      expect(trusted).toMatchObject({ code: 0, out: expect.stringContaining('trusted') });
      // Now the server refuses our (unknown to it) client certificate until its administrator trusts it.
      await serverTrustsRejectedClients(server.pki);
      // node-opcua's server does not always notice the move (its in-memory verdict stays "rejected"):
      // its administrator restarts it. Outpost is not restarted: the driver reconnects by itself.
      await server.process.stop();
      await server.restart();
      await sink.waitLatest('t1', (s) => s.quality.status === 'good', 90_000);
      const certFile = path.join(clientPki, 'own', 'certs', 'client_certificate.pem');
      const before = { mtime: statSync(certFile).mtimeMs, pem: readFileSync(certFile, 'utf8') };
      for (let i = 0; i < 12; i++) await sink.waitLatest(`t${i}`, (s) => s.quality.status === 'good' && typeof s.value === 'number');
      await sink.waitLatest('missing', (s) => s.quality.status === 'bad' && (s.quality as { reason: string }).reason === 'BadNodeIdUnknown');
      await sink.waitLatest('sp', (s) => s.quality.status === 'good');
      // Subscriptions were created in chunks the server accepts (MaxMonitoredItemsPerCall = 5: 14 items → 3 calls).
      expect(port.lastSubscribeCalls).toBe(3);
      await driver.write('sp', 42.5);
      await sink.waitLatest('sp', (s) => s.value === 42.5);
      await expect(driver.write('sp', 'not a number')).rejects.toMatchObject({ code: 'OUTPOST_E_HAL_VALUE' });
      await driver.stop();
      // A second connection reuses the client certificate made the first time.
      const again = driverFor(device(server.endpoint), clientPki);
      const sink2 = new CollectingSink();
      await again.driver.start(sink2);
      await sink2.waitLatest('t2', (s) => s.quality.status === 'good', 30_000);
      await again.driver.stop();
      expect(statSync(certFile).mtimeMs).toBe(before.mtime);
      expect(readFileSync(certFile, 'utf8')).toBe(before.pem);
    } finally {
      await driver.stop();
    }
  });

  it('connects with Aes128_Sha256_RsaOaep and Aes256_Sha256_RsaPss, and refuses a wrong password', async () => {
    for (const [mode, policy] of [['Sign', 'Aes128_Sha256_RsaOaep'], ['SignAndEncrypt', 'Aes256_Sha256_RsaPss']] as const) {
      const cfg = device(server.endpoint, {}, [{ id: 'name', nodeId: 'ns=1;s=Name' }]);
      const { driver } = driverFor({ ...cfg, connection: { ...cfg.connection, securityMode: mode, securityPolicy: policy } as OpcuaDeviceConfig['connection'] }, clientPki);
      const sink = new CollectingSink();
      await driver.start(sink);
      await sink.waitLatest('name', (s) => s.value === 'Boiler 1', 30_000).finally(() => driver.stop());
    }
    const cfg = device(server.endpoint, {}, [{ id: 'name', nodeId: 'ns=1;s=Name' }]);
    const port = new NodeOpcuaPort({ ...(cfg.connection as Extract<OpcuaDeviceConfig['connection'], { type: 'opcua' }>), auth: { type: 'userpass', username: 'operator', password: 'wrong' } }, { pkiDir: clientPki, logger: silentLogger(), maxItemsPerCall: 10 }, mods);
    await expect(port.connect()).rejects.toMatchObject({ code: 'OUTPOST_E_OPCUA_CONNECT', details: { auth: 'userpass' } });
  });

  it('applies absolute and percent deadbands on the server', async () => {
    const cfg = device(server.endpoint, {}, [
      { id: 'quiet', nodeId: 'ns=1;s=T5', serverDeadband: { absolute: 100 } },
      { id: 'busy', nodeId: 'ns=1;s=T6' },
      { id: 'level', nodeId: 'ns=1;s=Level', writable: true, serverDeadband: { percent: 5 } },
    ]);
    const { driver } = driverFor(cfg, clientPki);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('level', (s) => s.value === 50, 30_000);
      await waitFor(() => sink.of('busy').length >= 8, 20_000);
      expect(sink.of('quiet')).toHaveLength(1);
      await driver.write('level', 52); // 2 % of the 0..100 EURange: inside the 5 % deadband
      await driver.write('level', 60); // 10 %: reported
      await sink.waitLatest('level', (s) => s.value === 60);
      expect(sink.of('level').map((s) => s.value)).toEqual([50, 60]);
    } finally {
      await driver.stop();
    }
  });

  it('browses the address space and emits point config that validates and runs', async () => {
    const tree = await cli(['opcua', 'browse', server.endpoint, '--node', 'ns=1;s=Plant', '--depth', '2', '--pki', clientPki]);
    expect(tree.code).toBe(0);
    expect(tree.out).toMatch(/^Setpoint {2}ns=1;s=Setpoint {2}Variable = 42\.5$/m);
    expect(tree.out).toMatch(/^Name {2}ns=1;s=Name {2}Variable = "Boiler 1"$/m);
    const emitted = await cli(['opcua', 'browse', server.endpoint, '--node', 'ns=1;s=Plant', '--emit-config', '--match', '^T1', '--device', 'boiler', '--pki', clientPki]);
    expect(emitted.code).toBe(0);
    const doc = parseYaml(emitted.out) as { devices: Array<{ points: Array<{ id: string; nodeId: string }> }> };
    expect(doc.devices[0]?.points.map((p) => p.nodeId).sort()).toEqual(['ns=1;s=T1', 'ns=1;s=T10', 'ns=1;s=T11']);
    const config = new ConfigValidator().validate(doc, ['emitted.yaml'], dir);
    const { driver } = driverFor(config.devices[0] as OpcuaDeviceConfig, clientPki);
    const sink = new CollectingSink();
    await driver.start(sink);
    await sink.waitLatest('boiler.T10', (s) => s.quality.status === 'good', 30_000).finally(() => driver.stop());
    expect((await cli(['opcua', 'browse', 'http://nope', '--pki', clientPki])).code).toBe(2);
    expect((await cli(['opcua', 'browse', server.endpoint, '--depth', '99', '--pki', clientPki])).code).toBe(2);
  });

  it('polls when configured to (mode: poll)', async () => {
    const { driver } = driverFor(device(server.endpoint, { mode: 'poll', pollIntervalMs: 100 }, [{ id: 'count', nodeId: 'ns=1;s=Count' }]), clientPki);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await waitFor(() => sink.of('count').filter((s) => s.value === 7).length >= 3, 30_000);
      expect(driver.counters()['reads_total']).toBeGreaterThanOrEqual(3);
    } finally {
      await driver.stop();
    }
  });
});

describe('OPC UA server killed and restarted mid-subscription', { timeout: 120_000 }, () => {
  it('reports bad(not connected), then the session and subscriptions come back by themselves', async () => {
    mods ??= await loadNodeOpcua();
    const dir = tempDir('opcua-restart');
    const server = await startOpcuaServer(path.join(dir, 'server-pki'));
    const cfg = device(server.endpoint, {}, [{ id: 't3', nodeId: 'ns=1;s=T3' }]);
    const { driver } = driverFor({ ...cfg, connection: { ...cfg.connection, securityMode: 'None', securityPolicy: 'None', auth: { type: 'anonymous' } } as OpcuaDeviceConfig['connection'] }, path.join(dir, 'client-pki'));
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('t3', (s) => s.quality.status === 'good', 30_000);
      await server.process.stop('SIGKILL');
      await sink.waitLatest('t3', (s) => s.quality.status === 'bad', 30_000);
      expect(driver.connected()).toBe(false);
      await server.restart();
      const from = sink.samples.length;
      await waitFor(() => sink.samples.slice(from).filter((s) => s.pointId === 't3' && s.quality.status === 'good').length >= 3, 60_000);
      expect(driver.counters()['reconnects_total']).toBeGreaterThanOrEqual(1);
    } finally {
      await driver.stop();
      await server.stop();
    }
  });
});
