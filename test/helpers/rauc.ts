import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './net.js';

/**
 * RAUC 1.8 with no system D-Bus and no real /proc/cmdline: a private dbus-daemon exported as the
 * system bus, and `rauc service` in a mount namespace where /proc/cmdline is a file naming the booted
 * slot (`rauc.slot=A`). Both are children of the test, stopped by PID.
 */
export class RaucService {
  private dbus: ChildProcess | null = null;
  private service: ChildProcess | null = null;
  private log = '';
  readonly env: NodeJS.ProcessEnv;

  constructor(
    readonly dir: string,
    readonly systemConf: string,
    readonly cmdline: string,
  ) {
    this.env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'bus')}` };
  }

  async start(): Promise<void> {
    writeFileSync(
      join(this.dir, 'bus.conf'),
      `<busconfig><listen>unix:path=${join(this.dir, 'bus')}</listen><auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n`,
    );
    this.dbus = spawn('dbus-daemon', ['--config-file', join(this.dir, 'bus.conf'), '--nofork', '--nopidfile'], { stdio: 'ignore' });
    await waitFor(() => existsSync(join(this.dir, 'bus')), 10_000);
    this.service = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount --bind "$1" /proc/cmdline && exec rauc -c "$2" service`, 'sh', this.cmdline, this.systemConf], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => (this.log = (this.log + d.toString('utf8')).slice(-20_000));
    this.service.stdout?.on('data', keep);
    this.service.stderr?.on('data', keep);
    await waitFor(() => this.rauc(['status']).status === 0 || this.service?.exitCode !== null, 20_000, 200);
    if (this.service.exitCode !== null) throw new Error(`rauc service exited: ${this.log}`);
  }

  rauc(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync('rauc', ['-c', this.systemConf, ...args], { env: this.env, encoding: 'utf8', timeout: 120_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  serviceLog(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    for (const p of [this.service, this.dbus]) {
      if (p && p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(t);
      }
    }
  }
}

/** RAUC's view of the slots from `rauc status --detailed --output-format=json`. */
export function raucSlots(json: string): { booted: string; primary: string; status: Record<string, string> } {
  const s = JSON.parse(json) as { booted: string; boot_primary: string; slots: Array<Record<string, { bootname: string; boot_status: string }>> };
  const status: Record<string, string> = {};
  let primary = '';
  for (const entry of s.slots) {
    for (const [name, slot] of Object.entries(entry)) {
      status[slot.bootname] = slot.boot_status;
      if (name === s.boot_primary) primary = slot.bootname;
    }
  }
  return { booted: s.booted, primary, status };
}
