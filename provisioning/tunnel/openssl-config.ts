import { existsSync } from 'node:fs';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** Where Debian-family systems install tpm2-openssl's provider (package tpm2-openssl). */
export const TPM2_PROVIDER_CANDIDATES = [
  '/usr/lib/x86_64-linux-gnu/ossl-modules/tpm2.so',
  '/usr/lib/aarch64-linux-gnu/ossl-modules/tpm2.so',
  '/usr/lib/arm-linux-gnueabihf/ossl-modules/tpm2.so',
  '/usr/lib64/ossl-modules/tpm2.so',
  '/usr/lib/ossl-modules/tpm2.so',
];

export function findTpm2Provider(explicit?: string, exists: (p: string) => boolean = existsSync): string {
  if (explicit !== undefined) {
    if (!exists(explicit)) throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', 'the tpm2 OpenSSL provider module does not exist', { details: { provider: explicit } });
    return explicit;
  }
  const found = TPM2_PROVIDER_CANDIDATES.find((p) => exists(p));
  if (found === undefined) {
    throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', 'the tpm2 OpenSSL provider is not installed (apt-get install tpm2-openssl)', { details: { searched: TPM2_PROVIDER_CANDIDATES } });
  }
  return found;
}

/**
 * OpenSSL configuration for Node (`--openssl-config`): the default provider plus tpm2, with
 * `?tpm2.signature` preferring the TPM for signatures. This changes signing for the whole process
 * (software keys can no longer sign), which is why only the dedicated tunnel process loads it.
 * `?provider=tpm2` hangs Node at start-up and no default_properties fails with ERR_SSL_MISSING_PRIVATE_KEY.
 */
export function tpm2OpensslConfig(providerPath: string): string {
  return [
    'nodejs_conf = nodejs_init',
    '[nodejs_init]',
    'providers = provider_sect',
    'alg_section = evp_properties',
    '[evp_properties]',
    'default_properties = ?tpm2.signature',
    '[provider_sect]',
    'default = default_sect',
    'tpm2 = tpm2_sect',
    '[default_sect]',
    'activate = 1',
    '[tpm2_sect]',
    `module = ${providerPath}`,
    'activate = 1',
    '',
  ].join('\n');
}
