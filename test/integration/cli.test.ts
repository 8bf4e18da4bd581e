import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, waitFor } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';

/** The built `outpost` binary (dist/, made by `npm test` before vitest runs), driven as a user would. */
const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'dist/services/outpost.js');

function outpost(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'outpost-cli-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('outpost CLI', () => {
  it('lists only the commands that work', () => {
    const r = outpost('--help');
    expect(r.code).toBe(0);
    const commands = [...r.out.matchAll(/^ {2}([a-z-]+)(?: \[options\])?/gm)].map((m) => m[1]);
    expect(commands).toEqual(expect.arrayContaining(['run', 'config', 'points', 'help']));
  });

  it('validates the demo configuration', () => {
    const r = outpost('config', 'validate', path.join(root, 'config/demo.yaml'));
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^valid: 4 devices, \d+ points, 2 rules, 3 routes/);
  });

  it('exits 2 and names the path and the problem for an invalid configuration', () => {
    const f = path.join(tmp, 'bad.yaml');
    writeFileSync(f, 'devices:\n  - id: plc1\n    kind: modbus\n    connection: { type: tcp, host: h }\n    points:\n      - { id: a, table: holding, address: 70000 }\n');
    for (const r of [outpost('config', 'validate', f), outpost('run', '--config', f)]) {
      expect(r.code).toBe(2);
      expect(r.err).toContain('OUTPOST_E_CONFIG_INVALID');
      expect(r.err).toContain('devices[0].points[0].address: must be ≤ 65535');
    }
  });

  it('exits 2 for a missing file and for unknown commands or options', () => {
    expect(outpost('config', 'validate', path.join(tmp, 'none.yaml')).code).toBe(2);
    expect(outpost('frobnicate').code).toBe(2);
    expect(outpost('run').code).toBe(2);
    expect(outpost('run', '--config', 'x', '--log-level', 'loud').code).toBe(2);
    const badUrl = outpost('points', '--api', 'localhost:8480');
    expect(badUrl.code).toBe(2);
    expect(badUrl.err).toContain('OUTPOST_E_CLI_USAGE');
  });

  it('prints the JSON Schema of the configuration', () => {
    const r = outpost('config', 'schema');
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.out) as { title: string; properties: Record<string, unknown> };
    expect(schema.title).toBe('Outpost configuration');
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['devices', 'rules', 'routes', 'broker', 'api']));
  });

  it('says where the gateway API is when it cannot be reached', async () => {
    const port = await freePort();
    const r = outpost('points', '--api', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.err).toContain('OUTPOST_E_CLI_UNREACHABLE');
  });
});

describe('outpost run on the demo configuration', () => {
  let gw: TestProcess;
  let apiPort: number;
  let brokerPort: number;

  beforeAll(async () => {
    // The demo as shipped, with a drop-in moving its ports and state to this test's own.
    const dir = path.join(tmp, 'demo');
    mkdirSync(path.join(dir, 'config.d'), { recursive: true });
    cpSync(path.join(root, 'config/demo.yaml'), path.join(dir, 'config.yaml'));
    apiPort = await freePort();
    brokerPort = await freePort();
    writeFileSync(path.join(dir, 'config.d/50-test.yaml'), `gateway: { dataDir: ${path.join(dir, 'var')} }\napi: { port: ${apiPort} }\nbroker: { port: ${brokerPort} }\n`);
    gw = startProcess(process.execPath, [bin, 'run', '--config', path.join(dir, 'config.yaml')]);
    await gw.waitForOutput(/"msg":"runtime started"/, 30_000);
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it('has readings of every simulated device within 5 seconds of starting', async () => {
    const devices = await waitFor(async () => {
      const res = await fetch(`http://127.0.0.1:${apiPort}/api/points`).catch(() => null);
      if (!res?.ok) return null;
      const { points } = (await res.json()) as { points: Array<{ device: string; quality: string }> };
      const good = new Set(points.filter((p) => p.quality === 'good').map((p) => p.device));
      return ['plc1', 'ua1', 'gps1', 'io'].every((d) => good.has(d)) ? good : null;
    }, 5000);
    expect(devices.size).toBe(4);
  });

  it('`outpost points` prints the current values of the running gateway', async () => {
    const r = spawnSync(process.execPath, [bin, 'points', '--api', `http://127.0.0.1:${apiPort}`], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^POINT\s+DEVICE\s+VALUE\s+QUALITY\s+AGE\s+SEQ(\s+HELD BY)?$/);
    expect(r.stdout).toMatch(/^plc1\.temp1\s+plc1\s+\d+(\.\d+)? degC\s+good/m);
    const json = spawnSync(process.execPath, [bin, 'points', '--json'], { encoding: 'utf8', env: { ...process.env, OUTPOST_API: `http://127.0.0.1:${apiPort}` } });
    expect(JSON.parse(json.stdout).length).toBeGreaterThan(10);
  });

  it('`outpost write` writes with the token found through --config, refuses a wrong or missing token, and `outpost points` sends it', async () => {
    const dir = path.join(tmp, 'demo');
    const config = path.join(dir, 'config.yaml');
    const run = (args: string[], env: NodeJS.ProcessEnv = {}) => {
      const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, OUTPOST_API: '', OUTPOST_API_TOKEN: '', OUTPOST_API_TOKEN_FILE: '', ...env } });
      return { code: r.status, out: r.stdout, err: r.stderr };
    };
    const ok = run(['write', 'ua1.setpoint', '7.25', '--config', config]);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out.trim()).toBe('ua1.setpoint = 7.25');
    await waitFor(async () => {
      const p = JSON.parse(run(['points', '--json', '--config', config]).out) as Array<{ point: string; value: unknown }>;
      return p.find((x) => x.point === 'ua1.setpoint')?.value === 7.25;
    }, 10_000);
    const token = readFileSync(path.join(dir, 'var', 'api-token'), 'utf8').trim();
    expect(run(['write', 'ua1.setpoint', '7.5', '--api', `http://127.0.0.1:${apiPort}`], { OUTPOST_API_TOKEN: token }).code).toBe(0);
    const wrong = run(['write', 'ua1.setpoint', '1', '--api', `http://127.0.0.1:${apiPort}`], { OUTPOST_API_TOKEN: 'x'.repeat(43) });
    expect(wrong.code).toBe(2);
    expect(wrong.err).toContain("OUTPOST_E_API_UNAUTHORIZED: the bearer token is not this gateway's");
    // A configuration whose data directory holds no token: the 401 says where the token was looked for.
    const other = path.join(tmp, 'other.yaml');
    writeFileSync(other, `gateway: { dataDir: ${path.join(tmp, 'other-data')} }\napi: { port: ${apiPort} }\n`);
    const missing = run(['write', 'ua1.setpoint', '1', '--config', other]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain(`OUTPOST_E_API_UNAUTHORIZED: this request needs Authorization: Bearer <token>; no token file at ${path.join(tmp, 'other-data', 'api-token')}`);
    const unreadable = run(['write', 'ua1.setpoint', '1', '--api', `http://127.0.0.1:${apiPort}`, '--token-file', path.join(tmp, 'none')]);
    expect(unreadable.code).toBe(1);
    expect(unreadable.err).toContain('OUTPOST_E_API_TOKEN');
    const ro = run(['write', 'plc1.temp1', '1', '--config', config]);
    expect(ro.code).toBe(2);
    expect(ro.err).toContain('OUTPOST_E_RUNTIME_NOT_WRITABLE');
  });

  it('logs JSON lines with a component per line', () => {
    const lines = gw.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.find((l) => l['msg'] === 'runtime started')).toMatchObject({ component: 'runtime', service: 'outpost', level: 30 });
  });

  it('fails to start with exit code 1 and a clear error when its broker port is taken', async () => {
    const blocker: Server = createServer();
    const taken = await freePort();
    await new Promise<void>((r) => blocker.listen(taken, '127.0.0.1', r));
    const dir = path.join(tmp, 'taken');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'config.yaml'), `gateway: { dataDir: ${path.join(dir, 'var')} }\napi: { port: 0 }\nbroker: { port: ${taken} }\n`);
    const r = outpost('run', '--config', path.join(dir, 'config.yaml'));
    blocker.close();
    expect(r.code).toBe(1);
    expect(r.err).toContain(`OUTPOST_E_RUNTIME_START: local broker cannot listen on 127.0.0.1:${taken}`);
  });

  it('stops cleanly on SIGTERM', async () => {
    const code = await gw.stop('SIGTERM');
    expect(code).toBe(0);
    expect(gw.output()).toMatch(/"msg":"runtime stopped"/);
  });
});
