import { spawn } from 'node:child_process';
import type { Logger } from 'pino';
import type { FlowState } from './states.js';

export type HookKind = 'enter' | 'leave' | 'error';
export type HookResult = 'ok' | 'retry-later' | 'failed';

/** Exit status a hook uses to ask for a retry later (sysexits EX_TEMPFAIL). */
export const EXIT_RETRY_LATER = 75;

export interface HookSpec {
  readonly enter?: readonly string[];
  readonly leave?: readonly string[];
  readonly error?: readonly string[];
}

/**
 * Runs the configured command of a state's enter/leave/error hook. The command gets the update's
 * context in OUTPOST_OTA_* variables and OUTPOST_PID (the updater's process id). Invariants: a hook
 * is bounded by the timeout (then SIGKILL, counted as failed); exit 0 is ok, 75 retry-later, anything
 * else failed; output is logged, never parsed.
 */
export class HookRunner {
  constructor(
    private readonly hooks: Readonly<Partial<Record<FlowState, HookSpec>>>,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  has(state: FlowState, kind: HookKind): boolean {
    return this.hooks[state]?.[kind] !== undefined;
  }

  async run(state: FlowState, kind: HookKind, context: Readonly<Record<string, string>>): Promise<HookResult> {
    const argv = this.hooks[state]?.[kind];
    if (!argv || argv.length === 0) return 'ok';
    const [cmd, ...args] = argv as [string, ...string[]];
    const env: NodeJS.ProcessEnv = { ...process.env, OUTPOST_PID: String(process.pid), OUTPOST_OTA_STATE: state, OUTPOST_OTA_HOOK: kind };
    for (const [k, v] of Object.entries(context)) env[`OUTPOST_OTA_${k.toUpperCase()}`] = v;
    const started = Date.now();
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      let out = '';
      let child;
      try {
        child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch {
        resolve({ code: null, output: 'spawn failed' });
        return;
      }
      const keep = (d: Buffer) => (out = (out + d.toString('utf8')).slice(-4000));
      child.stdout.on('data', keep);
      child.stderr.on('data', keep);
      const timer = setTimeout(() => child.kill('SIGKILL'), this.timeoutMs);
      child.once('error', () => {
        clearTimeout(timer);
        resolve({ code: null, output: `${out}\n(cannot execute ${cmd})` });
      });
      child.once('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c, output: out });
      });
    });
    const result: HookResult = code === 0 ? 'ok' : code === EXIT_RETRY_LATER ? 'retry-later' : 'failed';
    const log = result === 'failed' ? this.logger.warn.bind(this.logger) : this.logger.info.bind(this.logger);
    log({ state, kind, command: cmd, exitCode: code, result, ms: Date.now() - started, output: output.trim().slice(-1000) }, 'ota hook finished');
    return result;
  }
}
