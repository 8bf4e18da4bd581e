import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../hal/clock.js';
import { EnrollmentAuthority } from '../provisioning/factory/authority.js';
import { FactoryCa } from '../provisioning/factory/ca.js';
import { EkTrust } from '../provisioning/factory/ek-trust.js';
import { Ledger } from '../provisioning/factory/ledger.js';
import { Provisioner } from '../provisioning/identity/provisioner.js';
import { IdentityStore } from '../provisioning/identity/store.js';
import { openTpm } from '../provisioning/tpm/open.js';
import { manufactureSwtpm, type BenchSwtpm } from './swtpm.js';
import { mib, summarize } from './stats.js';

/**
 * Factory provisioning time per unit against fresh swtpm instances: `Provisioner.provision` (EK
 * certificate read and chain check, SRK, device key, MakeCredential/ActivateCredential, TPM-signed
 * CSR, certificate, ledger, counter, files, Shutdown) versus a baseline measured in the same run on
 * identically manufactured TPMs: the equivalent tpm2-tools sequence a shell-scripted station would
 * run (one process per step; MakeCredential with `tpm2_makecredential -T none`; the CA's X.509 work
 * is not in the baseline, so the comparison favours it).
 */
const UNITS = Number(process.env['BENCH_UNITS'] ?? 5);

function tool(tcti: string, dir: string, args: string[]): string {
  const [cmd = '', ...rest] = args;
  const r = spawnSync(cmd, rest, { cwd: dir, encoding: 'utf8', env: { ...process.env, TPM2TOOLS_TCTI: tcti } });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** The tpm2-tools equivalent of one provisioning run; returns its wall time in ms. */
function toolsProvision(tpm: BenchSwtpm): number {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-bench-tools-'));
  const tcti = `swtpm:host=127.0.0.1,port=${tpm.port}`;
  const t = (...a: string[]) => tool(tcti, dir, a);
  const secret = randomBytes(32);
  writeFileSync(join(dir, 'secret.bin'), secret);
  const t0 = performance.now();
  t('tpm2_getcap', 'properties-variable');
  t('tpm2_nvread', '0x01c00002', '-C', 'o', '-o', 'ek.der');
  t('openssl', 'x509', '-inform', 'DER', '-in', 'ek.der', '-out', 'ek.pem');
  t('openssl', 'verify', '-CAfile', tpm.ekRoots, '-partial_chain', 'ek.pem');
  t('tpm2_readpublic', '-c', '0x81010001', '-o', 'ek.pub');
  t('tpm2_createprimary', '-C', 'o', '-G', 'ecc256:null:aes128cfb', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt', '-c', 'srk.ctx');
  t('tpm2_evictcontrol', '-C', 'o', '-c', 'srk.ctx', '0x81000001');
  t('tpm2_flushcontext', '-t'); // no resource manager: transients stay loaded after a tool exits (TPM_RC_OBJECT_MEMORY otherwise)
  t('tpm2_create', '-C', '0x81000001', '-G', 'ecc256:ecdsa-sha256', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|sign', '-u', 'key.pub', '-r', 'key.priv');
  t('tpm2_load', '-C', '0x81000001', '-u', 'key.pub', '-r', 'key.priv', '-c', 'key.ctx', '-n', 'key.name');
  t('tpm2_evictcontrol', '-C', 'o', '-c', 'key.ctx', '0x81000002');
  t('tpm2_flushcontext', '-t');
  const name = readFileSync(join(dir, 'key.name')).toString('hex');
  t('tpm2_makecredential', '-T', 'none', '-u', 'ek.pub', '-s', 'secret.bin', '-n', name, '-o', 'cred.out');
  t('tpm2_startauthsession', '--policy-session', '-S', 'session.ctx');
  t('tpm2_policysecret', '-S', 'session.ctx', '-c', 'e');
  t('tpm2_activatecredential', '-c', '0x81000002', '-C', '0x81010001', '-i', 'cred.out', '-o', 'activated.bin', '-P', 'session:session.ctx');
  t('tpm2_flushcontext', 'session.ctx');
  writeFileSync(join(dir, 'csr-info.bin'), createHash('sha256').update(randomBytes(200)).digest());
  t('tpm2_sign', '-c', '0x81000002', '-g', 'sha256', '-s', 'ecdsa', '-f', 'plain', '-o', 'csr.sig', 'csr-info.bin');
  t('tpm2_nvdefine', '0x01000100', '-C', 'o', '-s', '8', '-a', 'ownerread|ownerwrite|authread|authwrite|nt=counter|no_da');
  t('tpm2_nvincrement', '0x01000100', '-C', 'o');
  t('tpm2_shutdown'); // TPM2_SU_STATE by default
  const ms = performance.now() - t0;
  if (!readFileSync(join(dir, 'activated.bin')).equals(secret)) throw new Error('baseline credential activation returned the wrong secret');
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

async function main(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'outpost-bench-prov-'));
  const ca = await FactoryCa.init(join(base, 'ca'), { organization: 'Bench', clock: systemClock });
  const outpostMs: number[] = [];
  const toolsMs: number[] = [];
  const setupMs: number[] = [];
  let rss = process.memoryUsage().rss;
  for (let i = 0; i < UNITS; i++) {
    const a = await manufactureSwtpm();
    const b = await manufactureSwtpm();
    setupMs.push(a.setupMs, b.setupMs);
    try {
      const authority = new EnrollmentAuthority({ ca, trust: await EkTrust.load({ vendorRoots: [a.ekRoots] }), ledger: new Ledger(join(base, 'ledger.jsonl')), clock: systemClock });
      const t0 = performance.now();
      const client = await openTpm(`swtpm:127.0.0.1:${a.port}`);
      const r = await new Provisioner(client, new IdentityStore(join(base, `unit-${i}`, 'identity')), authority).provision(`BENCH-${i}`);
      await client.close({ shutdown: true });
      outpostMs.push(performance.now() - t0);
      if (r.status !== 'provisioned') throw new Error('expected a fresh provisioning');
      rss = Math.max(rss, process.memoryUsage().rss);
      toolsMs.push(toolsProvision(b));
    } finally {
      await a.stop();
      await b.stop();
    }
  }
  rmSync(base, { recursive: true, force: true });
  const o = summarize(outpostMs);
  const t = summarize(toolsMs);
  const s = summarize(setupMs);
  const f = (n: number) => `${n.toFixed(0)} ms`;
  console.log(`provisioning of a fresh unit (swtpm), ${UNITS} units`);
  console.log(`  outpost (TypeScript client, full flow)  median ${f(o.p50)}  mean ${f(o.mean)}  max ${f(o.max)}`);
  console.log(`  baseline (tpm2-tools sequence)          median ${f(t.p50)}  mean ${f(t.mean)}  max ${f(t.max)}`);
  console.log(`  ratio outpost/baseline (median)         ${(o.p50 / t.p50).toFixed(2)}`);
  console.log(`  swtpm_setup per TPM (not included)      median ${f(s.p50)}`);
  console.log(`  peak RSS of the benchmark process       ${mib(rss)}`);
}

await main();
