import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Argument, Command, Option } from 'commander';
import type { Logger } from 'pino';
import { systemClock } from '../hal/clock.js';
import { reportError, type CliIo } from '../src/cli/program.js';
import { OutpostError, isOutpostError } from '../src/errors/outpost-error.js';
import { createCliLogger, defaultCliLogFormat, type CliLogFormat } from '../src/log/cli-logger.js';
import { ProgressBar, renderInfo, renderStatus } from './cli-format.js';
import type { OtaProgress } from './flow/engine.js';
import type { OtaSystem, OtaWiring } from './system.js';

const DEFAULT_CONFIG = '/etc/outpost/config.yaml';
const EXIT_DEFERRED = 75;

interface Common {
  config?: string;
  logLevel?: string;
  logFormat?: CliLogFormat;
}

export interface OtaCliOptions extends OtaWiring {
  /** Where the redrawn progress bar goes when it is a terminal (defaults to process.stderr). */
  readonly stderr?: { isTTY?: boolean; write(s: string): unknown };
}

function usage(message: string, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_CLI_USAGE', message, cause !== undefined ? { cause } : {});
}

const isUrl = (s: string) => /^https?:\/\//i.test(s);

/** `outpost ota …`: install, status, mark-good, the RAUC backend contract, bundles and the update lock. */
export function otaCli(options: OtaCliOptions = {}): (program: Command, io: CliIo, setExit: (code: number) => void) => void {
  return (program, io, setExit) => {
    const stderr = options.stderr ?? process.stderr;
    const act =
      <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
      async (...args: A) => {
        try {
          setExit(await fn(...args));
        } catch (e) {
          if (isOutpostError(e, 'OUTPOST_E_OTA_DEFERRED')) {
            io.err(`outpost: ${e.message}; the update resumes with \`outpost ota resume\``);
            setExit(EXIT_DEFERRED);
          } else {
            setExit(reportError(io, e));
          }
        }
      };

    // JSON lines when systemd runs the command (stderr is the journal), readable lines in a terminal; see src/log/cli-logger.ts.
    const logger = (o: Common, fallback: CliLogFormat = defaultCliLogFormat(io.env)): Promise<Logger> =>
      createCliLogger({ level: o.logLevel ?? 'warn', format: o.logFormat ?? fallback, writeText: (t) => io.err(t.replace(/\n$/, '')) });
    const load = async (o: Common): Promise<OtaSystem> => {
      const file = o.config ?? io.env['OUTPOST_CONFIG'] ?? DEFAULT_CONFIG;
      // The updater is loaded only when an `ota` command runs: no cost for `outpost run` and others.
      const [{ loadOtaConfig }, { createOta }] = await Promise.all([import('./config.js'), import('./system.js')]);
      const loaded = await loadOtaConfig(file);
      return createOta(loaded.ota, { configDir: loaded.configDir, gatewayDataDir: loaded.dataDir }, { logger: await logger(o), clock: systemClock, fetch: io.fetch, wiring: options });
    };
    /** A local bundle path must name a readable file: OUTPOST_E_OTA_BUNDLE_MISSING before any state is written. */
    const checkLocalBundle = async (source: string): Promise<void> => {
      if (isUrl(source)) return;
      const { openBundleFile } = await import('./bundle/bundle.js');
      await (await openBundleFile(source)).close();
    };
    const common = (c: Command) =>
      c
        .option('-c, --config <file>', `configuration file (default $OUTPOST_CONFIG or ${DEFAULT_CONFIG})`)
        .addOption(new Option('--log-level <level>', 'log level on stderr').choices(['fatal', 'error', 'warn', 'info', 'debug']).default('warn'))
        .addOption(new Option('--log-format <format>', 'log lines on stderr: json (default when stderr is the journal) or text').choices(['json', 'text']));
    const progress = () => {
      const tty = Boolean(stderr.isTTY);
      const bar = new ProgressBar(tty ? (s) => void stderr.write(s) : (s) => io.err(s.replace(/\n$/, '')), tty);
      return { bar, onProgress: (p: OtaProgress) => bar.update(p) };
    };
    const withSigint = async <T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> => {
      const ctl = new AbortController();
      const stop = () => ctl.abort(new OutpostError('OUTPOST_E_OTA_DEFERRED', 'interrupted by a signal', { details: { reason: 'interrupted' } }));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        return await fn(ctl.signal);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    };

    const ota = program.command('ota').description('A/B updates: RAUC bundles, slots, boot selection (docs/ota.md)');

    common(ota.command('status').description('slots, boot state, versions and the update in progress').option('--json', 'print JSON')).action(
      act(async (o: Common & { json?: boolean }) => {
        const s = await (await load(o)).status();
        io.out(o.json ? JSON.stringify(s, null, 2) : renderStatus(s, Date.now()));
        return 0;
      }),
    );

    common(
      ota
        .command('install')
        .description('install a bundle (file or http(s) URL) into the inactive slot')
        .argument('<bundle>', 'bundle file or URL')
        .option('--sha256 <hex>', 'refuse the bundle unless its file has this sha256')
        .option('--version <v>', 'refuse the bundle unless its manifest has this version')
        .option('--reboot', 'reboot into the new slot when installed')
        .option('--json', 'print the final update state as JSON'),
    ).action(
      act(async (source: string, o: Common & { sha256?: string; version?: string; reboot?: boolean; json?: boolean }) => {
        if (o.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(o.sha256)) throw usage('--sha256 needs 64 hex digits');
        await checkLocalBundle(source);
        const sys = await load(o);
        const { bar, onProgress } = progress();
        const rec = await withSigint((signal) =>
          sys.updater
            .install({ source, origin: 'cli', ...(o.sha256 ? { sha256: o.sha256 } : {}), ...(o.version ? { version: o.version } : {}) }, { onProgress, signal, ...(o.reboot ? { reboot: true } : {}) })
            .finally(() => bar.end()),
        );
        io.out(o.json ? JSON.stringify(rec, null, 2) : `installed ${rec.bundle?.version ?? '?'} into slot ${rec.target ?? '?'}; ${o.reboot ? 'rebooting' : 'reboot to try it'} (mark-good commits it)`);
        return 0;
      }),
    );

    common(
      ota
        .command('agent')
        .description('serve ota.install/ota.status to the unprivileged runtime on a unix socket (root; outpost-ota-agent.socket)')
        .option('--listen <path>', 'socket path when not started by systemd (default: ota.fleet.agentSocket)')
        .option('--idle-exit-sec <n>', 'exit after this many seconds without requests (default 60 when socket-activated, else never)'),
    ).action(
      act(async (o: Common & { listen?: string; idleExitSec?: string }) => {
        if (o.idleExitSec !== undefined && !(/^\d+$/.test(o.idleExitSec) && Number(o.idleExitSec) >= 5)) throw usage('--idle-exit-sec needs a whole number of seconds, at least 5');
        const file = o.config ?? io.env['OUTPOST_CONFIG'] ?? DEFAULT_CONFIG;
        const [{ loadOtaConfig }, { runOtaAgent }] = await Promise.all([import('./config.js'), import('./agent/run.js')]);
        const loaded = await loadOtaConfig(file);
        // A daemon: JSON log lines unless --log-format text.
        const root = await logger(o, 'json');
        const ctl = new AbortController();
        const stop = () => ctl.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          await runOtaAgent({
            loaded,
            logger: root.child({ component: 'ota-agent' }),
            clock: systemClock,
            fetch: io.fetch,
            wiring: options,
            env: io.env,
            ...(o.listen ? { listen: o.listen } : {}),
            ...(o.idleExitSec !== undefined ? { idleExitSec: Number(o.idleExitSec) } : {}),
            signal: ctl.signal,
          });
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
        return 0;
      }),
    );

    common(ota.command('resume').description('continue an interrupted or deferred update').option('--reboot', 'reboot into the new slot when installed').option('--json', 'print JSON')).action(
      act(async (o: Common & { reboot?: boolean; json?: boolean }) => {
        const sys = await load(o);
        const { bar, onProgress } = progress();
        const rec = await withSigint((signal) => sys.updater.resume({ onProgress, signal, ...(o.reboot ? { reboot: true } : {}) }).finally(() => bar.end()));
        io.out(o.json ? JSON.stringify(rec, null, 2) : `update state: ${rec.state}`);
        return 0;
      }),
    );

    common(ota.command('cancel').description('abandon an update that has not rebooted yet')).action(
      act(async (o: Common) => {
        const rec = await (await load(o)).updater.cancel();
        io.out(`update state: ${rec.state}`);
        return 0;
      }),
    );

    common(
      ota
        .command('mark-good')
        .description('run on every boot after the health checks: refill the boot counter, commit a healthy trial, detect a rollback')
        .option('--no-reboot', 'never reboot (an unhealthy trial then waits for the watchdog)')
        .option('--json', 'print JSON'),
    ).action(
      act(async (o: Common & { reboot: boolean; json?: boolean }) => {
        const r = await (await load(o)).bootCheck.markGood({ reboot: o.reboot });
        io.out(o.json ? JSON.stringify(r) : `${r.outcome}: slot ${r.booted}${r.detail ? ` (${r.detail})` : ''}${r.rebootRequested ? '; rebooting' : ''}`);
        return r.outcome === 'trial-unhealthy' || r.outcome === 'unhealthy' ? 1 : 0;
      }),
    );

    common(
      ota
        .command('mark')
        .description('set a slot good, bad or active (primary), like `rauc status mark-*`')
        .addArgument(new Argument('<how>', 'good | bad | active').choices(['good', 'bad', 'active']))
        .argument('<slot>', 'booted | other | a bootname')
        .option('--force', 'allow marking the last good slot bad'),
    ).action(
      act(async (how: 'good' | 'bad' | 'active', which: string, o: Common & { force?: boolean }) => {
        const sys = await load(o);
        const booted = await sys.selector.getCurrent();
        const slot = which === 'booted' ? booted : which === 'other' ? sys.cfg.slots.find((s) => s.bootname !== booted)?.bootname : which;
        if (!slot || !sys.cfg.slots.some((s) => s.bootname === slot)) throw usage(`no slot "${which}" (booted, other, ${sys.cfg.slots.map((s) => s.bootname).join(', ')})`);
        const other = sys.cfg.slots.find((s) => s.bootname !== slot)?.bootname as string;
        if (how === 'bad' && !o.force && (await sys.selector.getState(other)) !== 'good') {
          throw new OutpostError('OUTPOST_E_OTA_SLOT', `refusing to mark ${slot} bad: slot ${other} is not good either, so nothing would boot (--force to do it anyway)`);
        }
        if (how === 'active') await sys.selector.setPrimary(slot);
        else await sys.selector.setState(slot, how);
        io.out(`marked slot ${slot} ${how}`);
        return 0;
      }),
    );

    common(
      ota
        .command('backend')
        .description("RAUC custom bootloader backend: get-primary | set-primary <bn> | get-state <bn> | set-state <bn> good|bad | get-current")
        .argument('<verb>')
        .argument('[args...]'),
    ).action(
      act(async (verb: string, args: string[], o: Common) => {
        const sys = await load(o);
        if (sys.selector.kind === 'custom') throw new OutpostError('OUTPOST_E_OTA_CONFIG', 'the backend command needs a built-in bootloader adapter, not `custom`');
        const { runBackendVerb } = await import('./boot/custom.js');
        const out = await runBackendVerb(sys.selector, verb, args);
        if (out !== null) io.out(out);
        return 0;
      }),
    );

    common(
      ota
        .command('info')
        .description('verify a bundle, show its manifest and check what `ota install` would refuse (exit 2 when it would)')
        .argument('<bundle>')
        .option('--keyring <pem>', 'CA certificates (default: ota.keyring; without -c no device checks unless --compatible)')
        .option('--compatible <name>', "check against this compatible instead of the configuration's ota.compatible")
        .option('--min-version <version>', 'check against this version floor instead of ota.minVersion')
        .option('--json', 'print JSON'),
    ).action(
      act(async (file: string, o: Common & { keyring?: string; compatible?: string; minVersion?: string; json?: boolean }) => {
        const [{ parseKeyring }, { VerifiedBundle }, { parseSemVer }, info] = await Promise.all([import('./bundle/cms.js'), import('./bundle/bundle.js'), import('./bundle/version.js'), import('./info.js')]);
        if (o.minVersion !== undefined && parseSemVer(o.minVersion) === null) throw usage(`--min-version ${o.minVersion} is not a SemVer version (MAJOR.MINOR.PATCH)`);
        // With --keyring alone the bundle is checked on its own (a build host); a configuration adds the device's checks.
        const withConfig = o.keyring === undefined || o.config !== undefined || io.env['OUTPOST_CONFIG'] !== undefined;
        const sys = withConfig ? await load(o) : null;
        const keyringFlag = async (pemFile: string) => {
          const pem = await readFile(pemFile, 'utf8').catch((e: unknown) => {
            throw usage(`--keyring ${pemFile} cannot be read`, e);
          });
          const certs = parseKeyring(pem);
          if (certs.length === 0) throw usage(`--keyring ${pemFile} holds no PEM certificate`);
          return certs;
        };
        const keyring = o.keyring !== undefined ? await keyringFlag(o.keyring) : await (sys as OtaSystem).deps.keyring();
        const flags = { ...(o.compatible !== undefined ? { compatible: o.compatible } : {}), ...(o.minVersion !== undefined ? { minVersion: o.minVersion } : {}) };
        const device = sys !== null ? await info.deviceViewFromSystem(sys, flags) : o.compatible !== undefined ? info.deviceViewFromFlags({ ...flags, compatible: o.compatible }) : null;
        const b = await VerifiedBundle.open(file, { keyring, now: new Date() });
        const verdict = await info.inspectBundle(b, device).finally(() => b.close());
        const m = b.manifest;
        io.out(
          o.json
            ? JSON.stringify({ ...b.info, manifest: { ...m, securityVersion: m.securityVersion.toString() }, checks: verdict.checks, install: { refused: verdict.refusals.length > 0, refusals: verdict.refusals } }, null, 2)
            : renderInfo(file, b.info, verdict),
        );
        for (const r of verdict.refusals) io.err(`outpost: ${r.code}: ${r.message} (\`outpost ota install\` would refuse this bundle)`);
        return verdict.refusals.length > 0 ? 2 : 0;
      }),
    );

    ota
      .command('bundle')
      .description('build a RAUC bundle (verity by default) that `rauc info` and `rauc install` accept')
      .requiredOption('--cert <pem>', 'signing certificate (codeSigning extended key usage)')
      .requiredOption('--key <pem>', 'signing key (ECDSA P-256 or RSA)')
      .option('--intermediate <pem>', 'intermediate CA certificates to embed')
      .option('--content <dir>', 'a `rauc bundle` content directory with manifest.raucm')
      .option('--image <class=file...>', 'an image per slot class, e.g. rootfs=rootfs.img')
      .option('--compatible <name>')
      .option('--bundle-version <version>')
      .option('--description <text>')
      .option('--build <id>')
      .option('--security-version <n>', 'anti-rollback security version ([meta.outpost])')
      .addOption(new Option('--format <format>').choices(['verity', 'plain']))
      .requiredOption('-o, --output <file>')
      .action(
        act(async (o: { cert: string; key: string; intermediate?: string; content?: string; image?: string[]; compatible?: string; bundleVersion?: string; description?: string; build?: string; securityVersion?: string; format?: 'verity' | 'plain'; output: string }) => {
          const { buildBundle, readContentDir } = await import('./bundle/builder.js');
          const fromDir = o.content ? await readContentDir(o.content) : null;
          const images = o.image
            ? o.image.map((spec) => {
                const eq = spec.indexOf('=');
                if (eq <= 0) throw usage(`--image ${spec}: expected <class>=<file>`);
                return { slotClass: spec.slice(0, eq), path: spec.slice(eq + 1) };
              })
            : (fromDir?.images ?? []);
          const compatible = o.compatible ?? fromDir?.compatible;
          const version = o.bundleVersion ?? fromDir?.version;
          if (!compatible || !version) throw usage('--compatible and --bundle-version are needed (or a --content manifest naming them)');
          if (images.length === 0) throw usage('give --image <class>=<file> or --content <dir>');
          if (o.securityVersion !== undefined && !/^\d{1,19}$/.test(o.securityVersion)) throw usage('--security-version must be a non-negative integer');
          const epoch = io.env['SOURCE_DATE_EPOCH'];
          const r = await buildBundle({
            images,
            compatible,
            version,
            ...(o.description ?? fromDir?.description ? { description: (o.description ?? fromDir?.description) as string } : {}),
            ...(o.build ?? fromDir?.build ? { build: (o.build ?? fromDir?.build) as string } : {}),
            ...(o.securityVersion !== undefined ? { securityVersion: BigInt(o.securityVersion) } : {}),
            ...(fromDir?.meta ? { meta: fromDir.meta } : {}),
            format: o.format ?? fromDir?.format ?? 'verity',
            certPem: await readFile(o.cert, 'utf8'),
            keyPem: await readFile(o.key, 'utf8'),
            ...(o.intermediate ? { intermediatesPem: await readFile(o.intermediate, 'utf8') } : {}),
            output: o.output,
            time: epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date(),
            tmpDir: path.dirname(path.resolve(o.output)),
          });
          io.out(`wrote ${r.output} (${r.size} bytes)`);
          return 0;
        }),
      );

    common(
      ota
        .command('lock')
        .description('hold the update lock: while held, installs wait (`-- <command…>` runs a command holding it)')
        .option('--name <name>', 'lock name', 'cli')
        .option('--reason <text>', 'shown in `outpost ota status`', '')
        .option('--pid <pid>', 'hold it for this running process instead of a command')
        .option('--release', 'release the named lock')
        .argument('[command...]'),
    ).action(
      act(async (command: string[], o: Common & { name: string; reason: string; pid?: string; release?: boolean }) => {
        const { lock } = await load(o);
        if (o.release) {
          await lock.release(o.name);
          return 0;
        }
        if (o.pid !== undefined) {
          if (!/^\d+$/.test(o.pid)) throw usage('--pid needs a process id');
          await lock.hold(o.name, Number(o.pid), o.reason);
          return 0;
        }
        const [cmd, ...args] = command;
        if (!cmd) throw usage('give a command after -- (or --pid / --release)');
        await lock.hold(o.name, process.pid, o.reason);
        try {
          return await new Promise<number>((resolve) => {
            const child = spawn(cmd, args, { stdio: 'inherit' });
            child.once('error', () => resolve(127));
            child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
          });
        } finally {
          await lock.release(o.name);
        }
      }),
    );
  };
}
