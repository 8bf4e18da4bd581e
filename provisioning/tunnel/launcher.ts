import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tpm2OpensslConfig } from './openssl-config.js';

export interface TunnelLaunch {
  /** Path of the tunnel entry point (dist/services/identity-tunnel.js). */
  readonly entry: string;
  readonly args: readonly string[];
  /** TCTI for the tpm2 provider: `device:/dev/tpmrm0` on units, `tabrmd:…` with tpm2-abrmd. */
  readonly tcti: string;
  readonly provider: string;
  /** Where the generated OpenSSL config is written (0600) for the child's lifetime. */
  readonly runtimeDir: string;
}

/**
 * Starts the tunnel as a child Node process with the tpm2 OpenSSL provider (the provider changes
 * signing for the whole process, so it never runs inside `outpost`). SIGINT/SIGTERM are forwarded;
 * resolves with the child's exit code once it exits.
 */
export function launchTunnel(req: TunnelLaunch): Promise<number> {
  const cfg = join(req.runtimeDir, `outpost-tunnel-${process.pid}.cnf`);
  writeFileSync(cfg, tpm2OpensslConfig(req.provider), { mode: 0o600 });
  const child = spawn(process.execPath, [`--openssl-config=${cfg}`, req.entry, ...req.args], {
    stdio: 'inherit',
    env: { ...process.env, TPM2OPENSSL_TCTI: req.tcti },
  });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      rmSync(cfg, { force: true });
      resolve(code ?? (signal ? 128 : 1));
    });
    child.once('error', () => {
      rmSync(cfg, { force: true });
      resolve(1);
    });
  });
}
