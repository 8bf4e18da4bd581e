import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A manufactured swtpm for benchmarks: EK + EK certificate from a local CA, TCP data port, control on port+1. */
export interface BenchSwtpm {
  readonly port: number;
  readonly dir: string;
  readonly ekRoots: string;
  readonly setupMs: number;
  stop(): Promise<void>;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function listening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => (c.destroy(), resolve(true)));
      c.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`swtpm not listening on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function manufactureSwtpm(localCaBase?: string): Promise<BenchSwtpm> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-tpm-'));
  const ca = localCaBase ?? dir;
  if (localCaBase === undefined) {
    mkdirSync(join(ca, 'localca'), { recursive: true });
    writeFileSync(join(ca, 'localca.conf'), `statedir = ${ca}/localca\nsigningkey = ${ca}/localca/signkey.pem\nissuercert = ${ca}/localca/issuercert.pem\ncertserial = ${ca}/localca/certserial\n`);
    copyFileSync('/etc/swtpm-localca.options', join(ca, 'localca.options'));
  }
  mkdirSync(join(dir, 'state'));
  writeFileSync(join(dir, 'setup.conf'), `create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = ${ca}/localca.conf\ncreate_certs_tool_options = ${ca}/localca.options\nactive_pcr_banks = sha256\n`);
  const t0 = performance.now();
  const r = spawnSync('swtpm_setup', ['--tpm2', '--tpmstate', join(dir, 'state'), '--config', join(dir, 'setup.conf'), '--create-ek-cert', '--overwrite'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`swtpm_setup failed (apt-get install swtpm swtpm-tools): ${r.stderr}`);
  const setupMs = performance.now() - t0;
  const ekRoots = join(dir, 'ek-roots.pem');
  writeFileSync(ekRoots, readFileSync(join(ca, 'localca', 'swtpm-localca-rootca-cert.pem'), 'utf8') + readFileSync(join(ca, 'localca', 'issuercert.pem'), 'utf8'));
  let port = 0;
  for (let i = 0; i < 50 && port === 0; i++) {
    const p = 20000 + Math.floor(Math.random() * 40000);
    if ((await bindable(p)) && (await bindable(p + 1))) port = p;
  }
  const proc: ChildProcess = spawn(
    'swtpm',
    ['socket', '--tpm2', '--server', `type=tcp,port=${port},bindaddr=127.0.0.1`, '--ctrl', `type=tcp,port=${port + 1},bindaddr=127.0.0.1`, '--tpmstate', `dir=${join(dir, 'state')}`, '--flags', 'not-need-init,startup-clear'],
    { stdio: 'ignore' },
  );
  await listening(port + 1, 10_000);
  return {
    port,
    dir,
    ekRoots,
    setupMs,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
