import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, existsSync, rmSync, type WriteStream } from 'node:fs';
import path from 'node:path';

/**
 * One QEMU x86-64 guest under software emulation (TCG, single thread, one vCPU) booting an Outpost disk through
 * OVMF, on a throw-away qcow2 overlay so the built image stays pristine. Networking is slirp with restrict=on:
 * the guest reaches only the forwarded host loopback ports (guestfwd → socat). The serial console is kept,
 * time-stamped, in memory and in a log file. Every run is wrapped in `timeout`.
 * Invariants: `overlay` and the OVMF variables survive stop() (a power cut keeps the disk), remove() deletes them.
 */
export interface VmOptions {
  readonly baseDisk: string;
  readonly workDir: string;
  readonly name: string;
  /** Guest address 10.0.2.100+i:port → host 127.0.0.1:port. */
  readonly forwards: ReadonlyArray<{ guestIp: string; guestPort: number; hostPort: number }>;
  readonly fwCfg: ReadonlyArray<{ name: string; file: string }>;
  readonly memMiB?: number;
  /** Virtual disk size of the overlay (larger than the image: the data partition grows on first boot). */
  readonly diskSize?: string;
  readonly timeoutSec: number;
}

export const OVMF_CODE = '/usr/share/OVMF/OVMF_CODE_4M.fd';
export const OVMF_VARS = '/usr/share/OVMF/OVMF_VARS_4M.fd';

export class QemuVm {
  private child: ChildProcess | undefined;
  private console = '';
  private log: WriteStream | undefined;
  private readonly t0 = Date.now();
  private waiters = new Set<() => void>();
  readonly overlay: string;
  readonly vars: string;

  constructor(private readonly o: VmOptions) {
    this.overlay = path.join(o.workDir, `${o.name}.qcow2`);
    this.vars = path.join(o.workDir, `${o.name}-OVMF_VARS.fd`);
  }

  /** Creates the overlay and the firmware variable store (once). */
  prepare(): void {
    if (existsSync(this.overlay)) return;
    const r = spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', path.resolve(this.o.baseDisk), '-F', 'raw', this.overlay, ...(this.o.diskSize ? [this.o.diskSize] : [])], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`qemu-img create failed: ${r.stderr}`);
    copyFileSync(OVMF_VARS, this.vars);
  }

  /** Powers the guest on (again); the console log continues. */
  start(): void {
    this.prepare();
    const net = ['user', 'id=n0', 'restrict=on', ...this.o.forwards.map((f) => `guestfwd=tcp:${f.guestIp}:${f.guestPort}-cmd:socat -lf /dev/null - TCP:127.0.0.1:${f.hostPort}`)].join(',');
    const args = [
      String(this.o.timeoutSec), 'qemu-system-x86_64',
      '-machine', 'q35', '-accel', 'tcg,thread=single', '-smp', '1', '-m', String(this.o.memMiB ?? 1024),
      '-display', 'none', '-monitor', 'none', '-serial', 'stdio',
      '-drive', `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`,
      '-drive', `if=pflash,format=raw,file=${this.vars}`,
      // Default (writeback) cache, not cache=unsafe: the guest's flushes reach the overlay file, so SIGKILL is a fair power cut.
      '-drive', `file=${this.overlay},if=virtio,format=qcow2`,
      '-netdev', net, '-device', 'virtio-net-pci,netdev=n0',
      ...this.o.fwCfg.flatMap((f) => ['-fw_cfg', `name=${f.name},file=${f.file}`]),
    ];
    this.log ??= createWriteStream(this.logFile(), { flags: 'a' });
    this.log.write(`\n===== power on at ${this.elapsed()} s =====\n`);
    const child = spawn('timeout', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const onData = (d: Buffer) => {
      const text = d.toString('utf8').replace(/\r/g, '');
      this.console += text;
      this.log?.write(text);
      for (const w of this.waiters) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
      for (const w of this.waiters) w();
    });
  }

  /** The console log file (every boot of this guest, appended). */
  logFile(): string {
    return path.join(this.o.workDir, `${this.o.name}-console.log`);
  }

  running(): boolean {
    return this.child !== undefined;
  }

  elapsed(): string {
    return ((Date.now() - this.t0) / 1000).toFixed(1);
  }

  output(): string {
    return this.console;
  }

  /** Console text from `from` on (an offset from output().length), so each wait looks at new lines only. */
  mark(): number {
    return this.console.length;
  }

  /** Waits until the console after `from` matches `re`; fails on timeout or when QEMU exits first. */
  waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.console.slice(from).match(re);
        if (m) return done(() => resolve(m));
        if (this.child === undefined) done(() => reject(new Error(`${this.o.name}: QEMU exited before ${re} appeared on the console\n${this.tail()}`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.o.name}: ${re} not on the console within ${timeoutMs} ms\n${this.tail()}`))), timeoutMs);
      const done = (f: () => void) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        f();
      };
      this.waiters.add(check);
      check();
    });
  }

  tail(lines = 40): string {
    return this.console.split('\n').slice(-lines).join('\n');
  }

  /** Pulls the plug: SIGKILL to QEMU, as a power cut. */
  async kill(): Promise<void> {
    const c = this.child;
    if (c === undefined) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    // QEMU is the child of `timeout`: kill it by parent pid first, so it cannot outlive the wrapper.
    spawnSync('pkill', ['-KILL', '-P', String(c.pid)]);
    setTimeout(() => c.kill('SIGKILL'), 2000).unref();
    await exited;
  }

  remove(): void {
    rmSync(this.overlay, { force: true });
    rmSync(this.vars, { force: true });
    this.log?.end();
  }
}
