import { spawn } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../hal/clock.js';
import { OutpostError } from '../src/errors/outpost-error.js';
import { CustomSelector } from './boot/custom.js';
import { GrubEnv } from './boot/grub-env.js';
import { GrubSelector } from './boot/grub.js';
import { GuardedSelector } from './boot/guarded.js';
import { TrybootSelector } from './boot/tryboot.js';
import { bootnameFromCmdline, type BootSelector } from './boot/types.js';
import { UbootEnv, readFwEnvConfig } from './boot/uboot-env.js';
import { UbootSelector } from './boot/uboot.js';
import { BootCheck } from './flow/boot-check.js';
import type { ResolvedOta, UpdaterDeps } from './flow/engine.js';
import { HttpHealthCheck } from './flow/health.js';
import { HookRunner } from './flow/hooks.js';
import { UpdateLock } from './flow/lock.js';
import { FileSecurityVersionStore, type SecurityVersionStore } from './flow/security-version.js';
import { StateLock } from './flow/state-lock.js';
import { FlowStore, type FlowRecord } from './flow/store.js';
import { Updater } from './flow/updater.js';
import type { OtaConfigT } from './schema.js';

/** What services/ provides to the OTA area: real implementations that live in other areas. */
export interface OtaWiring {
  /** The TPM NV counter store for `ota.securityVersion.store: tpm` (wired by services/ from provisioning/). */
  readonly tpmSecurityVersion?: (o: { tpm: string; gatewayDataDir: string }) => Promise<SecurityVersionStore>;
}

export interface OtaStatus {
  readonly compatible: string;
  readonly booted: string | null;
  readonly primary: string | null;
  readonly bootloader: { readonly kind: string; readonly vars: Record<string, string> };
  readonly slots: ReadonlyArray<{ bootname: string; devices: Readonly<Record<string, string>>; state: string; version: string | null; booted: boolean; primary: boolean }>;
  readonly update: FlowRecord;
  readonly securityVersion: string;
  readonly locks: ReadonlyArray<{ name: string; pid: number; reason: string }>;
}

/** The wired updater of one process: selector, flow store, install and boot sides. */
export interface OtaSystem {
  readonly cfg: ResolvedOta;
  readonly raw: OtaConfigT;
  readonly deps: UpdaterDeps;
  readonly selector: BootSelector;
  readonly updater: Updater;
  readonly bootCheck: BootCheck;
  readonly lock: UpdateLock;
  status(): Promise<OtaStatus>;
}

function run(argv: readonly string[]): Promise<void> {
  const [cmd, ...args] = argv as [string, ...string[]];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'ignore' });
    child.once('error', (e) => reject(new OutpostError('OUTPOST_E_OTA_CONFIG', `cannot run the reboot command ${cmd}`, { cause: e })));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new OutpostError('OUTPOST_E_OTA_CONFIG', `reboot command ${cmd} exited with ${code}`, { details: { code } }))));
  });
}

/**
 * Builds the updater from a validated `ota` section. `configDir` anchors relative paths;
 * `gatewayDataDir` (already resolved) holds `ota/` unless `ota.dataDir` says otherwise.
 */
export async function createOta(
  raw: OtaConfigT,
  where: { configDir: string; gatewayDataDir: string },
  d: { logger: Logger; clock: Clock; fetch: typeof fetch; wiring?: OtaWiring },
): Promise<OtaSystem> {
  const { configDir } = where;
  const abs = (p: string) => path.resolve(configDir, p);
  const dataDir = raw.dataDir ? abs(raw.dataDir) : path.join(where.gatewayDataDir, 'ota');
  const slots = raw.slots.map((s) => {
    const devices: Record<string, string> = Object.fromEntries(Object.entries(s.devices ?? {}).map(([k, v]) => [k, abs(v)]));
    if (s.device) devices['rootfs'] = abs(s.device);
    if (Object.keys(devices).length === 0) throw new OutpostError('OUTPOST_E_OTA_CONFIG', `slot ${s.bootname} has no device`, { details: { bootname: s.bootname } });
    return { bootname: s.bootname, devices };
  });
  if (slots[0]?.bootname === slots[1]?.bootname) throw new OutpostError('OUTPOST_E_OTA_CONFIG', 'the two slots need different bootnames');
  const names = slots.map((s) => s.bootname);
  const cmdline = abs(raw.cmdline);
  const bootIdFile = abs(raw.bootIdFile);
  const bootId = async () => (await readFile(bootIdFile, 'utf8')).trim();
  const current = () => bootnameFromCmdline(cmdline, slots);
  const bl = raw.bootloader;
  // One lock for every read-modify-write of the boot environment and the flow record, across processes.
  const guard = new StateLock(dataDir, { now: () => d.clock.monotonic(), sleep: (ms) => d.clock.sleep(ms) });
  let inner: BootSelector;
  if (bl.type === 'uboot') {
    inner = new UbootSelector(new UbootEnv(await readFwEnvConfig(abs(bl.fwEnvConfig)), { guard }), { slots: names, attempts: bl.attempts, primaryAttempts: bl.primaryAttempts, current });
  } else if (bl.type === 'grub') {
    inner = new GrubSelector(new GrubEnv(abs(bl.grubenv), { guard }), { slots: names, current });
  } else if (bl.type === 'tryboot') {
    const keys = Object.keys(bl.partitions).sort();
    if (keys.join(' ') !== [...names].sort().join(' ')) throw new OutpostError('OUTPOST_E_OTA_CONFIG', 'bootloader.partitions must name exactly the two slot bootnames', { details: { partitions: keys, slots: names } });
    inner = new TrybootSelector({ autoboot: abs(bl.autoboot), deviceTree: abs(bl.deviceTree), partitions: bl.partitions, stateFile: path.join(dataDir, 'tryboot.json'), bootId });
  } else {
    inner = new CustomSelector({ command: [abs(bl.command[0] as string), ...bl.command.slice(1)], slots: names, timeoutMs: bl.timeoutSec * 1000, fallbackCurrent: current, useGetCurrent: bl.getCurrent });
  }
  const selector: BootSelector = new GuardedSelector(inner, guard);
  let security: SecurityVersionStore;
  if (raw.securityVersion.store === 'tpm') {
    if (!d.wiring?.tpmSecurityVersion) throw new OutpostError('OUTPOST_E_OTA_CONFIG', 'ota.securityVersion.store is tpm but this build has no TPM counter wired');
    security = await d.wiring.tpmSecurityVersion({ tpm: raw.securityVersion.tpm, gatewayDataDir: where.gatewayDataDir });
  } else {
    security = new FileSecurityVersionStore(raw.securityVersion.file ? abs(raw.securityVersion.file) : path.join(dataDir, 'security-version'));
  }
  const cfg: ResolvedOta = {
    compatible: raw.compatible,
    slots,
    dataDir,
    ...(raw.minVersion !== undefined ? { minVersion: raw.minVersion } : {}),
    markGood: { committedBoots: raw.markGood.committedBoots, trialFailure: raw.markGood.trialFailure, lateFallbackRecoveries: raw.markGood.lateFallbackRecoveries },
    maxTransitions: raw.maxTransitions,
    maxResumes: raw.maxResumes,
    retryLaterMs: raw.retryLaterSec * 1000,
    download: { maxBytes: raw.download.maxBytes, retries: raw.download.retries, retryDelayMs: raw.download.retryDelayMs, stallTimeoutMs: raw.download.stallTimeoutSec * 1000 },
  };
  const keyringFile = abs(raw.keyring);
  const lock = new UpdateLock(abs(raw.lockDir));
  const logger = d.logger.child({ component: 'ota' });
  const deps: UpdaterDeps = {
    cfg,
    selector,
    store: new FlowStore(dataDir, guard),
    hooks: new HookRunner(raw.hooks, raw.hookTimeoutSec * 1000, logger),
    lock,
    health: new HttpHealthCheck({ url: raw.markGood.healthUrl, requireUplink: raw.markGood.requireUplink, timeoutMs: raw.markGood.timeoutSec * 1000, intervalMs: raw.markGood.intervalSec * 1000, fetch: d.fetch, clock: d.clock }),
    security,
    clock: d.clock,
    logger,
    fetch: d.fetch,
    bootId,
    reboot: (arg) => run(arg ? [...raw.rebootCommand, arg] : raw.rebootCommand),
    keyring: async (): Promise<X509Certificate[]> => {
      const { parseKeyring } = await import('./bundle/cms.js');
      let pem: string;
      try {
        pem = await readFile(keyringFile, 'utf8');
      } catch (e) {
        throw new OutpostError('OUTPOST_E_OTA_CONFIG', `cannot read the keyring ${keyringFile}`, { cause: e, details: { file: keyringFile } });
      }
      const certs = parseKeyring(pem);
      if (certs.length === 0) throw new OutpostError('OUTPOST_E_OTA_CONFIG', `keyring ${keyringFile} holds no PEM certificate`);
      return certs;
    },
    openBundle: async (p, o) => (await import('./bundle/bundle.js')).VerifiedBundle.open(p, o),
  };
  const updater = new Updater(deps);
  const bootCheck = new BootCheck(deps);
  return {
    cfg,
    raw,
    deps,
    selector,
    updater,
    bootCheck,
    lock,
    status: async () => {
      const update = await deps.store.load();
      const booted = await selector.getCurrent().catch(() => null);
      const primary = await selector.getPrimary().catch(() => null);
      const vars = await selector.describe().catch((e: unknown) => ({ error: e instanceof OutpostError ? e.code : 'unreadable' }) as Record<string, string>);
      const slotRows = [];
      for (const s of slots) {
        slotRows.push({
          bootname: s.bootname,
          devices: s.devices,
          state: await selector.getState(s.bootname).catch(() => 'unknown'),
          version: update.slots[s.bootname]?.version ?? (update.committed?.bootname === s.bootname ? update.committed.version : null),
          booted: s.bootname === booted,
          primary: s.bootname === primary,
        });
      }
      return {
        compatible: cfg.compatible,
        booted,
        primary,
        bootloader: { kind: selector.kind, vars },
        slots: slotRows,
        update,
        securityVersion: (await security.read().catch(() => -1n)).toString(),
        locks: await lock.holders(),
      };
    },
  };
}
