#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { runCli, type CliIo } from '../src/cli/program.js';
import { SiSystemProbe } from '../src/health/system-probe.js';
import { DriverRegistry } from './driver-registry.js';
import { opcuaCli } from './opcua-cli.js';

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
  systemProbe: (mounts) => new SiSystemProbe(mounts),
  // One line per area: `outpost <area> …` command groups.
  cliExtensions: [opcuaCli],
  // One line per area: command handlers (e.g. ota.install) registered on the runtime.
  commandRegistrations: [],
}, io);
process.exitCode = code;
