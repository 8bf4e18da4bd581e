#!/usr/bin/env node
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OutpostError, isOutpostError } from '../src/errors/outpost-error.js';
import { createLogger } from '../src/log/logger.js';
import { IdentityTunnel, parseHostPort } from '../provisioning/tunnel/tunnel.js';
import { IDENTITY_FILES } from '../provisioning/identity/store.js';

/**
 * The identity tunnel process: loopback TCP in, mutual TLS with the TPM-held device key out.
 * Started by `outpost identity tunnel` (which adds --openssl-config with the tpm2 provider and
 * TPM2OPENSSL_TCTI) or directly by a systemd unit. It must not do anything else: the tpm2
 * provider takes over signing for the whole process.
 */
const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    remote: { type: 'string' },
    'identity-dir': { type: 'string', default: '/var/lib/outpost/identity' },
    ca: { type: 'string' },
    servername: { type: 'string' },
    'log-level': { type: 'string', default: 'info' },
  },
  strict: true,
});

const logger = await createLogger({ level: values['log-level'] ?? 'info', pretty: false });

async function read(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', `cannot read the ${what}`, { cause: e, details: { path } });
  }
}

try {
  if (values.listen === undefined || values.remote === undefined) throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', '--listen and --remote are required', {});
  const dir = values['identity-dir'] ?? '/var/lib/outpost/identity';
  const tunnel = new IdentityTunnel({
    listen: parseHostPort(values.listen, 'listen', true),
    remote: parseHostPort(values.remote, 'remote'),
    keyPem: await read(join(dir, IDENTITY_FILES.key), 'device key file'),
    certChainPem: await read(join(dir, IDENTITY_FILES.chain), 'device certificate chain'),
    ...(values.ca ? { caPem: await read(values.ca, 'broker CA file') } : {}),
    ...(values.servername ? { servername: values.servername } : {}),
    logger,
  });
  await tunnel.start();
  const stop = (signal: string) => {
    logger.info({ signal }, 'tunnel stopping');
    void tunnel.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (e) {
  logger.error({ err: isOutpostError(e) ? e.toJSON() : String(e), cause: e instanceof Error && e.cause instanceof Error ? e.cause.message : undefined }, 'tunnel failed to start');
  process.stderr.write(`outpost identity tunnel: ${isOutpostError(e) ? `${e.code}: ${e.message}` : String(e)}\n`);
  process.exitCode = isOutpostError(e) ? e.exitCode : 1;
}
