import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../../hal/clock.js';
import { buildBundle, type BuildOptions } from '../../ota/bundle/builder.js';
import { createOta, type OtaSystem } from '../../ota/system.js';
import { OtaConfigLoader } from '../../ota/config.js';
import { bundleServer, type BundleServer } from './bundle-server.js';

export const OUTPOST = join(import.meta.dirname, '..', '..', 'dist', 'services', 'outpost.js');

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

export interface Pki {
  readonly dir: string;
  readonly ca: string;
  /** cert/key pairs by name: ec, rsa, noEku, expired, untrusted, leafOfIntermediate (+ intermediate). */
  readonly signers: Record<'ec' | 'rsa' | 'noEku' | 'expired' | 'untrusted' | 'viaIntermediate', { cert: string; key: string }>;
  readonly intermediate: string;
}

const CA_CNF = `[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nserial = serial\nnew_certs_dir = .\ndefault_md = sha256\npolicy = p\nunique_subject = no\ncopy_extensions = copy\n[p]\ncommonName = supplied\n`;

/** A test PKI made with the openssl CLI: a root CA and signers good and bad in every way the updater checks. */
export function makePki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const caExt = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  openssl(['req', '-x509', ...ec, '-nodes', '-keyout', 'ca.key.pem', '-out', 'ca.cert.pem', '-days', '3650', '-subj', '/CN=Outpost Test Root CA', ...caExt], dir);
  openssl(['req', '-x509', ...ec, '-nodes', '-keyout', 'other-ca.key.pem', '-out', 'other-ca.cert.pem', '-days', '3650', '-subj', '/CN=Someone Else CA', ...caExt], dir);
  writeFileSync(join(dir, 'signer.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,codeSigning\n');
  writeFileSync(join(dir, 'noeku.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n');
  writeFileSync(join(dir, 'inter.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  const issue = (name: string, keyArgs: string[], ext: string, ca = 'ca') => {
    openssl(['req', ...keyArgs, '-nodes', '-keyout', `${name}.key.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.cert.pem`, '-CAkey', `${ca}.key.pem`, '-CAcreateserial', '-out', `${name}.cert.pem`, '-days', '365', '-extfile', ext], dir);
    return { cert: join(dir, `${name}.cert.pem`), key: join(dir, `${name}.key.pem`) };
  };
  const signers = {
    ec: issue('release-ec', ec, 'signer.ext'),
    rsa: issue('release-rsa', ['-newkey', 'rsa:2048'], 'signer.ext'),
    noEku: issue('no-eku', ec, 'noeku.ext'),
    untrusted: issue('untrusted', ec, 'signer.ext', 'other-ca'),
    viaIntermediate: { cert: '', key: '' },
    expired: { cert: join(dir, 'expired.cert.pem'), key: join(dir, 'expired.key.pem') },
  };
  issue('intermediate', ec, 'inter.ext');
  signers.viaIntermediate = issue('leaf', ec, 'signer.ext', 'intermediate');
  writeFileSync(join(dir, 'ca.cnf'), CA_CNF);
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  openssl(['req', ...ec, '-nodes', '-keyout', 'expired.key.pem', '-out', 'expired.csr', '-subj', '/CN=expired', '-addext', 'keyUsage=critical,digitalSignature', '-addext', 'extendedKeyUsage=critical,codeSigning'], dir);
  openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.cert.pem', '-keyfile', 'ca.key.pem', '-in', 'expired.csr', '-out', 'expired.cert.pem', '-startdate', '20200101000000Z', '-enddate', '20210101000000Z', '-notext'], dir);
  return { dir, ca: join(dir, 'ca.cert.pem'), signers, intermediate: join(dir, 'intermediate.cert.pem') };
}

/** Random (incompressible) or patterned (compressible) image bytes. */
export function writeImage(file: string, size: number, kind: 'random' | 'text' = 'random'): Buffer {
  let data: Buffer;
  if (kind === 'random') data = randomBytes(size);
  else {
    const line = Buffer.from('outpost rootfs line 0123456789 abcdefghijklmnopqrstuvwxyz\n');
    data = Buffer.alloc(size);
    for (let i = 0; i < size; i += line.length) line.copy(data, i, 0, Math.min(line.length, size - i));
    data.writeUInt32LE(size, 0);
  }
  writeFileSync(file, data);
  return data;
}

export async function outpostBundle(pki: Pki, o: Partial<BuildOptions> & { image: string; output: string; signer?: keyof Pki['signers'] }): Promise<string> {
  const s = pki.signers[o.signer ?? 'ec'];
  await buildBundle({
    images: o.images ?? [{ slotClass: 'rootfs', path: o.image }],
    compatible: o.compatible ?? 'Outpost Test Gateway',
    version: o.version ?? '2.0.0',
    format: o.format ?? 'verity',
    certPem: readFileSync(s.cert, 'utf8'),
    keyPem: readFileSync(s.key, 'utf8'),
    ...(o.signer === 'viaIntermediate' ? { intermediatesPem: readFileSync(pki.intermediate, 'utf8') } : {}),
    ...(o.securityVersion !== undefined ? { securityVersion: o.securityVersion } : {}),
    output: o.output,
    time: new Date(),
    tmpDir: join(o.output, '..'),
  });
  return o.output;
}

/** One schema compilation per test file. */
let loader: OtaConfigLoader | undefined;

export type BootloaderKind = 'uboot' | 'grub' | 'tryboot';

/**
 * A gateway on files: two slot images, a bootloader environment, the kernel command line and boot
 * id the updater reads, and a configuration. `boot(name)` simulates what the firmware leaves behind
 * after booting a slot (a new boot id, `rauc.slot=` / device-tree partition).
 */
export class Rig {
  readonly configFile: string;
  readonly dataDir: string;
  private bootCount = 0;

  constructor(
    readonly dir: string,
    readonly pki: Pki,
    readonly bootloader: BootloaderKind,
    readonly slotSize = 8 * 1024 * 1024,
    extra: Record<string, unknown> = {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.dataDir = join(dir, 'data');
    for (const s of ['A', 'B']) execFileSync('truncate', ['-s', String(slotSize), join(dir, `slot${s}.img`)]);
    let bl: Record<string, unknown>;
    if (bootloader === 'uboot') {
      writeFileSync(join(dir, 'fw_env.config'), `${join(dir, 'uboot.env')} 0x0000 0x4000\n${join(dir, 'uboot.env')} 0x4000 0x4000\n`);
      writeFileSync(join(dir, 'env.txt'), 'BOOT_ORDER=A B\nBOOT_A_LEFT=3\nBOOT_B_LEFT=3\n');
      execFileSync('mkenvimage', ['-r', '-s', '0x4000', '-o', join(dir, 'env0.bin'), join(dir, 'env.txt')]);
      const env0 = readFileSync(join(dir, 'env0.bin'));
      writeFileSync(join(dir, 'uboot.env'), Buffer.concat([env0, env0]));
      bl = { type: 'uboot', fwEnvConfig: 'fw_env.config' };
    } else if (bootloader === 'grub') {
      execFileSync('grub-editenv', [join(dir, 'grubenv'), 'create']);
      execFileSync('grub-editenv', [join(dir, 'grubenv'), 'set', 'ORDER=A B', 'A_OK=1', 'A_TRY=0', 'B_OK=1', 'B_TRY=0']);
      bl = { type: 'grub', grubenv: 'grubenv' };
    } else {
      mkdirSync(join(dir, 'dt'), { recursive: true });
      writeFileSync(join(dir, 'autoboot.txt'), '[all]\ntryboot_a_b=1\nboot_partition=2\n[tryboot]\nboot_partition=3\n');
      bl = { type: 'tryboot', autoboot: 'autoboot.txt', deviceTree: 'dt', partitions: { A: 2, B: 3 } };
    }
    this.configFile = join(dir, 'config.yaml');
    this.writeConfig({ bootloader: bl, ...extra });
    this.boot('A');
  }

  writeConfig(ota: Record<string, unknown>): void {
    const base = {
      compatible: 'Outpost Test Gateway',
      keyring: this.pki.ca,
      slots: [
        { bootname: 'A', device: 'slotA.img' },
        { bootname: 'B', device: 'slotB.img' },
      ],
      cmdline: 'cmdline',
      bootIdFile: 'boot_id',
      lockDir: 'locks',
      rebootCommand: [join(this.dir, 'reboot.sh')],
      markGood: { healthUrl: 'http://127.0.0.1:9/healthz', timeoutSec: 1, intervalSec: 1 },
      ...this.otaExtra,
      ...ota,
    };
    this.otaExtra = { ...this.otaExtra, ...ota };
    writeFileSync(join(this.dir, 'reboot.sh'), `#!/bin/sh\necho "reboot $*" >> ${join(this.dir, 'reboots.log')}\n`, { mode: 0o755 });
    writeFileSync(this.configFile, JSON.stringify({ gateway: { dataDir: './data' }, api: { enabled: false }, broker: { enabled: false }, ota: base }, null, 1));
  }

  private otaExtra: Record<string, unknown> = {};

  /** The firmware booted `slot` (tryboot: `tryboot` says whether by a one-shot trial). */
  boot(slot: 'A' | 'B', tryboot = false): void {
    this.bootCount++;
    writeFileSync(join(this.dir, 'boot_id'), `boot-${this.bootCount}-${randomBytes(4).toString('hex')}\n`);
    writeFileSync(join(this.dir, 'cmdline'), `console=ttyS0 root=/dev/fake rauc.slot=${slot}\n`);
    if (this.bootloader === 'tryboot') {
      const u32 = (n: number) => Buffer.from([0, 0, 0, n]);
      writeFileSync(join(this.dir, 'dt', 'partition'), u32(slot === 'A' ? 2 : 3));
      writeFileSync(join(this.dir, 'dt', 'tryboot'), u32(tryboot ? 1 : 0));
    }
  }

  slot(s: 'A' | 'B'): string {
    return join(this.dir, `slot${s}.img`);
  }

  reboots(): string[] {
    try {
      return readFileSync(join(this.dir, 'reboots.log'), 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      return [];
    }
  }

  async system(): Promise<OtaSystem> {
    loader ??= new OtaConfigLoader();
    const loaded = await loader.load(this.configFile);
    return createOta(loaded.ota, { configDir: loaded.configDir, gatewayDataDir: loaded.dataDir }, { logger: pino({ level: 'silent' }), clock: systemClock, fetch: globalThis.fetch });
  }

  fwPrintenv(): Record<string, string> {
    const out = execFileSync('fw_printenv', ['-c', join(this.dir, 'fw_env.config')], { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }

  grubList(): Record<string, string> {
    const out = execFileSync('grub-editenv', [join(this.dir, 'grubenv'), 'list'], { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }
}

/** Runs the built CLI; resolves with its exit code and output. */
export function cli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [OUTPOST, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code: code ?? (signal ? 128 : null), stdout, stderr });
    });
  });
}

/** A /healthz stand-in answering like the runtime: 200/503 with checks. */
export async function healthServer(state: { ok: boolean; uplink?: boolean }): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((_req, res) => {
    const checks = [
      { name: 'runtime', ok: state.ok, critical: true },
      { name: 'upstream', ok: state.uplink ?? true, critical: true },
    ];
    const ok = checks.every((c) => c.ok);
    res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: ok ? 'ok' : 'unhealthy', checks }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/healthz`, close: () => new Promise((r) => server.close(() => r())) };
}

/** What fleet-command tests share: a test PKI, a signed 2.0.0 bundle of a 2 MiB image, served over HTTP. */
export interface FleetFixture {
  readonly dir: string;
  readonly pki: Pki;
  readonly bundle: string;
  /** sha256 of the bundle file (hex). */
  readonly sha256: string;
  readonly srv: BundleServer;
  close(): Promise<void>;
}

export async function fleetFixture(prefix: string, serve: { dropAfter?: number; drops?: number } = {}): Promise<FleetFixture> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const pki = makePki(join(dir, 'pki'));
  writeImage(join(dir, 'rootfs.img'), 2 * 1024 * 1024);
  const bundle = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'v2.raucb'), version: '2.0.0' });
  const srv = await bundleServer({ 'v2.raucb': bundle }, serve);
  return {
    dir,
    pki,
    bundle,
    sha256: createHash('sha256').update(readFileSync(bundle)).digest('hex'),
    srv,
    close: async () => {
      await srv.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
