import { hostname, tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../hal/clock.js';
import type { ProvisioningCliDeps } from '../provisioning/cli.js';

/** Real implementations for `outpost factory …` and `outpost identity …`, loaded only when such a command runs. */
export function provisioningWiring(): ProvisioningCliDeps {
  return {
    openTpm: async (spec, logger) => (await import('../provisioning/tpm/open.js')).openTpm(spec, { logger }),
    clock: systemClock,
    stderrIsTTY: Boolean(process.stderr.isTTY),
    writeErr: (text) => process.stderr.write(text),
    hostname: hostname(),
    launchTunnel: async (req) => (await import('../provisioning/tunnel/launcher.js')).launchTunnel(req),
    tunnelEntry: fileURLToPath(new URL('./identity-tunnel.js', import.meta.url)),
    runtimeDir: process.env['RUNTIME_DIRECTORY'] ?? tmpdir(),
  };
}
