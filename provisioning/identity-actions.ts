import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import type { CliIo } from '../src/cli/program.js';
import { OutpostError, describeCause } from '../src/errors/outpost-error.js';
import { readPersistent } from './identity/keys.js';
import { IdentityStore } from './identity/store.js';
import { findTpm2Provider, tpm2OpensslConfig } from './tunnel/openssl-config.js';
import { isLoopback, parseHostPort } from './tunnel/tunnel.js';
import { cliLogger, type ProvisioningCliDeps } from './cli-common.js';

/** Bodies of `outpost identity …` (loaded only when such a command runs). */

export interface TunnelOpts {
  listen: string;
  remote?: string;
  dataDir: string;
  ca?: string;
  servername?: string;
  tcti: string;
  provider?: string;
  printOpensslConfig?: boolean;
  logLevel: string;
}

export async function show(o: { dataDir: string; tpm: string; json?: boolean }, deps: ProvisioningCliDeps, io: CliIo): Promise<number> {
  const store = new IdentityStore(join(o.dataDir, 'identity'));
  const record = await store.readRecord();
  if (record === undefined) throw new OutpostError('OUTPOST_E_IDENTITY_RECORD', 'this unit is not provisioned (no identity record)', { details: { dir: store.dir } });
  const pem = await store.readCertificatePem();
  const cert = pem === undefined ? undefined : new X509Certificate(pem);
  let inTpm: 'yes' | 'no' | 'different key' | 'unknown' = 'unknown';
  let tpmError: string | undefined;
  try {
    const client = await deps.openTpm(o.tpm, await cliLogger('error'));
    try {
      const key = await readPersistent(client, Number.parseInt(record.keyHandle, 16));
      inTpm = key === undefined ? 'no' : key.name.toString('hex') === record.keyName ? 'yes' : 'different key';
    } finally {
      await client.close();
    }
  } catch (e) {
    const c = describeCause(e);
    tpmError = `${c.code ?? 'error'}: ${c.message}`;
  }
  const now = deps.clock.now();
  const notAfter = cert ? Date.parse(cert.validTo) : Date.parse(record.notAfter);
  const days = Math.floor((notAfter - now) / 86_400_000);
  const view = {
    serial: record.serial,
    subject: cert ? cert.subject.replace(/\n/g, ', ') : record.subject,
    issuer: cert?.issuer.replace(/\n/g, ', '),
    notAfter: new Date(notAfter).toISOString(),
    expired: notAfter < now,
    keyHandle: record.keyHandle,
    keyInTpm: inTpm,
    ...(tpmError ? { tpmError } : {}),
    ekSpkiSha256: record.ekSpkiSha256,
    ekMethod: record.ekMethod,
    ...(record.counter ? { counterIndex: record.counter.index } : {}),
    provisionedAt: record.provisionedAt,
    files: store.dir,
  };
  if (o.json) io.out(JSON.stringify(view, null, 2));
  else {
    io.out(`serial       ${view.serial}`);
    io.out(`subject      ${view.subject}`);
    if (view.issuer) io.out(`issuer       ${view.issuer}`);
    io.out(`expires      ${view.notAfter} (${view.expired ? 'EXPIRED' : `in ${days} days`})`);
    io.out(`key handle   ${view.keyHandle}`);
    io.out(`key in TPM   ${inTpm}${tpmError ? ` (${tpmError})` : ''}`);
    io.out(`EK           sha256:${view.ekSpkiSha256} (${view.ekMethod})`);
    io.out(`provisioned  ${view.provisionedAt}`);
    io.out(`files        ${view.files}`);
  }
  return inTpm === 'yes' && !view.expired ? 0 : 1;
}

export async function tunnel(o: TunnelOpts, deps: ProvisioningCliDeps, io: CliIo): Promise<number> {
  const provider = findTpm2Provider(o.provider);
  if (o.printOpensslConfig) {
    io.out(tpm2OpensslConfig(provider).trimEnd());
    return 0;
  }
  if (o.remote === undefined) throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', '--remote <host:port> is required', {});
  const listen = parseHostPort(o.listen, 'listen', true);
  parseHostPort(o.remote, 'remote');
  if (!isLoopback(listen.host)) throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', 'the tunnel accepts plain TCP, so it listens on loopback only', { details: { listen: o.listen } });
  const args = ['--listen', o.listen, '--remote', o.remote, '--identity-dir', join(o.dataDir, 'identity'), '--log-level', o.logLevel];
  if (o.ca) args.push('--ca', o.ca);
  if (o.servername) args.push('--servername', o.servername);
  return deps.launchTunnel({ entry: deps.tunnelEntry, args, tcti: o.tcti, provider, runtimeDir: deps.runtimeDir });
}
