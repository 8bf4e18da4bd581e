import { Command, CommanderError, Option } from 'commander';
import type { Logger } from 'pino';
import { systemClock } from '../../hal/clock.js';
import { configJsonSchema, loadConfig, type LoadedConfig } from '../config/load.js';
import { loadConfigIsolated } from '../config/load-isolated.js';
import { prepareDataDir } from '../config/data-dir.js';
import { OutpostError, formatCauseChain, isOutpostError } from '../errors/outpost-error.js';
import type { GcFunction } from '../health/gc-pacer.js';
import type { SystemProbe } from '../health/system-probe.js';
import { createLogger } from '../log/logger.js';
import { Runtime, type DriverFactory, type UpstreamFactory } from '../runtime/runtime.js';
import { createNotifier, WatchdogPinger } from '../system/notifier.js';
import { callApi, parseCliValue, resolveApiTarget } from './api-client.js';
import { renderPointsTable } from './points-table.js';

/** What only an entry point in services/ may provide: real implementations. */
export interface Wiring {
  readonly version: string;
  readonly drivers: DriverFactory;
  readonly systemProbe: (mounts: string[]) => SystemProbe;
  readonly upstreamFactory?: UpstreamFactory;
  /** Clock-synchronisation source: readings are marked time-uncertain while it says so. */
  readonly clockSync?: (logger: Logger) => { start(): Promise<void>; timeUncertain(): boolean; stop(): void };
  /** V8's gc() for `outpost run` (the broker paces collections under floods); null when unavailable. */
  readonly gc?: () => GcFunction | null;
  /** Register the command handlers of other areas (OTA…) on a runtime before it starts; one entry per area. */
  readonly commandRegistrations?: ReadonlyArray<(runtime: Runtime, logger: Logger, loaded: LoadedConfig) => void>;
  /** Extra command groups (OTA, identity, factory…) added by services/; one entry per area. `setExit` sets the exit code of an action. */
  readonly cliExtensions?: ReadonlyArray<(program: Command, io: CliIo, setExit: (code: number) => void) => void>;
}

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  readonly fetch: typeof fetch;
}

/**
 * Prints an error for a human and returns the exit code: 2 for bad input, 1 otherwise. One line
 * `outpost: CODE: message ← cause ← cause` (the chain of causes, e.g. the errno of a failed listen);
 * a stack trace only for errors that are not OutpostErrors (bugs), and only with OUTPOST_DEBUG=1.
 */
export function reportError(io: CliIo, e: unknown): number {
  if (isOutpostError(e)) {
    const below = e.cause === undefined ? '' : ` ← ${formatCauseChain(e.cause)}`;
    io.err(`outpost: ${e.code}: ${e.message}${below}`);
    return e.exitCode;
  }
  const stack = io.env['OUTPOST_DEBUG'] === '1' && e instanceof Error && e.stack ? `\n${e.stack}` : ' (OUTPOST_DEBUG=1 prints the stack)';
  io.err(`outpost: unexpected error: ${formatCauseChain(e)}${stack}`);
  return 1;
}

async function runGateway(configFile: string, opts: { pretty?: boolean; logLevel?: string }, wiring: Wiring, io: CliIo): Promise<number> {
  const { config, files } = await loadConfigIsolated(configFile);
  // Before anything starts: the data directory exists and is writable (OUTPOST_E_CONFIG_DATA_DIR otherwise).
  await prepareDataDir(config.gateway.dataDir);
  const logger: Logger = await createLogger({ level: opts.logLevel ?? config.log.level, pretty: opts.pretty ?? config.log.pretty });
  const clockSync = wiring.clockSync?.(logger);
  await clockSync?.start();
  const runtime = new Runtime(config, {
    clock: systemClock,
    logger,
    drivers: wiring.drivers,
    systemProbe: wiring.systemProbe(['/', config.gateway.dataDir]),
    version: wiring.version,
    ...(wiring.upstreamFactory ? { upstreamFactory: wiring.upstreamFactory } : {}),
    ...(clockSync ? { timeUncertain: () => clockSync.timeUncertain() } : {}),
    gc: wiring.gc?.() ?? null,
  });
  for (const register of wiring.commandRegistrations ?? []) register(runtime, logger, { config, files });
  const notifier = createNotifier(io.env);
  let endpoints;
  try {
    endpoints = await runtime.start();
  } catch (e) {
    return reportError(io, e);
  }
  logger.info({ files }, 'configuration loaded');
  const pinger = new WatchdogPinger({
    notifier,
    healthy: () => {
      const r = runtime.healthReport();
      return { ok: r.ok, failing: r.checks.filter((c) => c.critical && !c.ok).map((c) => (c.detail ? `${c.name}: ${c.detail}` : c.name)) };
    },
    logger,
  });
  await notifier.ready(`running ${config.devices.length} devices`).catch((e: unknown) => logger.warn({ err: String(e) }, 'readiness notification failed'));
  pinger.start();
  if (endpoints.api || endpoints.broker) {
    const where = [
      endpoints.api ? `  points   http://${endpoints.api.host}:${endpoints.api.port}/api/points   (or: outpost points)` : null,
      endpoints.api ? `  health   http://${endpoints.api.host}:${endpoints.api.port}/healthz  metrics: /metrics` : null,
      endpoints.broker ? `  broker   mqtt://${endpoints.broker.host}:${endpoints.broker.port}  topics: ${config.broker.topicPrefix}/#` : null,
      endpoints.broker?.tls ? `           mqtts://${endpoints.broker.tls.host}:${endpoints.broker.tls.port}` : null,
    ].filter((x): x is string => x !== null);
    if (opts.pretty ?? config.log.pretty) io.err(`\nOutpost ${wiring.version} is running (gateway ${config.gateway.id}). Look here:\n${where.join('\n')}\n  stop     Ctrl-C\n`);
  }
  return new Promise<number>((resolve) => {
    let exiting = false;
    const shutdown = (signal: string, code: number) => {
      if (exiting) return;
      exiting = true;
      logger.info({ signal }, 'shutting down');
      pinger.stop();
      clockSync?.stop();
      void notifier.stopping().catch(() => undefined);
      void runtime.stop().then(
        () => resolve(code),
        () => resolve(1),
      );
    };
    process.once('SIGINT', () => shutdown('SIGINT', 0));
    process.once('SIGTERM', () => shutdown('SIGTERM', 0));
    process.once('uncaughtException', (e) => {
      logger.fatal({ err: e }, 'uncaught exception');
      shutdown('uncaughtException', 1);
    });
  });
}

/** Builds the `outpost` command line. Every action resolves to an exit code instead of exiting. */
export function buildProgram(wiring: Wiring, io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('outpost')
    .description('Outpost: firmware for IoT edge gateways')
    .version(wiring.version)
    .showHelpAfterError()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .exitOverride();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander passes untyped action arguments
  const act = <A extends any[]>(fn: (...args: A) => Promise<number>) => async (...args: A) => {
    try {
      setExit(await fn(...args));
    } catch (e) {
      setExit(reportError(io, e));
    }
  };

  program
    .command('run')
    .description('run the gateway')
    .requiredOption('-c, --config <file>', 'configuration file (drop-ins from config.d/ next to it)')
    .option('--pretty', 'human-readable logs')
    .addOption(new Option('--log-level <level>', 'override log.level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']))
    .action(act(async (opts: { config: string; pretty?: boolean; logLevel?: string }) => runGateway(opts.config, opts, wiring, io)));

  const cfg = program.command('config').description('check and describe configuration');
  cfg
    .command('validate')
    .description('validate a configuration and its drop-ins; exit code 2 when invalid')
    .argument('<file>', 'configuration file')
    .action(act(async (file: string) => {
      const { config, files } = await loadConfig(file);
      const points = config.devices.reduce((n, d) => n + d.points.length, 0) + config.derived.length;
      io.out(`valid: ${config.devices.length} devices, ${points} points, ${config.rules.length} rules, ${config.routes.length} routes (${files.join(', ')})`);
      return 0;
    }));
  cfg
    .command('schema')
    .description('print the JSON Schema of the configuration')
    .action(act(async () => {
      io.out(JSON.stringify(configJsonSchema(), null, 2));
      return 0;
    }));

  const apiOptions = (c: Command) =>
    c
      .option('--api <url>', 'local API base URL (default $OUTPOST_API, the api: section of --config, or http://127.0.0.1:8480)')
      .option('-c, --config <file>', 'gateway configuration: where its API listens and its data directory (token)')
      .option('--token-file <file>', 'API token file (default $OUTPOST_API_TOKEN, $OUTPOST_API_TOKEN_FILE, <dataDir>/api-token)');

  apiOptions(program.command('points').description('show current values of a running gateway (its local API)'))
    .option('--json', 'print JSON')
    .action(act(async (opts: { api?: string; config?: string; tokenFile?: string; json?: boolean }) => {
      const target = await resolveApiTarget(opts, io.env);
      const body = (await callApi(target, io.fetch, '/api/points')) as { points: Array<Record<string, unknown>> };
      io.out(opts.json ? JSON.stringify(body.points, null, 2) : renderPointsTable(body.points, Date.now()));
      return 0;
    }));

  apiOptions(program.command('write').description('write a value to a writable point of a running gateway (needs the API token)'))
    .argument('<point>', 'point id, e.g. io.alarm-lamp')
    .argument('<value>', 'value in engineering units: a number, true/false, or text')
    .action(act(async (point: string, value: string, opts: { api?: string; config?: string; tokenFile?: string }) => {
      const target = await resolveApiTarget(opts, io.env);
      await callApi(target, io.fetch, `/api/points/${encodeURIComponent(point)}/write`, { method: 'POST', body: { value: parseCliValue(value) } });
      io.out(`${point} = ${value}`);
      return 0;
    }));

  for (const extend of wiring.cliExtensions ?? []) extend(program, io, setExit);
  return program;
}

/** Runs the CLI on argv and returns the exit code (commander usage errors → 2). */
export async function runCli(argv: readonly string[], wiring: Wiring, io: CliIo): Promise<number> {
  let code = 0;
  const program = buildProgram(wiring, io, (c) => (code = c));
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    return reportError(io, e);
  }
  return code;
}
