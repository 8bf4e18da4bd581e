import type { Logger } from 'pino';
import { openTpm } from '../tpm/open.js';
import { TpmSecurityVersionCounter, type SecurityVersionCounterOptions } from './counter.js';

/** What the OTA updater needs from the anti-rollback counter (inject this interface; tests can fake it). */
export interface SecurityVersionCounter {
  read(): Promise<bigint>;
  advanceTo(v: bigint): Promise<void>;
}

/**
 * Opens the TPM at `tpm` (default /dev/tpmrm0, else /dev/tpm0) and returns the counter with a
 * `close()` that releases the TPM. Keep it open only while needed: /dev/tpm0 is exclusive.
 */
export async function openSecurityVersionCounter(
  tpm = 'auto',
  options: SecurityVersionCounterOptions & { logger?: Logger } = {},
): Promise<{ counter: SecurityVersionCounter; close(): Promise<void> }> {
  const client = await openTpm(tpm, options.logger ? { logger: options.logger } : {});
  const counter = new TpmSecurityVersionCounter(client, options);
  return { counter, close: () => client.close() };
}
