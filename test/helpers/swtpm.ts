import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SwtpmControl } from '../../provisioning/tpm/transport-swtpm.js';
import { startProcess, type TestProcess } from './process.js';
import { waitForPort } from './net.js';

/**
 * swtpm for tests: manufactured with swtpm_setup (EK + EK certificate from a throw-away local CA),
 * served on a free TCP port with its control channel on port+1 (what tpm2-tools' swtpm TCTI expects).
 * swtpm serves one client at a time: one instance per test file or worker.
 */
export interface Swtpm {
  readonly dir: string;
  readonly port: number;
  readonly ctrlPort: number;
  /** `swtpm:127.0.0.1:<port>`: the Outpost TPM address. */
  readonly spec: string;
  /** `swtpm:host=127.0.0.1,port=<port>`: the TCTI for tpm2-tools. */
  readonly tcti: string;
  readonly control: SwtpmControl;
  /** The local CA's root and intermediate that issued the EK certificate (vendor roots for tests). */
  readonly ekRoots: string;
  stop(): Promise<void>;
  /** Stops and starts the swtpm process on the same state (a full power-off). */
  restart(): Promise<void>;
  tools(args: string[], input?: Buffer): { status: number | null; stdout: string; stderr: string };
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function portPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = 20000 + Math.floor(Math.random() * 40000);
    if ((await bindable(p)) && (await bindable(p + 1))) return p;
  }
  throw new Error('no free pair of ports');
}

/** A local CA directory for swtpm_localca, reusable across TPMs of one test file (one root for all). */
export function makeLocalCa(base: string): string {
  const ca = join(base, 'localca');
  mkdirSync(ca, { recursive: true });
  writeFileSync(join(base, 'localca.conf'), `statedir = ${ca}\nsigningkey = ${ca}/signkey.pem\nissuercert = ${ca}/issuercert.pem\ncertserial = ${ca}/certserial\n`);
  copyFileSync('/etc/swtpm-localca.options', join(base, 'localca.options'));
  return base;
}

export interface SwtpmOptions {
  /** Directory made by makeLocalCa; a new one per TPM by default. */
  readonly localCa?: string;
  /** Write EK certificates to NV (default true). */
  readonly ekCert?: boolean;
  /** Let swtpm_setup create its own (RSA) SRK at 0x81000001 (default false). */
  readonly createSpk?: boolean;
}

export async function startSwtpm(options: SwtpmOptions = {}): Promise<Swtpm> {
  for (const tool of ['swtpm', 'swtpm_setup']) {
    if (spawnSync('which', [tool]).status !== 0) throw new Error(`${tool} is not installed: apt-get install -y swtpm swtpm-tools (scripts/apt-packages.txt)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'outpost-swtpm-'));
  const caBase = options.localCa ?? makeLocalCa(dir);
  const state = join(dir, 'state');
  mkdirSync(state);
  writeFileSync(
    join(dir, 'swtpm_setup.conf'),
    `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${caBase}/localca.conf\ncreate_certs_tool_options = ${caBase}/localca.options\nactive_pcr_banks = sha256\n`,
  );
  const setup = spawnSync(
    'swtpm_setup',
    ['--tpm2', '--tpmstate', state, '--config', join(dir, 'swtpm_setup.conf'), '--overwrite', ...(options.ekCert === false ? [] : ['--create-ek-cert']), ...(options.createSpk ? ['--create-spk'] : [])],
    { encoding: 'utf8' },
  );
  if (setup.status !== 0) throw new Error(`swtpm_setup failed: ${setup.stdout}${setup.stderr}`);
  const ekRoots = join(dir, 'ek-roots.pem');
  if (options.ekCert !== false) {
    writeFileSync(ekRoots, readFileSync(join(caBase, 'localca', 'swtpm-localca-rootca-cert.pem'), 'utf8') + readFileSync(join(caBase, 'localca', 'issuercert.pem'), 'utf8'));
  }
  const port = await portPair();
  let proc: TestProcess | undefined;
  const launch = async () => {
    proc = startProcess('swtpm', [
      'socket', '--tpm2',
      '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`,
      '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`,
      '--tpmstate', `dir=${state}`,
      '--flags', 'not-need-init,startup-clear',
    ]);
    await waitForPort(port + 1);
  };
  await launch();
  const tcti = `swtpm:host=127.0.0.1,port=${port}`;
  return {
    dir,
    port,
    ctrlPort: port + 1,
    spec: `swtpm:127.0.0.1:${port}`,
    tcti,
    control: new SwtpmControl('127.0.0.1', port + 1),
    ekRoots,
    async stop() {
      await proc?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await proc?.stop();
      await launch();
    },
    tools(args, input) {
      const [cmd = '', ...rest] = args;
      const r = spawnSync(cmd, rest, { encoding: 'utf8', input, env: { ...process.env, TPM2TOOLS_TCTI: tcti } });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}
