import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../hal/clock.js';
import type { CommandRegistry } from '../src/commands/command.js';
import type { LoadedConfig } from '../src/config/load.js';
import { callAgent } from './agent/client.js';
import { otaCommandsInProcess, parseInstallParams, parseStatusParams, type OtaInstallResult } from './command.js';
import { OtaOutcomeReporter, type OtaStatusSummary } from './report.js';
import type { OtaWiring } from './system.js';

/** What the OTA area needs from the runtime: its command registry, and for outcome reports its upstream. */
export interface OtaRuntimeTarget {
  readonly commands: CommandRegistry;
  onStarted?(f: () => void): void;
  onStopping?(f: () => void): void;
  reportSystemEvent?(event: string, data: Record<string, unknown>): Promise<void>;
}

/**
 * The runtime's fleet OTA: `ota.install` and `ota.status` run in process or, with `ota.fleet.via: agent`,
 * on the root OTA agent (the runtime then loads no updater code and needs no access to slots or the boot
 * environment); with `ota.fleet.reportOutcome`, how each update ended is reported upstream once, as the
 * system event `ota.committed` or `ota.rolled-back`.
 */
export function otaCommands(wiring: OtaWiring & { clock: Clock; fetch?: typeof fetch }): (runtime: OtaRuntimeTarget, logger: Logger, loaded: Pick<LoadedConfig, 'config' | 'files'>) => void {
  return (runtime, logger, loaded) => {
    const ota = loaded.config.ota;
    if (!ota) return;
    const fleet = ota.fleet;
    let afterInstall = () => {};
    if (fleet.via === 'agent') {
      const socket = fleet.agentSocket;
      runtime.commands.register({
        name: 'ota.install',
        parse: parseInstallParams,
        run: async (p, progress, signal) => {
          try {
            return (await callAgent(socket, 'ota.install', p, progress, signal)) as OtaInstallResult;
          } finally {
            afterInstall();
          }
        },
      });
      runtime.commands.register({
        name: 'ota.status',
        parse: parseStatusParams,
        run: (_p, progress, signal) => callAgent(socket, 'ota.status', {}, progress, signal),
      });
    } else {
      otaCommandsInProcess(wiring, { onInstallEnd: () => afterInstall() })(runtime, logger, loaded);
    }
    if (!fleet.reportOutcome || !runtime.onStarted || !runtime.reportSystemEvent) return;
    const report = runtime.reportSystemEvent.bind(runtime);
    const status = runtime.commands.get('ota.status');
    const reporter = new OtaOutcomeReporter({
      status: async () => (await status.run(status.parse({}), () => undefined, new AbortController().signal)) as OtaStatusSummary,
      report,
      marker: path.join(path.resolve(path.dirname(path.resolve(loaded.files[0] ?? '.')), loaded.config.gateway.dataDir), 'ota-outcome-reported.json'),
      clock: wiring.clock,
      logger: logger.child({ component: 'ota-report' }),
      pollMs: 30_000,
    });
    afterInstall = () => reporter.kick();
    runtime.onStarted(() => reporter.start());
    runtime.onStopping?.(() => reporter.stop());
  };
}
