import { hostname, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../hal/clock.js';
import type { ProvisioningCliDeps } from '../provisioning/cli.js';
import { openTpm } from '../provisioning/tpm/open.js';
import { launchTunnel } from '../provisioning/tunnel/launcher.js';

/** Real implementations for `outpost factory …` and `outpost identity …`. */
export function provisioningWiring(): ProvisioningCliDeps {
  return {
    openTpm: (spec, logger) => openTpm(spec, { logger }),
    clock: systemClock,
    stderrIsTTY: Boolean(process.stderr.isTTY),
    writeErr: (text) => process.stderr.write(text),
    hostname: hostname(),
    launchTunnel,
    tunnelEntry: fileURLToPath(new URL('./identity-tunnel.js', import.meta.url)),
    runtimeDir: process.env['RUNTIME_DIRECTORY'] ?? tmpdir(),
  };
}
