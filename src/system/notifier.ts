import { execFile as nodeExecFile } from 'node:child_process';
import { OutpostError, describeCause } from '../errors/outpost-error.js';

/**
 * systemd service notifications (sd_notify protocol) for `Type=notify` units.
 *
 * Node has no AF_UNIX SOCK_DGRAM sockets, so messages go through the `systemd-notify` binary
 * (package `systemd`). It is run as `systemd-notify --pid=<our pid> -- VAR=VALUE...`; the unit must
 * set `NotifyAccess=all` because the datagram comes from that short-lived child, not from the main PID.
 * systemd-notify (v246+) waits on a BARRIER=1 round trip before it exits, so the manager has
 * attributed the message to our unit while the sender still exists (the classic systemd-notify race).
 */

/** What the runtime tells its service manager. Every method resolves once the message was delivered. */
export interface ServiceNotifier {
  /** Start-up finished (`READY=1`), optionally with a status line. */
  ready(status?: string): Promise<void>;
  /** Keep-alive for `WatchdogSec=` (`WATCHDOG=1`). */
  watchdog(): Promise<void>;
  /** Free-form status line shown by `systemctl status` (`STATUS=...`). */
  status(text: string): Promise<void>;
  /** Shutdown has begun (`STOPPING=1`). */
  stopping(): Promise<void>;
  /** How often to send `WATCHDOG=1` (half of `WATCHDOG_USEC`), or null when no watchdog applies to this process. */
  readonly watchdogIntervalMs: number | null;
}

/** Callback shape of `child_process.execFile`. */
export type ExecFileCallback = (error: Error | null, stdout: string | Buffer, stderr: string | Buffer) => void;

/** The subset of `child_process.execFile` the notifier uses; inject a fake in tests. */
export type ExecFileLike = (
  file: string,
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; timeout: number; windowsHide: boolean },
  callback: ExecFileCallback,
) => unknown;

export interface NotifierDeps {
  /** Spawner; default `child_process.execFile`. */
  readonly execFile?: ExecFileLike;
  /** PID announced with `--pid=` and compared with `WATCHDOG_PID`; default `process.pid`. */
  readonly pid?: number;
  /** The systemd-notify binary, looked up on the `PATH` of the given environment; default `systemd-notify`. */
  readonly command?: string;
  /** Kill a systemd-notify run that takes longer than this; default 10 000 ms (its own barrier wait is 5 s). */
  readonly timeoutMs?: number;
}

const DEFAULT_COMMAND = 'systemd-notify';
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
const MAX_STDERR_CHARS = 500;

const defaultExecFile: ExecFileLike = (file, args, options, callback) => nodeExecFile(file, args, options, callback);

/**
 * Half of `WATCHDOG_USEC` in milliseconds (at least 1), as sd_watchdog_enabled() recommends; null when
 * `WATCHDOG_USEC` is unset, zero or malformed, or when `WATCHDOG_PID` is set and names another process.
 */
export function watchdogIntervalFromEnv(env: NodeJS.ProcessEnv, pid: number): number | null {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || !/^\d+$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (!Number.isSafeInteger(usec) || usec <= 0) return null;
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== '' && Number(pidText) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/**
 * Notifier used when the process was not started by systemd with `Type=notify` (no `NOTIFY_SOCKET`).
 * Invariants: never spawns anything, every method resolves, `watchdogIntervalMs` is always null.
 */
export class NoopNotifier implements ServiceNotifier {
  readonly watchdogIntervalMs: number | null = null;

  async ready(_status?: string): Promise<void> {}

  async watchdog(): Promise<void> {}

  async status(_text: string): Promise<void> {}

  async stopping(): Promise<void> {}
}

/**
 * Sends sd_notify messages through `systemd-notify`.
 * Invariants: every message carries `--pid=<pid>`; a status text never contains a newline (it would
 * start a new VAR=VALUE line); the child gets only `NOTIFY_SOCKET` and `PATH`; a failure rejects with
 * OUTPOST_E_SYSTEMD_NOTIFY whose details name the message, never with a bare child-process error.
 */
export class SystemdNotifier implements ServiceNotifier {
  readonly watchdogIntervalMs: number | null;
  private readonly childEnv: NodeJS.ProcessEnv;
  private readonly execFile: ExecFileLike;
  private readonly pid: number;
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(notifySocket: string, env: NodeJS.ProcessEnv, deps: NotifierDeps = {}) {
    if (notifySocket === '') throw new RangeError('SystemdNotifier needs a non-empty NOTIFY_SOCKET');
    this.execFile = deps.execFile ?? defaultExecFile;
    this.pid = deps.pid ?? process.pid;
    this.command = deps.command ?? DEFAULT_COMMAND;
    this.timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.childEnv = { NOTIFY_SOCKET: notifySocket, PATH: env.PATH ?? DEFAULT_PATH };
    this.watchdogIntervalMs = watchdogIntervalFromEnv(env, this.pid);
  }

  ready(status?: string): Promise<void> {
    const assignments = ['READY=1'];
    if (status !== undefined) assignments.push(`STATUS=${oneLine(status)}`);
    return this.send(assignments);
  }

  watchdog(): Promise<void> {
    return this.send(['WATCHDOG=1']);
  }

  status(text: string): Promise<void> {
    return this.send([`STATUS=${oneLine(text)}`]);
  }

  stopping(): Promise<void> {
    return this.send(['STOPPING=1']);
  }

  private send(assignments: readonly string[]): Promise<void> {
    // `--` ends option parsing, so a value can never be read as a flag.
    const args = [`--pid=${this.pid}`, '--', ...assignments];
    const message = assignments.map((a) => a.slice(0, a.indexOf('='))).join(',');
    return new Promise<void>((resolve, reject) => {
      this.execFile(
        this.command,
        args,
        { env: this.childEnv, timeout: this.timeoutMs, windowsHide: true },
        (error, _stdout, stderr) => {
          if (error === null) {
            resolve();
            return;
          }
          const details: Record<string, unknown> = {
            message,
            command: this.command,
            stderr: String(stderr).trim().slice(0, MAX_STDERR_CHARS),
          };
          // execFile sets a numeric `code` for an exit status and a string one (ENOENT, EACCES) for a spawn failure.
          const { code, signal } = error as { code?: unknown; signal?: unknown };
          if (typeof code === 'number') details.exit = code;
          if (typeof code === 'string') details.errno = code;
          if (typeof signal === 'string') details.signal = signal;
          reject(
            new OutpostError('OUTPOST_E_SYSTEMD_NOTIFY', `could not send ${message} to systemd through ${this.command}`, {
              cause: error,
              details,
            }),
          );
        },
      );
    });
  }
}

/**
 * The notifier for this process: a SystemdNotifier when `NOTIFY_SOCKET` is set (we run under a
 * `Type=notify` unit), else a NoopNotifier. Pass `process.env` in production.
 */
export function createNotifier(env: NodeJS.ProcessEnv, deps: NotifierDeps = {}): ServiceNotifier {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '') return new NoopNotifier();
  return new SystemdNotifier(socket, env, deps);
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** Interval timer used by WatchdogPinger; `systemTimer` in production, fake timers in tests. */
export interface PingTimer {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

/** Global timers, looked up at call time (so test fake timers apply); the interval is unref'd so it never keeps the process alive. */
export const systemTimer: PingTimer = Object.freeze({
  setInterval(callback: () => void, ms: number): unknown {
    const handle = globalThis.setInterval(callback, ms);
    (handle as { unref?: () => void }).unref?.();
    return handle;
  },
  clearInterval(handle: unknown): void {
    globalThis.clearInterval(handle as Parameters<typeof globalThis.clearInterval>[0]);
  },
});

/** Minimal logger (pino-compatible) for the pinger's health transitions and failed pings. */
export interface PingerLogger {
  warn(obj: Record<string, unknown>, msg: string): void;
  info(obj: Record<string, unknown>, msg: string): void;
}

export interface WatchdogPingerOptions {
  readonly notifier: ServiceNotifier;
  /** True while the runtime is healthy (optionally with the names of the failing checks); a throw counts as unhealthy. */
  readonly healthy: () => boolean | { readonly ok: boolean; readonly failing: readonly string[] };
  readonly timer?: PingTimer;
  readonly logger?: PingerLogger;
}

/**
 * Sends `WATCHDOG=1` every `notifier.watchdogIntervalMs`, but only while `healthy()` is true: a stuck
 * event loop sends nothing, and an unhealthy runtime stops pinging, so systemd's `WatchdogSec=` kills
 * and restarts the service.
 * Invariants: at most one interval is armed; at most one ping is in flight (a tick that finds one
 * pending is skipped); a failed ping is logged, never thrown; without a watchdog interval start() does nothing.
 */
export class WatchdogPinger {
  private readonly notifier: ServiceNotifier;
  private readonly healthy: WatchdogPingerOptions['healthy'];
  private readonly timer: PingTimer;
  private readonly logger: PingerLogger | undefined;
  private handle: unknown = undefined;
  private armed = false;
  private inFlight = false;
  private wasHealthy = true;

  constructor(options: WatchdogPingerOptions) {
    this.notifier = options.notifier;
    this.healthy = options.healthy;
    this.timer = options.timer ?? systemTimer;
    this.logger = options.logger;
  }

  get running(): boolean {
    return this.armed;
  }

  /** Arms the interval and pings once right away (if healthy). Returns false when there is no watchdog to feed. */
  start(): boolean {
    const intervalMs = this.notifier.watchdogIntervalMs;
    if (intervalMs === null) return false;
    if (this.armed) return true;
    this.armed = true;
    this.handle = this.timer.setInterval(() => this.tick(), intervalMs);
    this.tick();
    return true;
  }

  stop(): void {
    if (!this.armed) return;
    this.armed = false;
    this.timer.clearInterval(this.handle);
    this.handle = undefined;
  }

  private tick(): void {
    if (!this.armed || this.inFlight) return;
    if (!this.checkHealthy()) return;
    this.inFlight = true;
    this.notifier
      .watchdog()
      .catch((e: unknown) => this.logger?.warn({ err: describeCause(e) }, 'watchdog ping failed'))
      .finally(() => {
        this.inFlight = false;
      });
  }

  private checkHealthy(): boolean {
    let ok: boolean;
    let failing: readonly string[] = [];
    try {
      const h = this.healthy();
      ok = typeof h === 'boolean' ? h : h.ok;
      if (typeof h !== 'boolean') failing = h.failing;
    } catch (e) {
      if (this.wasHealthy) this.logger?.warn({ err: describeCause(e) }, 'health check threw; withholding watchdog pings');
      this.wasHealthy = false;
      return false;
    }
    if (!ok && this.wasHealthy) this.logger?.warn({ failing }, 'runtime unhealthy; withholding watchdog pings so systemd restarts it');
    if (ok && !this.wasHealthy) this.logger?.info({}, 'runtime healthy again; resuming watchdog pings');
    this.wasHealthy = ok;
    return ok;
  }
}
