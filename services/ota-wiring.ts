import path from 'node:path';
import { OutpostError } from '../src/errors/outpost-error.js';
import type { OtaWiring } from '../ota/system.js';

/**
 * Real implementations the OTA area gets from other areas: the TPM NV counter of the device
 * identity (provisioning/) as the anti-rollback security version. Loaded only when configured.
 */
export function otaWiring(): OtaWiring {
  return {
    tpmSecurityVersion: async ({ tpm, gatewayDataDir }) => {
      const { IdentityStore } = await import('../provisioning/identity/store.js');
      const { openSecurityVersionCounter } = await import('../provisioning/identity/counter-open.js');
      const { CounterSecurityVersionStore } = await import('../ota/flow/security-version.js');
      const dir = path.join(gatewayDataDir, 'identity');
      const record = await new IdentityStore(dir).readRecord();
      if (!record?.counter) {
        throw new OutpostError('OUTPOST_E_OTA_CONFIG', `ota.securityVersion.store is tpm but ${dir}/identity.json records no anti-rollback counter (provision the unit first)`, {
          details: { dir },
        });
      }
      const index = Number.parseInt(record.counter.index, 16);
      return new CounterSecurityVersionStore(() => openSecurityVersionCounter(tpm, { index }), BigInt(record.counter.start));
    },
  };
}
