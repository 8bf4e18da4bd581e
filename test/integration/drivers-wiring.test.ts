import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/net.js';
import { startModbusTcpPeer, tempDir } from '../helpers/peers.js';
import { startProcess } from '../helpers/process.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const OUTPOST = path.join(ROOT, 'dist/services/outpost.js');

describe('real transports wired into `outpost run`', () => {
  it('polls a Modbus TCP device (pymodbus) and serves its values on the local API and `outpost points`', async () => {
    const peer = await startModbusTcpPeer();
    const dir = tempDir('wiring');
    const cfg = path.join(dir, 'config.yaml');
    writeFileSync(
      cfg,
      [
        'gateway: { id: wiring, dataDir: ./data }',
        'api: { port: 0 }',
        'broker: { enabled: false }',
        'devices:',
        '  - id: plc',
        '    kind: modbus',
        `    connection: { type: tcp, host: 127.0.0.1, port: ${peer.port} }`,
        '    pollIntervalMs: 200',
        '    points:',
        '      - { id: plc.f, table: holding, address: 200, type: float32 }',
        '      - { id: plc.u2, unitId: 2, table: holding, address: 1, scale: { factor: 0.1 } }',
      ].join('\n'),
    );
    const gw = startProcess(process.execPath, [OUTPOST, 'run', '-c', cfg]);
    try {
      const m = await gw.waitForOutput(/"api":\{"host":"([^"]+)","port":(\d+)\}[^\n]*"msg":"runtime started"/, 30_000);
      const base = `http://${m[1]}:${m[2]}`;
      const points = await waitFor(async () => {
        const body = (await (await fetch(`${base}/api/points`)).json()) as { points: Array<{ point: string; value: unknown; quality: string }> };
        const good = body.points.filter((p) => p.quality === 'good');
        return good.length === 2 ? body.points : undefined;
      }, 20_000);
      expect(points.find((p) => p.point === 'plc.f')?.value).toBe(12.5);
      expect(points.find((p) => p.point === 'plc.u2')?.value).toBeCloseTo(201);
      const cli = await run(process.execPath, [OUTPOST, 'points', '--api', base]);
      expect(cli.stdout).toMatch(/plc\.f\s.*12\.5/);
    } finally {
      await gw.stop();
      await peer.process.stop();
    }
  });

  it('loads node-opcua only for a configured OPC UA device (not for Modbus, serial or GPIO)', async () => {
    // A resolve hook (run by Node's loader) records every module URL loaded after it is registered.
    const dir = tempDir('lazy');
    const log = path.join(dir, 'modules.log');
    const hooks = path.join(dir, 'hooks.mjs');
    writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
      export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }`);
    const script = path.join(dir, 'check.mjs');
    writeFileSync(script, `
      import { register } from 'node:module';
      import { readFileSync, writeFileSync } from 'node:fs';
      register(${JSON.stringify(`file://${hooks}`)});
      const { DriverRegistry } = await import(${JSON.stringify(path.join(ROOT, 'dist/services/driver-registry.js'))});
      const { systemClock } = await import(${JSON.stringify(path.join(ROOT, 'dist/hal/clock.js'))});
      const { pino } = await import(${JSON.stringify(path.join(ROOT, 'node_modules/pino/pino.js'))});
      const deps = { clock: systemClock, logger: pino({ level: 'silent' }), dataDir: ${JSON.stringify(dir)} };
      const r = new DriverRegistry();
      const loaded = () => readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter((u) => u.includes('/node-opcua')).length;
      await r.create({ id: 'm', kind: 'modbus', enabled: true, connection: { type: 'tcp', host: '127.0.0.1', port: 1, timeoutMs: 100, retries: 0, inFlight: 1 }, pollIntervalMs: 1000, pollGroups: [], maxGap: 10, maxRegistersPerRequest: 125, deadUnit: { afterTimeouts: 3, skipMs: 1000 }, points: [] }, deps);
      await r.create({ id: 's', kind: 'serial', enabled: true, connection: { type: 'serial', path: '/dev/null', baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1 }, checksum: 'none', transactions: [], points: [] }, deps);
      await r.create({ id: 'g', kind: 'gpio', enabled: true, connection: { type: 'sysfs', sysfsRoot: '/sys/class/gpio' }, pollIntervalMs: 1000, points: [] }, deps);
      const before = loaded();
      await r.create({ id: 'u', kind: 'opcua', enabled: true, connection: { type: 'opcua', endpoint: 'opc.tcp://127.0.0.1:1', securityMode: 'None', securityPolicy: 'None', auth: { type: 'anonymous' }, timeoutMs: 1000 }, mode: 'subscribe', publishingIntervalMs: 1000, samplingIntervalMs: 500, pollIntervalMs: 1000, maxMonitoredItemsPerCall: 10, points: [] }, deps);
      console.log(JSON.stringify({ before, after: loaded() }));
      process.exit(0);
    `);
    const { stdout } = await run(process.execPath, [script], { cwd: ROOT });
    const r = JSON.parse(stdout.trim().split('\n').pop() as string) as { before: number; after: number };
    expect(r.before).toBe(0);
    expect(r.after).toBeGreaterThan(10);
  });
});
