import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { BIN } from '../adversarial/gateway.js';
import { freePort, waitFor } from '../helpers/net.js';
import { startOpcuaServer, type OpcuaPeer } from '../helpers/opcua-peer.js';
import { tempDir } from '../helpers/peers.js';
import { startProcess } from '../helpers/process.js';

/**
 * Errors keep their causes, end to end through the real binary: the CLI prints the chain on one line
 * (`CODE: message ← errno: …`), log lines carry `err.cause` and never an empty stack, and node-opcua's
 * own console output goes to the logger, never to a command's stdout.
 */

function outpost(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

const jsonLines = (text: string) => text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('cause chains through the real binary', { timeout: 240_000 }, () => {
  let dir: string;
  let restricted: OpcuaPeer;
  let open: OpcuaPeer;
  beforeAll(async () => {
    dir = tempDir('error-causes');
    // A server that offers only unsecured endpoints (so a secure client finds none) and one that offers all.
    [restricted, open] = await Promise.all([
      startOpcuaServer(path.join(dir, 'restricted-pki'), { policies: ['None'], modes: ['None'] }),
      startOpcuaServer(path.join(dir, 'open-pki')),
    ]);
  });
  afterAll(async () => {
    await Promise.all([restricted?.stop(), open?.stop()]);
  });

  it('names EADDRINUSE when the API port is taken', async () => {
    const blocker: Server = createServer();
    const taken = await freePort();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', r));
    try {
      const d = path.join(dir, 'in-use');
      mkdirSync(d, { recursive: true });
      writeFileSync(path.join(d, 'config.yaml'), `gateway: {dataDir: ${path.join(d, 'data')}}\napi: {port: ${taken}}\nbroker: {port: 0}\n`);
      const r = await outpost(['run', '--config', path.join(d, 'config.yaml')]);
      expect(r.code).toBe(1);
      expect(r.err.trim()).toBe(`outpost: OUTPOST_E_RUNTIME_START: local API cannot listen on 127.0.0.1:${taken} ← EADDRINUSE: listen EADDRINUSE: address already in use 127.0.0.1:${taken}`);
      const failed = jsonLines(r.out).find((l) => l['msg'] === 'runtime start failed; stopping what started');
      expect(failed?.['err']).toMatchObject({ code: 'OUTPOST_E_RUNTIME_START', cause: { code: 'EADDRINUSE' } });
      expect(r.out).not.toContain('"stack":""');
    } finally {
      blocker.close();
    }
  });

  it('logs Modbus refused with host, port and ECONNREFUSED, and the OPC UA refusal with node-opcua reason; stdout is only JSON lines', async () => {
    const closed = await freePort();
    const d = path.join(dir, 'run');
    mkdirSync(d, { recursive: true });
    writeFileSync(
      path.join(d, 'config.yaml'),
      [
        `gateway: {dataDir: ${path.join(d, 'data')}}`,
        'api: {port: 0}',
        'broker: {port: 0}',
        'devices:',
        '  - {id: plc, kind: modbus, connection: {type: tcp, host: 127.0.0.1, port: ' + String(closed) + '}, points: [{id: plc.a, table: holding, address: 1}]}',
        `  - {id: ua, kind: opcua, connection: {type: opcua, endpoint: "${restricted.endpoint}", securityMode: SignAndEncrypt, securityPolicy: Basic256Sha256, auth: {type: anonymous}, timeoutMs: 3000}, points: [{id: ua.t, nodeId: "ns=1;s=T1"}]}`,
        '',
      ].join('\n'),
    );
    const gw = startProcess(process.execPath, [BIN, 'run', '--config', path.join(d, 'config.yaml')]);
    let stdout = '';
    gw.child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    try {
      await gw.waitForOutput(/"msg":"modbus connect failed"/, 60_000);
      await gw.waitForOutput(/OUTPOST_E_OPCUA_CONNECT/, 90_000);
      const lines = await waitFor(() => {
        const complete = stdout.slice(0, stdout.lastIndexOf('\n') + 1);
        return complete.length > 0 ? jsonLines(complete) : null;
      });
      const modbus = lines.find((l) => l['msg'] === 'modbus connect failed')?.['err'];
      expect(modbus).toMatchObject({
        code: 'OUTPOST_E_MODBUS_CONNECT',
        message: `cannot connect to 127.0.0.1:${closed}`,
        details: { host: '127.0.0.1', port: closed },
        cause: { code: 'ECONNREFUSED', message: `connect ECONNREFUSED 127.0.0.1:${closed}` },
      });
      const ua = lines.find((l) => JSON.stringify(l['err'] ?? '').includes('OUTPOST_E_OPCUA_CONNECT'))?.['err'] as { message: string; cause: { message: string } };
      expect(ua.message).toBe(`cannot connect to ${restricted.endpoint} (securityMode SignAndEncrypt, securityPolicy Basic256Sha256)`);
      expect(ua.cause.message).toMatch(/Cannot find an Endpoint matching security mode/);
      expect(stdout).not.toContain('"stack":""');
    } finally {
      await gw.stop();
    }
    // Everything the gateway printed on stdout is a JSON log line (node-opcua's own messages included).
    for (const line of stdout.split('\n').filter((l) => l !== '')) expect(() => JSON.parse(line), line).not.toThrow();
  });

  it('`outpost opcua browse` names node-opcua reason for a security mismatch, on one line', async () => {
    const r = await outpost(['opcua', 'browse', restricted.endpoint, '--security-mode', 'SignAndEncrypt', '--security-policy', 'Basic256Sha256', '--timeout', '3000', '--pki', path.join(dir, 'cli-pki')]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    const line = r.err.split('\n').find((l) => l.startsWith('outpost: '));
    expect(line).toMatch(
      new RegExp(`^outpost: OUTPOST_E_OPCUA_CONNECT: cannot connect to ${restricted.endpoint.replace(/\./g, '\\.')} \\(securityMode SignAndEncrypt, securityPolicy Basic256Sha256\\) ← .*Cannot find an Endpoint matching security mode`),
    );
  });

  it('`outpost opcua browse --emit-config > config.d/x.yaml` writes only valid YAML; node-opcua talks on stderr', async () => {
    const r = await outpost(['opcua', 'browse', open.endpoint, '--node', 'ns=1;s=Plant', '--emit-config', '--match', '^T1', '--device', 'boiler', '--pki', path.join(dir, 'emit-pki')]);
    expect(r.code, r.err).toBe(0);
    const doc = parseYaml(r.out) as { devices: Array<{ points: Array<{ nodeId: string }> }> };
    expect(doc.devices[0]?.points.map((p) => p.nodeId).sort()).toEqual(['ns=1;s=T1', 'ns=1;s=T10', 'ns=1;s=T11']);
    expect(r.out).not.toMatch(/NODE-OPCUA|certificate/i);
    // What node-opcua printed (its first-run certificate, warnings) went to the logger on stderr.
    expect(jsonLines(r.err).some((l) => l['library'] === 'node-opcua')).toBe(true);
    // Redirected into a drop-in, the output is a configuration `outpost config validate` accepts.
    const d = path.join(dir, 'emitted');
    mkdirSync(path.join(d, 'config.d'), { recursive: true });
    writeFileSync(path.join(d, 'config.yaml'), `gateway: {dataDir: ${path.join(d, 'data')}}\n`);
    writeFileSync(path.join(d, 'config.d', 'boiler.yaml'), r.out);
    const v = await outpost(['config', 'validate', path.join(d, 'config.yaml')]);
    expect(v.code, v.err).toBe(0);
    expect(v.out).toMatch(/^valid: 1 devices, 3 points/);
  });
});
