import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Runs a command, throwing with its stderr when it fails. */
export function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A root CA and an ECDSA P-256 code-signing certificate made with openssl. */
export function makeSigner(dir: string): { ca: string; cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  sh('openssl', ['req', '-x509', ...ec, '-keyout', 'ca.key.pem', '-out', 'ca.cert.pem', '-days', '30', '-subj', '/CN=Bench CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { cwd: dir });
  writeFileSync(join(dir, 'signer.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,codeSigning\n');
  sh('openssl', ['req', ...ec, '-keyout', 'signer.key.pem', '-out', 'signer.csr', '-subj', '/CN=Bench Signer'], { cwd: dir });
  sh('openssl', ['x509', '-req', '-in', 'signer.csr', '-CA', 'ca.cert.pem', '-CAkey', 'ca.key.pem', '-CAcreateserial', '-out', 'signer.cert.pem', '-days', '30', '-extfile', 'signer.ext'], { cwd: dir });
  return { ca: join(dir, 'ca.cert.pem'), cert: join(dir, 'signer.cert.pem'), key: join(dir, 'signer.key.pem') };
}

/** A redundant U-Boot environment file (2 × 16 KiB) and its fw_env.config. */
export function makeUbootEnv(dir: string): string {
  const env = join(dir, 'uboot.env');
  const conf = join(dir, 'fw_env.config');
  writeFileSync(conf, `${env} 0x0000 0x4000\n${env} 0x4000 0x4000\n`);
  writeFileSync(join(dir, 'env.txt'), 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n');
  sh('mkenvimage', ['-r', '-s', '0x4000', '-o', join(dir, 'env0.bin'), join(dir, 'env.txt')]);
  sh('sh', ['-c', `cat "${join(dir, 'env0.bin')}" "${join(dir, 'env0.bin')}" > "${env}"`]);
  return conf;
}

/**
 * `rauc service` on a private D-Bus, in a mount namespace where /proc/cmdline names slot A, with
 * fw_printenv/fw_setenv wrappers on PATH pointing at a file-backed U-Boot environment.
 */
export class RaucPeer {
  private dbus: ChildProcess | null = null;
  private service: ChildProcess | null = null;
  readonly env: NodeJS.ProcessEnv;

  constructor(
    private readonly dir: string,
    private readonly conf: string,
    fwEnvConfig: string,
  ) {
    const bin = join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    for (const t of ['fw_printenv', 'fw_setenv']) writeFileSync(join(bin, t), `#!/bin/sh\nexec /usr/bin/${t} -c "${fwEnvConfig}" "$@"\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'cmdline.fake'), 'console=ttyS0 rauc.slot=A\n');
    this.env = { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}`, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${join(dir, 'bus')}` };
  }

  get pid(): number | undefined {
    return this.service?.pid;
  }

  async start(): Promise<void> {
    writeFileSync(
      join(this.dir, 'bus.conf'),
      `<busconfig><listen>unix:path=${join(this.dir, 'bus')}</listen><auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n`,
    );
    this.dbus = spawn('dbus-daemon', ['--config-file', join(this.dir, 'bus.conf'), '--nofork', '--nopidfile'], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(join(this.dir, 'bus')); i++) await new Promise((r) => setTimeout(r, 100));
    this.service = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" /proc/cmdline && exec rauc -c "$2" service', 'sh', join(this.dir, 'cmdline.fake'), this.conf], {
      env: this.env,
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      if (spawnSync('rauc', ['-c', this.conf, 'status'], { env: this.env }).status === 0) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('rauc service did not come up');
  }

  rauc(args: string[]): void {
    sh('rauc', ['-c', this.conf, ...args], { env: this.env });
  }

  async stop(): Promise<void> {
    for (const p of [this.service, this.dbus]) {
      if (p && p.exitCode === null && p.signalCode === null) {
        const gone = new Promise((r) => p.once('exit', r));
        p.kill('SIGTERM');
        await gone;
      }
    }
  }
}
