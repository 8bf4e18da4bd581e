import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, waitForPort } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const E2E_DIR = path.join(REPO, '.image-build', 'e2e');
export const HOOK = path.join(REPO, 'test', 'e2e', 'guest', 'hook.mjs');

/** The built x86-64 image (raw disk in the build's work folder); `npm run test:e2e` builds it first. */
export function builtDisk(target = 'x86-64'): string {
  const out = process.env['OUTPOST_E2E_BUILD'] ?? path.join(REPO, '.image-build', 'out');
  const disk = path.join(out, target, 'work', 'disk.img');
  if (!existsSync(disk)) throw new Error(`no built image at ${disk}: run \`outpost image build --target ${target}\` (npm run test:e2e does)`);
  return disk;
}

/** A mosquitto on 127.0.0.1:<free port>, the "cloud" side the gateway's readings must reach. */
export async function startMosquitto(dir: string): Promise<{ port: number; proc: TestProcess }> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, `mosquitto-${port}.conf`);
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const proc = startProcess('mosquitto', ['-c', conf]);
  await waitForPort(port);
  return { port, proc };
}

export interface GuestStatus {
  hostname: string;
  machineId: string;
  slot: string;
  dataBytes: number;
  bootId: string;
}

/** A command reply from the gateway's uplink (`<prefix>/<gateway>/cmd/res`). */
export interface CommandReply {
  id: string | null;
  status: 'accepted' | 'progress' | 'ok' | 'error';
  state?: string;
  percent?: number;
  result?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/** A system event the gateway sent upstream (`<prefix>/<gateway>/system`). */
export interface SystemEventBody {
  event: string;
  time: number;
  bootId: string;
  data: Record<string, unknown>;
}

/**
 * The host side: what the gateway's own MQTT uplink sends to the "cloud" broker (readings in data batches,
 * system events, command replies, status) and the test hook's remote shell and status announcements.
 */
export class GuestLink {
  readonly readings: Array<{ route: string; device: string; point: string; at: number }> = [];
  readonly systemEvents: SystemEventBody[] = [];
  readonly replies: CommandReply[] = [];
  readonly statuses: GuestStatus[] = [];
  private readonly results = new Map<string, (r: { code: number; stdout: string; stderr: string }) => void>();
  private constructor(
    readonly client: MqttClient,
    readonly gatewayId: string,
  ) {
    const base = `outpost/${gatewayId}/`;
    client.on('message', (topic, payload) => {
      if (topic === 'e2e/status') this.statuses.push(JSON.parse(payload.toString()) as GuestStatus);
      else if (topic.startsWith('e2e/result/')) this.results.get(topic.slice('e2e/result/'.length))?.(JSON.parse(payload.toString()));
      else if (topic.startsWith(`${base}data/`)) {
        const batch = JSON.parse(payload.toString()) as { route: string; records: Array<{ message: { kind: string; body: { device: string; point: string } } }> };
        for (const r of batch.records) if (r.message.kind === 'reading') this.readings.push({ route: batch.route, device: r.message.body.device, point: r.message.body.point, at: Date.now() });
      } else if (topic === `${base}system`) {
        const batch = JSON.parse(payload.toString()) as { records: Array<{ message: { body: SystemEventBody } }> };
        for (const r of batch.records) this.systemEvents.push(r.message.body);
      } else if (topic === `${base}cmd/res`) this.replies.push(JSON.parse(payload.toString()) as CommandReply);
    });
  }

  static async connect(port: number, gatewayId: string): Promise<GuestLink> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: `e2e-host-${randomUUID().slice(0, 8)}` });
    await client.subscribeAsync(['e2e/status', 'e2e/result/#', `outpost/${gatewayId}/data/#`, `outpost/${gatewayId}/system`, `outpost/${gatewayId}/cmd/res`], { qos: 1 });
    return new GuestLink(client, gatewayId);
  }

  /** Sends a command to the gateway's uplink (`cmd/req`); its replies collect in `replies` under `id`. */
  async command(id: string, name: string, params: unknown): Promise<void> {
    await this.client.publishAsync(`outpost/${this.gatewayId}/cmd/req`, JSON.stringify({ id, name, params }), { qos: 1 });
  }

  /** Waits for the final reply (`ok` or `error`) to command `id`. */
  async finalReply(id: string, timeoutMs: number): Promise<CommandReply> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.replies.find((x) => x.id === id && (x.status === 'ok' || x.status === 'error'));
      if (r) return r;
      if (Date.now() > deadline) throw new Error(`no final reply to command ${id} within ${timeoutMs} ms; got ${JSON.stringify(this.replies.filter((x) => x.id === id))}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** Waits for a system event upstream named `event` (after the first `after` events). */
  async systemEvent(event: string, after: number, timeoutMs: number): Promise<SystemEventBody> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const e = this.systemEvents.slice(after).find((x) => x.event === event);
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`no ${event} system event upstream within ${timeoutMs} ms; got ${JSON.stringify(this.systemEvents)}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  }

  /** Waits for a status announcement newer than `after` statuses (the hook sends one per boot). */
  async nextStatus(after: number, timeoutMs: number): Promise<GuestStatus> {
    const deadline = Date.now() + timeoutMs;
    while (this.statuses.length <= after) {
      if (Date.now() > deadline) throw new Error(`no status from the guest within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return this.statuses[after] as GuestStatus;
  }

  /** Runs a shell script in the guest (as root) and returns its result. */
  exec(script: string, timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.send({ script, timeoutMs }, timeoutMs + 10_000);
  }

  /** Sends a command without waiting for its answer (reboots, power-cut scenarios). */
  fire(script: string): void {
    void this.client.publishAsync(`e2e/cmd/${randomUUID()}`, JSON.stringify({ script, timeoutMs: 30 * 60_000 }), { qos: 1 });
  }

  private send(msg: object, timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.results.delete(id);
        reject(new Error(`guest command ${JSON.stringify(msg).slice(0, 120)} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.results.set(id, (r) => {
        clearTimeout(timer);
        this.results.delete(id);
        resolve(r);
      });
      void this.client.publishAsync(`e2e/cmd/${id}`, JSON.stringify(msg), { qos: 1 });
    });
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }
}

/** Reads the ESP's grubenv out of a qcow2 overlay offline (qemu-img dd of the ESP, then mtype). */
export function readGrubenv(overlay: string, workDir: string): Record<string, string> {
  const esp = path.join(workDir, 'esp-read.vfat');
  // The ESP is partition 1: 1 MiB in, 64 MiB long (image/targets/x86-64.env).
  const r = spawnSync('qemu-img', ['dd', '-f', 'qcow2', '-O', 'raw', `if=${overlay}`, `of=${esp}`, 'bs=1M', 'skip=1', 'count=64'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`qemu-img dd failed: ${r.stderr}`);
  const t = spawnSync('mtype', ['-i', esp, '::/EFI/BOOT/grubenv'], { encoding: 'utf8' });
  if (t.status !== 0) throw new Error(`mtype failed: ${t.stderr}`);
  return Object.fromEntries(t.stdout.split('\n').filter((l) => /^[A-Za-z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

export class ScenarioClock {
  readonly times: Array<{ scenario: string; seconds: number }> = [];
  async time<T>(scenario: string, fn: () => Promise<T>): Promise<T> {
    const t0 = Date.now();
    try {
      return await fn();
    } finally {
      const seconds = Math.round((Date.now() - t0) / 100) / 10;
      this.times.push({ scenario, seconds });
      console.log(`e2e: ${scenario}: ${seconds} s`);
      mkdirSync(E2E_DIR, { recursive: true });
      writeFileSync(path.join(E2E_DIR, 'scenario-times.json'), `${JSON.stringify(this.times, null, 2)}\n`);
    }
  }
}

/** Where failed scenarios leave their evidence (git-ignored, under .image-build/). */
export const ARTIFACTS = path.join(E2E_DIR, 'artifacts');

const GUEST_EVIDENCE = [
  'echo "== uptime"; cat /proc/uptime',
  'echo "== boot environment through Linux"; grub-editenv /boot/efi/EFI/BOOT/grubenv list',
  'echo "== boot environment as GRUB reads it (the ESP through its FAT, O_DIRECT)"',
  `node --input-type=module -e "import { GrubEnv } from '/opt/outpost/dist/ota/boot/grub-env.js'; console.log([...(await new GrubEnv('/boot/efi/EFI/BOOT/grubenv').readAsBootloader())].map(([k, v]) => k + '=' + v).join(' '))" 2>&1`,
  'echo "== mounts"; findmnt -rn -o TARGET,SOURCE,FSTYPE,OPTIONS /boot/efi /var /data',
  'echo "== update state"; cat /var/lib/outpost/ota/state.json',
  'echo "== units"; systemctl status --no-pager outpost-ota-agent outpost-ota-mark-good outpost-ota-resume 2>&1 | head -60',
  'echo "== journal, this boot"; journalctl -b 0 -o short-monotonic --no-pager -u outpost-ota-agent -u outpost-ota-mark-good -u outpost-ota-resume -u outpost -u boot-efi.mount | tail -400',
  'echo "== failed units"; systemctl --failed --no-pager --plain 2>&1 | head -20',
  'echo "== journal of failed units, this boot"; for u in $(systemctl --failed --no-legend --plain | cut -d" " -f1); do journalctl -b 0 -o short-monotonic --no-pager -u "$u" | tail -40; done',
  'echo "== journal, previous boot"; journalctl -b -1 -o short-monotonic --no-pager -u outpost-ota-agent -u outpost-ota-mark-good -u outpost-ota-resume -u outpost -u boot-efi.mount 2>&1 | tail -400',
  'echo "== kernel FAT messages"; journalctl -k -b 0 --no-pager | grep -i fat | tail -20',
].join('; ');

/**
 * Keeps the evidence of a failed scenario: the guest console log (every boot), and from the guest when it
 * still answers: the boot environment as Linux and as GRUB read it, mounts, the update state and the
 * journals of the OTA units for this and the previous boot. Prints the folder.
 */
export async function keepArtifacts(scenario: string, vm: { logFile(): string } | undefined, link: GuestLink | undefined): Promise<string> {
  const slug = scenario.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40).replace(/-+$/, '');
  const out = path.join(ARTIFACTS, `${new Date().toISOString().replace(/[:.]/g, '-')}-${slug}`);
  mkdirSync(out, { recursive: true });
  try {
    if (vm && existsSync(vm.logFile())) copyFileSync(vm.logFile(), path.join(out, 'console.log'));
  } catch (e) {
    writeFileSync(path.join(out, 'console.error.txt'), String(e));
  }
  if (link) {
    try {
      const r = await link.exec(GUEST_EVIDENCE, 90_000);
      writeFileSync(path.join(out, 'guest.txt'), `${r.stdout}\n--- stderr ---\n${r.stderr}\n--- exit ${r.code} ---\n`);
    } catch (e) {
      writeFileSync(path.join(out, 'guest.txt'), `the guest did not answer: ${String(e)}\n`);
    }
  }
  console.log(`e2e: artifacts of the failed scenario "${scenario}" are in ${out}`);
  return out;
}
