import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../hal/clock.js';
import type { CommandHandler, CommandRegistry } from '../src/commands/command.js';
import type { LoadedConfig } from '../src/config/load.js';
import { OutpostError, isOutpostError } from '../src/errors/outpost-error.js';
import type { OtaSystem, OtaWiring } from './system.js';

export interface OtaInstallParams {
  readonly url: string;
  readonly sha256: string;
  readonly version: string;
}

export interface OtaInstallResult {
  readonly state: string;
  readonly version: string | null;
  readonly target: string | null;
  /** The bootloader's view of the environment names the target primary (read back from the medium). */
  readonly switchVerified: boolean;
  readonly rebootScheduled: boolean;
}

function params(message: string, field: string): OutpostError {
  return new OutpostError('OUTPOST_E_COMMAND_PARAMS', message, { details: { field } });
}

export function parseInstallParams(p: unknown): OtaInstallParams {
  const o = p as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null) throw params('ota.install needs an object {url, sha256, version}', '');
  if (typeof o['url'] !== 'string' || !/^https?:\/\/\S+$/i.test(o['url'])) throw params('ota.install needs "url" (an http or https URL of the bundle)', 'url');
  if (typeof o['sha256'] !== 'string' || !/^[0-9a-fA-F]{64}$/.test(o['sha256'])) throw params('ota.install needs "sha256" (64 hex digits of the bundle file)', 'sha256');
  if (typeof o['version'] !== 'string' || o['version'] === '' || o['version'].length > 128) throw params('ota.install needs "version" (the bundle manifest version)', 'version');
  for (const k of Object.keys(o)) if (!['url', 'sha256', 'version'].includes(k)) throw params(`ota.install does not take "${k}"`, k);
  return { url: o['url'], sha256: o['sha256'].toLowerCase(), version: o['version'] };
}

/** `ota.status` takes no parameters (an empty object or nothing). */
export function parseStatusParams(p: unknown): null {
  if (p !== undefined && p !== null && (typeof p !== 'object' || Object.keys(p).length > 0)) throw params('ota.status takes no parameters', '');
  return null;
}

/**
 * Fleet-side OTA commands run by this process (the runtime with `ota.fleet.via: in-process`, or the OTA
 * agent): `ota.install` {url, sha256, version} installs and reports progress (download, verify, install
 * percentages and state names), then schedules the reboot into the trial after replying; `ota.status`
 * answers slots, boot state and the last update's outcome (committed or rolled back after the reboot).
 * Invariants: one install at a time per process; the updater (and pkijs) is loaded on the first command
 * only; a held update lock makes the install wait (reporting `deferred`) up to `ota.fleet.maxDeferSec`.
 */
export function otaCommandsInProcess(wiring: OtaWiring & { clock: Clock; fetch?: typeof fetch }, hooks: { onInstallEnd?: () => void } = {}): (target: { commands: CommandRegistry }, logger: Logger, loaded: Pick<LoadedConfig, 'config' | 'files'>) => void {
  return (runtime, logger, { config, files }) => {
    const ota = config.ota;
    if (!ota) return;
    const configDir = path.dirname(path.resolve(files[0] ?? '.'));
    let system: Promise<OtaSystem> | null = null;
    let busy = false;
    const sys = () => {
      system ??= import('./system.js').then((m) => m.createOta(ota, { configDir, gatewayDataDir: config.gateway.dataDir }, { logger, clock: wiring.clock, fetch: wiring.fetch ?? globalThis.fetch, wiring }));
      return system;
    };
    const install: CommandHandler<OtaInstallParams, OtaInstallResult> = {
      name: 'ota.install',
      parse: parseInstallParams,
      run: async (p, progress, signal) => {
        if (busy) throw new OutpostError('OUTPOST_E_OTA_BUSY', 'an ota.install is already running');
        busy = true;
        try {
          const s = await sys();
          const log = logger.child({ component: 'ota-command' });
          const started = wiring.clock.monotonic();
          const onProgress = (u: { state: string; percent?: number; detail?: Record<string, unknown> }) =>
            progress({ state: u.state, ...(u.percent !== undefined ? { percent: u.percent } : {}), ...(u.detail ? { detail: u.detail } : {}) });
          let rec;
          for (let attempt = 0; ; attempt++) {
            try {
              rec =
                attempt === 0
                  ? await s.updater.install({ source: p.url, sha256: p.sha256, version: p.version, origin: 'fleet' }, { onProgress, signal })
                  : await s.updater.resume({ onProgress, signal });
              break;
            } catch (e) {
              const waited = (wiring.clock.monotonic() - started) / 1000;
              if (!isOutpostError(e, 'OUTPOST_E_OTA_DEFERRED') || signal.aborted || waited >= s.raw.fleet.maxDeferSec) throw e;
              log.info({ reason: e.details['reason'], waitedSec: Math.round(waited) }, 'ota install deferred; retrying later');
              await wiring.clock.sleep(s.cfg.retryLaterMs, signal);
            }
          }
          // Only a verified switch is worth a reboot: rebooting into an unswitched environment changes nothing.
          const switchVerified = rec.state === 'reboot-pending' && rec.switched;
          const reboot = s.raw.fleet.rebootAfterInstall && switchVerified;
          if (reboot) {
            // Reply first: the uplink delivers the result, then the reboot starts the trial.
            wiring.clock.setTimeout(() => {
              void (async () => s.deps.reboot(await s.selector.trialRebootArg()))().catch((e: unknown) => log.error({ err: String(e) }, 'ota reboot failed'));
            }, 3000);
          }
          return { state: rec.state, version: rec.bundle?.version ?? null, target: rec.target, switchVerified, rebootScheduled: reboot };
        } finally {
          busy = false;
          hooks.onInstallEnd?.();
        }
      },
    };
    runtime.commands.register(install);
    runtime.commands.register({
      name: 'ota.status',
      parse: parseStatusParams,
      run: async () => {
        const st = await (await sys()).status();
        return {
          booted: st.booted,
          primary: st.primary,
          slots: st.slots,
          state: st.update.state,
          updateId: st.update.updateId,
          bundleVersion: st.update.bundle?.version ?? null,
          committed: st.update.committed,
          lastError: st.update.lastError,
          securityVersion: st.securityVersion,
        };
      },
    });
  };
}
