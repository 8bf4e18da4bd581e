import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { generous } from './deadline.js';

/** A child process started by a test, with its output collected; `stop()` kills it and waits. */
export interface TestProcess {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when the combined output matches, or rejects after timeoutMs (at least FLOOR_MS) or when the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited(): Promise<number | null>;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

export function startProcess(command: string, args: readonly string[], options: SpawnOptions = {}): TestProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  running.add(child);
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString('utf8');
    for (const l of listeners) l();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      for (const l of listeners) l();
      resolve(code ?? (signal ? 128 : null));
    }),
  );
  return {
    child,
    output: () => out,
    exited: () => exit,
    waitForOutput(pattern, timeoutMs = 15_000) {
      timeoutMs = generous(timeoutMs);
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            done();
            reject(new Error(`process exited before printing ${pattern}; output:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; output:\n${out}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        const code = await exit;
        clearTimeout(t);
        return code;
      }
      return exit;
    },
  };
}
