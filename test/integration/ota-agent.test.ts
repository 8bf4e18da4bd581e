import { spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { loadOtaConfig } from '../../ota/config.js';
import { otaCommands } from '../../ota/fleet.js';
import { CommandRegistry } from '../../src/commands/command.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';
import type { BundleServer } from '../helpers/bundle-server.js';
import { OUTPOST, Rig, fleetFixture, healthServer, type FleetFixture, type Pki } from '../helpers/ota.js';

/**
 * The OTA agent as a real process on a real unix socket (root's half of fleet updates) and the runtime's
 * `ota.fleet.via: agent` handlers talking to it; file-backed slots and boot environments (fw_printenv).
 */
let fx: FleetFixture;
let dir = '';
let pki: Pki;
let bundle = '';
let sha = '';
let srv: BundleServer;

beforeAll(async () => {
  fx = await fleetFixture('outpost-otaagent-', { dropAfter: 600_000, drops: 0 });
  ({ dir, pki, bundle, sha256: sha, srv } = fx);
}, 120_000);
afterAll(() => fx?.close());

async function startAgent(rig: Rig, extra: string[] = []): Promise<{ proc: TestProcess; socket: string }> {
  const socket = join(rig.dir, 'agent.sock');
  const proc = startProcess(process.execPath, [OUTPOST, 'ota', 'agent', '-c', rig.configFile, '--listen', socket, '--log-level', 'info', ...extra]);
  onTestFinished(async () => void (await proc.stop()));
  await proc.waitForOutput(/ota agent listening/, 20_000);
  return { proc, socket };
}

interface Reported {
  event: string;
  data: Record<string, unknown>;
}

/** The runtime's side: its command registry with the agent handlers, and where its system events go. */
async function runtimeSide(
  rig: Rig,
  socket: string,
): Promise<{ commands: CommandRegistry; events: Reported[]; started: () => void; stopping: () => void; statusAnswers: () => number }> {
  const loaded = await loadOtaConfig(rig.configFile);
  const config = { ota: { ...loaded.ota, fleet: { ...loaded.ota.fleet, via: 'agent', agentSocket: socket } }, gateway: { dataDir: loaded.dataDir } } as unknown as Parameters<ReturnType<typeof otaCommands>>[2]['config'];
  // Counts the answers to `ota.status` (the outcome reporter's question), so a test can wait for the reporter's check.
  let answers = 0;
  const commands = new (class extends CommandRegistry {
    override get(name: string) {
      const h = super.get(name);
      if (name !== 'ota.status') return h;
      return { ...h, run: async (...a: Parameters<typeof h.run>) => {
        const r = await h.run(...a);
        answers++;
        return r;
      } };
    }
  })();
  const events: Reported[] = [];
  let started = () => {};
  let stopping = () => {};
  otaCommands({ clock: systemClock })(
    {
      commands,
      onStarted: (f) => (started = f),
      onStopping: (f) => (stopping = f),
      reportSystemEvent: async (event, data) => void events.push({ event, data }),
    },
    silentLogger(),
    { config, files: [rig.configFile] },
  );
  return { commands, events, started: () => started(), stopping: () => stopping(), statusAnswers: () => answers };
}

const run = (commands: CommandRegistry, name: string, params: unknown, progress: (u: { state: string; percent?: number }) => void = () => undefined) => {
  const h = commands.get(name);
  return h.run(h.parse(params), progress, new AbortController().signal);
};

/** One raw request line to the agent; the reply lines it sends before closing. */
function raw(socket: string, payload: Buffer | string): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const c = connect({ path: socket });
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d: string) => (out += d));
    c.on('error', reject);
    c.on('close', () => resolve(out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>)));
    c.on('connect', () => c.write(payload));
  });
}

describe('OTA agent (outpost ota agent) and the runtime with ota.fleet.via: agent', () => {
  it('installs through the agent: progress relayed, the agent writes the slot and reboots; the outcome is reported upstream once', async () => {
    const health = await healthServer({ ok: true });
    onTestFinished(() => health.close());
    const rig = new Rig(join(dir, 'r1'), pki, 'uboot', 4 * 1024 * 1024, { download: { retryDelayMs: 10 }, markGood: { healthUrl: health.url, timeoutSec: 5, intervalSec: 1 } });
    const { socket } = await startAgent(rig);
    const side = await runtimeSide(rig, socket);
    side.started();
    onTestFinished(() => side.stopping());
    const updates: Array<{ percent?: number; state: string }> = [];
    const result = await run(side.commands, 'ota.install', { url: srv.url('v2.raucb'), sha256: sha, version: '2.0.0' }, (u) => updates.push(u));
    expect(result).toEqual({ state: 'reboot-pending', version: '2.0.0', target: 'B', switchVerified: true, rebootScheduled: true });
    expect([...new Set(updates.map((u) => u.state))]).toEqual(['downloading', 'verifying', 'installing', 'reboot-pending']);
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A' });
    expect(readFileSync(rig.slot('B')).subarray(0, 2 * 1024 * 1024).equals(readFileSync(join(dir, 'rootfs.img')))).toBe(true);
    await waitFor(() => rig.reboots().length === 1, 30_000, 100);

    // The trial boot on B: mark-good commits; the runtime's reporter sends ota.committed once.
    rig.boot('B');
    expect((await (await rig.system()).bootCheck.markGood({ reboot: false })).outcome).toBe('committed');
    const status = (await run(side.commands, 'ota.status', {})) as Record<string, unknown>;
    expect(status).toMatchObject({ booted: 'B', primary: 'B', state: 'committed', bundleVersion: '2.0.0' });
    const after = await runtimeSide(rig, socket); // the runtime as it starts on B
    after.started();
    onTestFinished(() => after.stopping());
    await waitFor(() => after.events.length === 1, 30_000, 50);
    expect(after.events[0]).toMatchObject({ event: 'ota.committed', data: { state: 'committed', version: '2.0.0', booted: 'B', updateId: status['updateId'] } });
    // The reporter writes its marker after the upstream took the event: wait for it rather than race it.
    await waitFor(() => existsSync(join(rig.dataDir, 'ota-outcome-reported.json')), 30_000, 50);
    const again = await runtimeSide(rig, socket); // and after a further restart: not again
    again.started();
    onTestFinished(() => again.stopping());
    // Its one question to the agent answered (and the marker read right after), nothing is reported.
    await waitFor(() => again.statusAnswers() >= 1, 30_000, 50);
    await new Promise((r) => setTimeout(r, 500));
    expect(again.events).toEqual([]);
  }, 180_000);

  it("relays the agent's refusal with its error code, writing nothing", async () => {
    const rig = new Rig(join(dir, 'r2'), pki, 'grub', 4 * 1024 * 1024);
    const { socket } = await startAgent(rig);
    const { commands } = await runtimeSide(rig, socket);
    await expect(run(commands, 'ota.install', { url: srv.url('v2.raucb'), sha256: 'f'.repeat(64), version: '2.0.0' })).rejects.toMatchObject({
      code: 'OUTPOST_E_OTA_DIGEST',
      details: { via: 'agent', socket },
    });
    expect(rig.grubList()).toMatchObject({ ORDER: 'A B', B_OK: '1' });
    expect(readFileSync(rig.slot('B')).every((b) => b === 0)).toBe(true);
  }, 90_000);

  it('answers bad requests with an error and keeps serving: not JSON, wrong envelope, unknown command, an endless line', async () => {
    const rig = new Rig(join(dir, 'r3'), pki, 'grub');
    const { proc, socket } = await startAgent(rig);
    expect((await raw(socket, 'not json\n')).at(-1)).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_UPLINK_COMMAND' } });
    expect((await raw(socket, '{"id":"1","name":"ota.install","params":{},"extra":1}\n')).at(-1)).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_UPLINK_COMMAND' } });
    expect((await raw(socket, '{"id":"2","name":"rm.rf"}\n')).at(-1)).toMatchObject({ id: '2', status: 'error', error: { code: 'OUTPOST_E_COMMAND_UNKNOWN' } });
    expect((await raw(socket, '{"id":"3","name":"ota.install","params":{"url":"ftp://x"}}\n')).at(-1)).toMatchObject({ id: '3', status: 'error', error: { code: 'OUTPOST_E_COMMAND_PARAMS' } });
    expect((await raw(socket, Buffer.alloc(70 * 1024, 0x61))).at(-1)).toMatchObject({ status: 'error', error: { code: 'OUTPOST_E_OTA_AGENT' } });
    const ok = await raw(socket, '{"id":"4","name":"ota.status"}\n');
    expect(ok.map((r) => r['status'])).toEqual(['accepted', 'ok']);
    expect(ok[1]).toMatchObject({ id: '4', result: { booted: 'A', state: 'idle' } });
    expect(proc.child.exitCode).toBeNull();
  }, 90_000);

  it('one driver at a time: while the agent installs, `ota resume` (the boot unit) leaves the update alone and another install is refused', async () => {
    const rig = new Rig(join(dir, 'r6'), pki, 'uboot', 4 * 1024 * 1024, { download: { retryDelayMs: 10, stallTimeoutSec: 60 } });
    const { socket } = await startAgent(rig);
    const { commands } = await runtimeSide(rig, socket);
    // A server that sends 64 KiB of the bundle, then holds the rest until released.
    const data = readFileSync(bundle);
    let release = () => {};
    const released = new Promise<void>((r) => (release = r));
    let requests = 0;
    const stall = createServer((req, res) => {
      requests++;
      res.writeHead(200, { 'content-length': String(data.length) });
      res.write(data.subarray(0, 65536));
      void released.then(() => res.end(data.subarray(65536)));
    });
    await new Promise<void>((r) => stall.listen(0, '127.0.0.1', r));
    onTestFinished(() => {
      release();
      stall.closeAllConnections();
      stall.close();
    });
    const url = `http://127.0.0.1:${(stall.address() as { port: number }).port}/v2.raucb`;
    const installing = run(commands, 'ota.install', { url, sha256: sha, version: '2.0.0' });
    await waitFor(() => requests === 1, 20_000, 50);
    const resume = spawnSync(process.execPath, [OUTPOST, 'ota', 'resume', '-c', rig.configFile], { encoding: 'utf8', timeout: 60_000 });
    expect(resume.status, resume.stderr).toBe(0);
    expect(resume.stdout).toMatch(/update state: downloading/);
    const second = spawnSync(process.execPath, [OUTPOST, 'ota', 'install', srv.url('v2.raucb'), '-c', rig.configFile], { encoding: 'utf8', timeout: 60_000 });
    expect(second.status).toBe(2);
    expect(second.stderr).toMatch(/OUTPOST_E_OTA_BUSY/);
    expect(requests).toBe(1); // neither started a second download
    release();
    expect(await installing).toMatchObject({ state: 'reboot-pending', target: 'B' });
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A' });
  }, 90_000);

  it('is a clear OUTPOST_E_OTA_AGENT error when no agent listens; the runtime never loads the updater for it', async () => {
    const rig = new Rig(join(dir, 'r4'), pki, 'grub');
    const socket = join(rig.dir, 'nobody.sock');
    const { commands } = await runtimeSide(rig, socket);
    await expect(run(commands, 'ota.status', {})).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_AGENT', details: { socket } });
    await expect(run(commands, 'ota.install', { url: srv.url('v2.raucb'), sha256: sha, version: '2.0.0' })).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_AGENT' });
    expect(() => commands.get('ota.install').parse({ url: 'ftp://x', sha256: sha, version: '1' })).toThrow(expect.objectContaining({ code: 'OUTPOST_E_COMMAND_PARAMS' }));
  });

  it('runs socket-activated (systemd-socket-activate passes fd 3) and exits when idle', async () => {
    const rig = new Rig(join(dir, 'r5'), pki, 'grub');
    const socket = join(rig.dir, 'activated.sock');
    const act = startProcess('systemd-socket-activate', ['-l', socket, process.execPath, OUTPOST, 'ota', 'agent', '-c', rig.configFile, '--idle-exit-sec', '5', '--log-level', 'info']);
    onTestFinished(async () => void (await act.stop()));
    await waitFor(() => existsSync(socket), 30_000, 50);
    const { commands } = await runtimeSide(rig, socket);
    expect(await run(commands, 'ota.status', {})).toMatchObject({ booted: 'A', state: 'idle' });
    await act.waitForOutput(/"socket":"fd 3"/, 30_000);
    expect(await act.exited()).toBe(0); // idle for 5 s: the agent (exec'd by systemd-socket-activate) exits 0
    expect(act.output()).toMatch(/ota agent stopped/);
  }, 90_000);
});
