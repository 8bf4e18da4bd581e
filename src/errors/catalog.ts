import { API_CODES } from './codes-api.js';
import { CONFIG_CODES } from './codes-config.js';
import { CORE_CODES } from './codes-core.js';
import { HAL_CODES } from './codes-hal.js';
import { SYSTEM_CODES } from './codes-system.js';
import { ROUTE_CODES } from './codes-route.js';
import { IMAGE_CODES } from './codes-image.js';
import { TPM_CODES } from './codes-tpm.js';
import { OTA_CODES } from './codes-ota.js';
import { UPLINK_CODES } from './codes-uplink.js';
import { DRIVER_CODES } from './codes-drivers.js';
import { BROKER_CODES } from './codes-broker.js';

/** Shape of one catalog entry: what the code means, and whether it reports bad input (CLI exit code 2). */
export interface ErrorSpec {
  readonly area: string;
  readonly summary: string;
  readonly input: boolean;
}

/**
 * Every error code of Outpost. Areas add their own `codes-<area>.ts` and spread it here;
 * docs/errors.md is generated from this object and a test checks that it is up to date.
 */
export const ERROR_CATALOG = {
  ...CORE_CODES,
  ...CONFIG_CODES,
  ...API_CODES,
  ...HAL_CODES,
  ...SYSTEM_CODES,
  ...ROUTE_CODES,
  ...IMAGE_CODES,
  ...TPM_CODES,
  ...OTA_CODES,
  ...UPLINK_CODES,
  ...DRIVER_CODES,
  ...BROKER_CODES,
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;
