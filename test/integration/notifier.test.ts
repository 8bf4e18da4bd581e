import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { isOutpostError } from '../../src/errors/outpost-error.js';
import {
  NoopNotifier,
  SystemdNotifier,
  WatchdogPinger,
  createNotifier,
  watchdogIntervalFromEnv,
  type ExecFileLike,
  type PingerLogger,
  type ServiceNotifier,
} from '../../src/system/notifier.js';

/**
 * Stand-in for systemd's notify socket: an AF_UNIX SOCK_DGRAM listener that appends each datagram
 * as one JSON line. Python rather than socat: systemd-notify ends with a BARRIER=1 message carrying a
 * file descriptor and waits (5 s) until the receiver closes it; recv() without an ancillary buffer
 * drops (closes) passed descriptors as systemd does, while socat keeps them and the barrier times out.
 */
const LISTENER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("ready", flush=True)
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(json.dumps(s.recv(65536).decode()) + "\\n")
        out.flush()
`;
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function haveSystemdNotify(): boolean {
  return spawnSync('systemd-notify', ['--version'], { stdio: 'ignore' }).status === 0;
}

describe('SystemdNotifier against the real systemd-notify', () => {
  let dir = '';
  let socketPath = '';
  let outPath = '';
  let listener: ChildProcess | undefined;

  beforeAll(async () => {
    if (!haveSystemdNotify()) {
      throw new Error('systemd-notify is not installed: apt-get install -y systemd (see scripts/apt-packages.txt)');
    }
    dir = mkdtempSync(join(tmpdir(), 'outpost-notify-'));
    socketPath = join(dir, 'notify.sock');
    outPath = join(dir, 'datagrams.jsonl');
    const child = spawn(PYTHON, ['-c', LISTENER, socketPath, outPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    listener = child;
    await new Promise<void>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`notify listener exited early with ${String(code)}`)));
      child.stdout?.once('data', () => resolve());
    });
  });

  afterAll(() => {
    if (listener?.pid !== undefined && listener.exitCode === null) listener.kill('SIGTERM');
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  function datagrams(): string[][] {
    if (!existsSync(outPath)) return [];
    return readFileSync(outPath, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => (JSON.parse(line) as string).split('\n').filter((l) => l !== ''));
  }

  /** Datagrams other than systemd-notify's own BARRIER=1 handshake. */
  function messages(): string[][] {
    return datagrams().filter((d) => !(d.length === 1 && d[0] === 'BARRIER=1'));
  }

  it('delivers READY=1 with STATUS, STATUS, WATCHDOG=1 and STOPPING=1, each naming our pid', async () => {
    const notifier = createNotifier({ NOTIFY_SOCKET: socketPath, PATH: process.env.PATH, WATCHDOG_USEC: '30000000' });
    expect(notifier).toBeInstanceOf(SystemdNotifier);
    expect(notifier.watchdogIntervalMs).toBe(15_000);

    await notifier.ready('starting drivers\nsecond line');
    await notifier.status('3 drivers up');
    await notifier.watchdog();
    await notifier.stopping();

    const sent = messages();
    expect(sent).toHaveLength(4);
    for (const m of sent) expect(m).toContain(`MAINPID=${process.pid}`);
    expect(sent[0]).toEqual(expect.arrayContaining(['READY=1', 'STATUS=starting drivers second line']));
    expect(sent[1]).toContain('STATUS=3 drivers up');
    expect(sent[2]).toContain('WATCHDOG=1');
    expect(sent[3]).toContain('STOPPING=1');
  });

  it('feeds the watchdog from a WatchdogPinger on real timers while healthy', async () => {
    const before = messages().length;
    const notifier = createNotifier({ NOTIFY_SOCKET: socketPath, PATH: process.env.PATH, WATCHDOG_USEC: '200000' });
    expect(notifier.watchdogIntervalMs).toBe(100);
    const pinger = new WatchdogPinger({ notifier, healthy: () => true });
    expect(pinger.start()).toBe(true);
    try {
      await vi.waitFor(
        () => {
          const pings = messages()
            .slice(before)
            .filter((m) => m.includes('WATCHDOG=1'));
          expect(pings.length).toBeGreaterThanOrEqual(2);
        },
        { timeout: 10_000, interval: 50 },
      );
    } finally {
      pinger.stop();
    }
  });

  it('rejects with OUTPOST_E_SYSTEMD_NOTIFY when nothing listens on NOTIFY_SOCKET', async () => {
    const notifier = createNotifier({ NOTIFY_SOCKET: join(dir, 'absent.sock'), PATH: process.env.PATH });
    const error: unknown = await notifier.ready().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOutpostError(error, 'OUTPOST_E_SYSTEMD_NOTIFY')).toBe(true);
    if (!isOutpostError(error)) return;
    expect(error.details).toMatchObject({ message: 'READY', command: 'systemd-notify', exit: 1 });
    expect(error.message).not.toContain('No such file');
  });
});

interface SpawnCall {
  file: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
}

function fakeSpawner(fail?: { code: number; stderr: string }): { execFile: ExecFileLike; calls: SpawnCall[] } {
  const calls: SpawnCall[] = [];
  const execFile: ExecFileLike = (file, args, options, callback) => {
    calls.push({ file, args, env: options.env });
    if (fail === undefined) queueMicrotask(() => callback(null, '', ''));
    else queueMicrotask(() => callback(Object.assign(new Error('Command failed'), { code: fail.code }), '', fail.stderr));
    return undefined;
  };
  return { execFile, calls };
}

describe('createNotifier and SystemdNotifier (fake spawner)', () => {
  it('returns a no-op notifier without NOTIFY_SOCKET and never spawns', async () => {
    const { execFile, calls } = fakeSpawner();
    for (const env of [{}, { NOTIFY_SOCKET: '' }, { WATCHDOG_USEC: '30000000' }]) {
      const notifier = createNotifier(env, { execFile });
      expect(notifier).toBeInstanceOf(NoopNotifier);
      expect(notifier.watchdogIntervalMs).toBeNull();
      await notifier.ready('x');
      await notifier.watchdog();
      await notifier.status('y');
      await notifier.stopping();
    }
    expect(calls).toEqual([]);
  });

  it('runs systemd-notify --pid=<pid> -- VAR=VALUE with only NOTIFY_SOCKET and PATH in its environment', async () => {
    const { execFile, calls } = fakeSpawner();
    const env = { NOTIFY_SOCKET: '/run/systemd/notify', PATH: '/usr/bin:/bin', SECRET_TOKEN: 'nope' };
    const notifier = createNotifier(env, { execFile, pid: 4242 });
    await notifier.ready();
    await notifier.ready('up\r\nand running');
    await notifier.watchdog();
    await notifier.status('a\nb');
    await notifier.stopping();
    expect(calls.map((c) => c.args)).toEqual([
      ['--pid=4242', '--', 'READY=1'],
      ['--pid=4242', '--', 'READY=1', 'STATUS=up and running'],
      ['--pid=4242', '--', 'WATCHDOG=1'],
      ['--pid=4242', '--', 'STATUS=a b'],
      ['--pid=4242', '--', 'STOPPING=1'],
    ]);
    for (const c of calls) {
      expect(c.file).toBe('systemd-notify');
      expect(c.env).toEqual({ NOTIFY_SOCKET: '/run/systemd/notify', PATH: '/usr/bin:/bin' });
    }
  });

  it('wraps a failed run in OUTPOST_E_SYSTEMD_NOTIFY with the message name and exit status', async () => {
    const { execFile } = fakeSpawner({ code: 1, stderr: 'Failed to notify init system: Connection refused\n' });
    const notifier = createNotifier({ NOTIFY_SOCKET: '/run/x' }, { execFile, pid: 7 });
    const error: unknown = await notifier.watchdog().catch((e: unknown) => e);
    expect(isOutpostError(error, 'OUTPOST_E_SYSTEMD_NOTIFY')).toBe(true);
    if (!isOutpostError(error)) return;
    expect(error.details).toMatchObject({ message: 'WATCHDOG', exit: 1, stderr: 'Failed to notify init system: Connection refused' });
    expect(error.message).not.toContain('Command failed');
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('reports a missing systemd-notify binary with errno ENOENT (default spawner)', async () => {
    const notifier = createNotifier({ NOTIFY_SOCKET: '/run/x', PATH: '/usr/bin:/bin' }, { command: '/nonexistent/systemd-notify' });
    const error: unknown = await notifier.status('x').catch((e: unknown) => e);
    expect(isOutpostError(error, 'OUTPOST_E_SYSTEMD_NOTIFY')).toBe(true);
    if (!isOutpostError(error)) return;
    expect(error.details).toMatchObject({ message: 'STATUS', errno: 'ENOENT' });
    expect(error.details).not.toHaveProperty('exit');
  });
});

describe('watchdogIntervalFromEnv', () => {
  it.each([
    [{ WATCHDOG_USEC: '30000000' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '100' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '' }, 15_000],
    [{ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '101' }, null],
    [{ WATCHDOG_USEC: '1000' }, 1],
    [{ WATCHDOG_USEC: '999' }, 1],
    [{ WATCHDOG_USEC: '0' }, null],
    [{ WATCHDOG_USEC: '-5' }, null],
    [{ WATCHDOG_USEC: '15s' }, null],
    [{ WATCHDOG_USEC: '' }, null],
    [{}, null],
  ] as const)('%o -> %s', (env, expected) => {
    expect(watchdogIntervalFromEnv(env, 100)).toBe(expected);
    const notifier = createNotifier({ NOTIFY_SOCKET: '/run/x', ...env }, { execFile: fakeSpawner().execFile, pid: 100 });
    expect(notifier.watchdogIntervalMs).toBe(expected);
  });
});

function countingNotifier(intervalMs: number | null, watchdog?: () => Promise<void>): ServiceNotifier & { pings: number } {
  const n = {
    pings: 0,
    watchdogIntervalMs: intervalMs,
    ready: async () => {},
    status: async () => {},
    stopping: async () => {},
    watchdog: () => {
      n.pings += 1;
      return watchdog === undefined ? Promise.resolve() : watchdog();
    },
  };
  return n;
}

function recordingLogger(): PingerLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (_o, msg) => lines.push(`warn ${msg}`), info: (_o, msg) => lines.push(`info ${msg}`) };
}

describe('WatchdogPinger (fake timers)', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('pings on start and every interval only while healthy, and stops on stop()', async () => {
    vi.useFakeTimers();
    const notifier = countingNotifier(15_000);
    let healthy = true;
    const logger = recordingLogger();
    const pinger = new WatchdogPinger({ notifier, healthy: () => healthy, logger });

    expect(pinger.start()).toBe(true);
    expect(pinger.running).toBe(true);
    expect(notifier.pings).toBe(1);
    await vi.advanceTimersByTimeAsync(15_000);
    expect(notifier.pings).toBe(2);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(notifier.pings).toBe(4);

    healthy = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(notifier.pings).toBe(4);

    healthy = true;
    await vi.advanceTimersByTimeAsync(15_000);
    expect(notifier.pings).toBe(5);
    expect(logger.lines).toEqual([
      'warn runtime unhealthy; withholding watchdog pings so systemd restarts it',
      'info runtime healthy again; resuming watchdog pings',
    ]);

    pinger.stop();
    expect(pinger.running).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(notifier.pings).toBe(5);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('names the failing checks when it stops pinging', async () => {
    vi.useFakeTimers();
    const notifier = countingNotifier(1_000);
    const warned: unknown[] = [];
    const pinger = new WatchdogPinger({
      notifier,
      logger: { warn: (o) => warned.push(o), info: () => undefined },
      healthy: () => ({ ok: false, failing: ['eventLoop: p99 lag 1800 ms > 1000 ms'] }),
    });
    pinger.start();
    await vi.advanceTimersByTimeAsync(3_000);
    expect(notifier.pings).toBe(0);
    expect(warned).toEqual([{ failing: ['eventLoop: p99 lag 1800 ms > 1000 ms'] }]);
    pinger.stop();
  });

  it('treats a throwing health check as unhealthy', async () => {
    vi.useFakeTimers();
    const notifier = countingNotifier(1_000);
    const logger = recordingLogger();
    const pinger = new WatchdogPinger({
      notifier,
      logger,
      healthy: () => {
        throw new Error('boom');
      },
    });
    pinger.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(notifier.pings).toBe(0);
    expect(logger.lines).toEqual(['warn health check threw; withholding watchdog pings']);
    pinger.stop();
  });

  it('does nothing without a watchdog interval', () => {
    vi.useFakeTimers();
    const notifier = countingNotifier(null);
    const pinger = new WatchdogPinger({ notifier, healthy: () => true });
    expect(pinger.start()).toBe(false);
    expect(pinger.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    expect(notifier.pings).toBe(0);
  });

  it('never overlaps pings and logs a failed one without throwing', async () => {
    vi.useFakeTimers();
    let release: () => void = () => {};
    const slow = countingNotifier(1_000, () => new Promise<void>((resolve) => (release = resolve)));
    const pinger = new WatchdogPinger({ notifier: slow, healthy: () => true });
    pinger.start();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(slow.pings).toBe(1);
    release();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(slow.pings).toBe(2);
    pinger.stop();

    const logger = recordingLogger();
    const failing = countingNotifier(1_000, () => Promise.reject(new Error('socket gone')));
    const second = new WatchdogPinger({ notifier: failing, healthy: () => true, logger });
    second.start();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(failing.pings).toBe(3);
    expect(logger.lines).toEqual(['warn watchdog ping failed', 'warn watchdog ping failed', 'warn watchdog ping failed']);
    second.stop();
  });
});
