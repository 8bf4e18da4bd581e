#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { systemClock } from '../hal/clock.js';
import { runCli, type CliIo } from '../src/cli/program.js';
import { ProcSystemProbe } from '../src/health/proc-system-probe.js';
import { SiSystemProbe } from '../src/health/system-probe.js';
import { uplinkCli } from '../src/uplink/cli.js';
import { ClockSync, TIMESYNCD_MARKER } from '../src/uplink/clock-sync.js';
import { DriverRegistry } from './driver-registry.js';
import { provisioningCli } from '../provisioning/cli.js';
import { provisioningWiring } from './provisioning-wiring.js';
import { otaCli } from '../ota/cli.js';
import { otaCommands } from '../ota/fleet.js';
import { otaWiring } from './ota-wiring.js';
import { opcuaCli } from './opcua-cli.js';
import { registerImageCli } from '../image/cli/image-cli.js';
import { brokerCli } from '../src/broker/cli.js';
import { readPassword } from './read-password.js';
import { exposeGc } from './expose-gc.js';

/** Entry point of the `outpost` command: the only place that wires real implementations. */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const io: CliIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  env: process.env,
  fetch: globalThis.fetch,
};

const code = await runCli(process.argv.slice(2), {
  version: pkg.version,
  drivers: new DriverRegistry(),
  // Linux: /proc and /sys read directly (systeminformation spawns shells on every sample); elsewhere systeminformation.
  systemProbe: (mounts) => (process.platform === 'linux' ? new ProcSystemProbe(mounts) : new SiSystemProbe(mounts)),
  // `upstream.type: mqtt`: store + MQTT uplink, loaded only when configured.
  upstreamFactory: async (config, deps) => (await import('../src/uplink/factory.js')).createUplinkFactory({ version: pkg.version })(config, deps),
  // Readings are time-uncertain until systemd-timesyncd says the clock is synchronised.
  clockSync: (logger) => new ClockSync({ clock: systemClock, logger: logger.child({ component: 'clock-sync' }), marker: process.env['OUTPOST_CLOCK_SYNC_MARKER'] ?? TIMESYNCD_MARKER }),
  // `outpost run`: V8's gc(), paced by the local broker so a flood's dead buffers do not keep RSS up.
  gc: exposeGc,
  // One line per area: `outpost <area> …` command groups.
  cliExtensions: [provisioningCli(provisioningWiring()), otaCli(otaWiring()), uplinkCli, opcuaCli, registerImageCli, brokerCli({ readPassword: () => readPassword() })],
  // One line per area: command handlers (e.g. ota.install) registered on the runtime.
  commandRegistrations: [otaCommands({ clock: systemClock, ...otaWiring() })],
}, io);
process.exitCode = code;
