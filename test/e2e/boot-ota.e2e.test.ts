import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import type { TestProcess } from '../helpers/process.js';
import { builtDisk, E2E_DIR, GuestLink, HOOK, keepArtifacts, readGrubenv, REPO, ScenarioClock, startMosquitto } from './harness.js';
import { QemuVm } from './qemu-vm.js';

/**
 * End to end, x86-64 under QEMU TCG: the built image boots through OVMF and GRUB's A/B script, Outpost runs,
 * its own MQTT uplink delivers readings to a mosquitto on the host (the "cloud"), and slots switch and fall back
 * through the grubenv convention. Fleet updates arrive as `ota.install` commands on the uplink; the unprivileged
 * runtime hands them to the root OTA agent, which downloads the bundle from a host HTTP server; the
 * outpost-ota-mark-good unit commits or rolls back, and the gateway reports the outcome upstream. The test hook
 * (fw_cfg) only writes the site's uplink drop-in and gives the host a shell for checks and the power-cut case.
 */
const BOOT_MS = 6 * 60_000;
const W = path.join(E2E_DIR, 'work');
const clock = new ScenarioClock();
let vm: QemuVm;
let broker: { port: number; proc: TestProcess };
let link: GuestLink;
let http: Server;
let httpPort: number;
let squashfs: string;
let bundle: string;
let bundleSha: string;
let bundleVersion: string;
const GW = 'gw1';
let throttle = false;
let served = 0;

const OTA = '/usr/bin/node /opt/outpost/dist/services/outpost.js ota';
interface OtaStatus {
  booted?: string;
  primary?: string;
  slots: Array<{ bootname: string; state: string }>;
  update: { state: string };
}

async function otaStatus(): Promise<OtaStatus> {
  const r = await link.exec(`${OTA} status --json -c /etc/outpost/config.yaml`);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as OtaStatus;
}

/** Polls `outpost ota status` in the guest until `ok`, for up to 8 minutes. */
async function waitOta(ok: (s: OtaStatus) => boolean, what: string): Promise<OtaStatus> {
  const t0 = Date.now();
  let last: OtaStatus | undefined;
  while (Date.now() - t0 < 8 * 60_000) {
    last = await otaStatus();
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 5000));
  }
  throw new Error(`ota status never became ${what}: ${JSON.stringify(last)}`);
}

async function reboot(expectSlot: 'A' | 'B'): Promise<void> {
  const from = vm.mark();
  const before = link.statuses.length;
  link.fire('sleep 1; systemctl reboot');
  await vm.waitFor(new RegExp(`OUTPOST-GRUB: booting slot ${expectSlot}`), BOOT_MS, from);
  await vm.waitFor(new RegExp(`OUTPOST-BOOT: slot=${expectSlot} .*outpost\\.service=active`), BOOT_MS, from);
  const st = await link.nextStatus(before, BOOT_MS);
  expect(st.slot).toBe(expectSlot);
}

beforeAll(async () => {
  rmSync(W, { recursive: true, force: true });
  mkdirSync(W, { recursive: true });
  const disk = builtDisk();
  squashfs = path.join(path.dirname(disk), 'rootfs.squashfs');
  bundle = readdirSync(path.dirname(path.dirname(disk))).filter((f) => f.endsWith('.raucb')).map((f) => path.join(path.dirname(path.dirname(disk)), f))[0] as string;
  bundleSha = createHash('sha256').update(readFileSync(bundle)).digest('hex');
  const info = spawnSync(process.execPath, [path.join(REPO, 'dist', 'services', 'outpost.js'), 'ota', 'info', bundle, '--keyring', path.join(REPO, 'image', 'keys', 'ca.cert.pem'), '--json'], { encoding: 'utf8' });
  expect(info.status, info.stderr).toBe(0);
  bundleVersion = (JSON.parse(info.stdout) as { manifest: { version: string } }).manifest.version;
  broker = await startMosquitto(W);
  link = await GuestLink.connect(broker.port, GW);
  httpPort = await freePort();
  http = createServer((req, res) => {
    const file = req.url === '/rootfs.squashfs' ? squashfs : req.url === '/bundle.raucb' ? bundle : undefined;
    if (file === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(statSync(file).size) });
    const s = createReadStream(file, { highWaterMark: 256 * 1024 });
    s.on('data', (chunk) => {
      served += chunk.length;
      if (throttle) {
        s.pause();
        setTimeout(() => s.resume(), 500);
      }
    });
    s.pipe(res);
  });
  await new Promise<void>((r) => http.listen(httpPort, '127.0.0.1', r));
  const testConfig = path.join(W, 'test-config.json');
  writeFileSync(testConfig, JSON.stringify({ hostBroker: 'mqtt://10.0.2.100:1883', gatewayId: GW }));
  vm = new QemuVm({
    baseDisk: disk,
    workDir: W,
    name: 'gw1',
    diskSize: '3G',
    forwards: [
      { guestIp: '10.0.2.100', guestPort: 1883, hostPort: broker.port },
      { guestIp: '10.0.2.101', guestPort: 80, hostPort: httpPort },
    ],
    fwCfg: [
      { name: 'opt/outpost/test-hook', file: HOOK },
      { name: 'opt/outpost/test-config', file: testConfig },
    ],
    timeoutSec: 40 * 60,
  });
}, 120_000);

afterEach(async (ctx) => {
  // A failed scenario keeps the guest console, the OTA units' journals and the boot environment (as Linux
  // and as GRUB will read it) in a git-ignored folder, and prints where.
  if (ctx.task.result?.state === 'fail') await keepArtifacts(ctx.task.name, vm, link);
});

afterAll(async () => {
  await vm?.kill();
  await link?.close();
  await broker?.proc.stop();
  await new Promise<void>((r) => (http ? http.close(() => r()) : r()));
  vm?.remove();
  console.log(`e2e scenario times (s): ${JSON.stringify(clock.times)}`);
});

describe('x86-64 image under QEMU (TCG, OVMF, GRUB A/B)', () => {
  it("1. first boot of slot A: data partition formatted and grown, unit identity, outpost.service up, readings reach the host broker through Outpost's uplink", async () => {
    await clock.time('1 boot A, readings at the host', async () => {
      vm.start();
      await vm.waitFor(/OUTPOST-GRUB: booting slot A/, BOOT_MS);
      await vm.waitFor(/data partition is blank: formatting/, BOOT_MS);
      await vm.waitFor(/OUTPOST-PROVISION: no device identity/, BOOT_MS);
      const boot = await vm.waitFor(/OUTPOST-BOOT: slot=A .*host=(\S+) machine-id=([0-9a-f]{32}) outpost\.service=active/, BOOT_MS);
      const st = await link.nextStatus(0, BOOT_MS);
      expect(st.slot).toBe('A');
      expect(st.machineId).toBe(boot[2]);
      expect(st.hostname).toBe(`outpost-${st.machineId.slice(0, 8)}`);
      // systemd-repart grew the data partition to the end of the 3 GiB disk, resize2fs the file system.
      const grown = await link.exec('for i in $(seq 60); do [ "$(systemctl is-active outpost-growdata.service)" != activating ] && break; sleep 1; done; df -B1 --output=size /data | tail -1');
      expect(Number(grown.stdout.trim())).toBeGreaterThan(1024 * 1024 * 1024);
      // No unit of the image failed at boot (a sandbox too tight for its program shows up here first).
      const failed = await link.exec('systemctl --failed --no-legend --plain | cut -d" " -f1');
      expect(failed.stdout.split('\n').filter((u) => /outpost|repart|growfs/.test(u))).toEqual([]);
      const t0 = Date.now();
      while (link.readings.length < 6 && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 500));
      const devices = new Set(link.readings.map((r) => r.device));
      expect(new Set(link.readings.map((r) => r.route))).toEqual(new Set(['telemetry']));
      expect(link.readings.length).toBeGreaterThanOrEqual(6);
      expect(devices.size).toBeGreaterThanOrEqual(2);
      const ro = await link.exec('touch /usr/x 2>&1; findmnt -no FSTYPE,OPTIONS /');
      expect(ro.stdout).toMatch(/Read-only file system/);
      expect(ro.stdout).toMatch(/squashfs\s+ro/);
    });
  }, 10 * 60_000);

  it('2. OTA over MQTT: ota.install on the uplink, the root agent downloads from a host HTTP server and writes slot B, trial boot, health passes, committed and reported upstream; a further reboot stays on B', async () => {
    await clock.time('2 OTA to B over MQTT, commit, stays on B', async () => {
      const id = link.statuses[0] as { machineId: string };
      const before = await otaStatus();
      expect(before.booted).toBe('A');
      const from = vm.mark();
      const n = link.statuses.length;
      const events = link.systemEvents.length;
      await link.command('ota-1', 'ota.install', { url: 'http://10.0.2.101/bundle.raucb', sha256: bundleSha, version: bundleVersion });
      const done = await link.finalReply('ota-1', 20 * 60_000);
      expect(done, JSON.stringify(done)).toMatchObject({ status: 'ok', result: { state: 'reboot-pending', version: bundleVersion, target: 'B', switchVerified: true, rebootScheduled: true } });
      const mine = link.replies.filter((r) => r.id === 'ota-1');
      expect(mine[0]?.status).toBe('accepted');
      expect(new Set(mine.filter((r) => r.status === 'progress').map((r) => r.state))).toEqual(new Set(['downloading', 'verifying', 'installing', 'reboot-pending']));
      await vm.waitFor(/OUTPOST-GRUB: booting slot B/, 10 * 60_000, from);
      await vm.waitFor(/OUTPOST-BOOT: slot=B .*outpost\.service=active/, BOOT_MS, from);
      expect((await link.nextStatus(n, BOOT_MS)).machineId).toBe(id.machineId);
      // outpost-ota-mark-good.service commits the trial once /healthz passes; the runtime reports it upstream.
      const ev = await link.systemEvent('ota.committed', events, 10 * 60_000);
      expect(ev.data).toMatchObject({ state: 'committed', version: bundleVersion, booted: 'B' });
      const committed = await waitOta((st) => st.update.state === 'committed', 'committed');
      expect(committed.booted).toBe('B');
      expect(committed.primary).toBe('B');
      await reboot('B');
      const after = await waitOta((st) => st.update.state === 'committed' && st.booted === 'B', 'committed on B');
      expect(after.slots.find((x) => x.bootname === 'B')?.state).toBe('good');
      const env = await link.exec('grub-editenv /boot/efi/EFI/BOOT/grubenv list');
      expect(env.stdout).toMatch(/ORDER=B A/);
      // Reported once: the restart after the reboot did not send the outcome again.
      expect(link.systemEvents.slice(events).filter((e) => e.event === 'ota.committed')).toHaveLength(1);
    });
  }, 30 * 60_000);

  it('3. rollback: an update whose Outpost service fails its health check is never marked good; GRUB returns to the old slot and the gateway reports the rollback upstream', async () => {
    await clock.time('3 health rollback, reported upstream', async () => {
      // The hook makes /healthz fail on slot A only (a drop-in it writes at boot when A is booted).
      const w = await link.exec('mkdir -p /var/lib/outpost-e2e && echo A > /var/lib/outpost-e2e/unhealthy-slot');
      expect(w.code, w.stderr).toBe(0);
      const from = vm.mark();
      const events = link.systemEvents.length;
      await link.command('ota-2', 'ota.install', { url: 'http://10.0.2.101/bundle.raucb', sha256: bundleSha, version: bundleVersion });
      expect(await link.finalReply('ota-2', 20 * 60_000)).toMatchObject({ status: 'ok', result: { target: 'A', switchVerified: true, rebootScheduled: true } });
      await vm.waitFor(/OUTPOST-GRUB: booting slot A \(ORDER=A B/, 10 * 60_000, from);
      await vm.waitFor(/OUTPOST-E2E: slot A made unhealthy/, BOOT_MS, from);
      // mark-good times out on the unhealthy trial and reboots; GRUB skips the tried slot A and boots B.
      await vm.waitFor(/OUTPOST-GRUB: booting slot B/, 15 * 60_000, from);
      await vm.waitFor(/OUTPOST-BOOT: slot=B .*outpost\.service=active/, BOOT_MS, from);
      const ev = await link.systemEvent('ota.rolled-back', events, 10 * 60_000);
      expect(ev.data).toMatchObject({ state: 'rolled-back', booted: 'B', version: bundleVersion });
      const st = await waitOta((x) => x.update.state === 'rolled-back', 'rolled-back');
      expect(st.booted).toBe('B');
      expect(st.slots.find((x) => x.bootname === 'A')?.state).toBe('bad');
      await link.exec('rm -f /var/lib/outpost-e2e/unhealthy-slot');
    });
  }, 40 * 60_000);

  it('4. power cut while the updater writes the inactive slot: the next boot is the old slot, not armed for a trial', async () => {
    await clock.time('4 power cut during the slot write', async () => {
      throttle = true;
      served = 0;
      link.fire(`${OTA} install http://10.0.2.101/bundle.raucb > /run/ota-install.log 2>&1`);
      const t0 = Date.now();
      while (served < 8 * 1024 * 1024 && Date.now() - t0 < 180_000) await new Promise((r) => setTimeout(r, 200));
      expect(served).toBeGreaterThanOrEqual(8 * 1024 * 1024);
      await vm.kill(); // power cut mid-download/write
      const env = readGrubenv(vm.overlay, W);
      expect(env['A_OK']).toBe('0'); // the target was marked bad before its first byte: GRUB will not try it
      const from = vm.mark();
      const n = link.statuses.length;
      vm.start();
      await vm.waitFor(/OUTPOST-GRUB: booting slot B/, BOOT_MS, from);
      await vm.waitFor(/OUTPOST-BOOT: slot=B .*outpost\.service=active/, BOOT_MS, from);
      expect((await link.nextStatus(n, BOOT_MS)).slot).toBe('B');
      const st = await otaStatus();
      expect(st.booted).toBe('B');
      throttle = false;
    });
  }, 20 * 60_000);
});
