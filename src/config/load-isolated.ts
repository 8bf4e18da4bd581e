import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OutpostError } from '../errors/outpost-error.js';
import type { ErrorCode } from '../errors/catalog.js';
import type { LoadedConfig } from './load.js';
import { deepFreeze } from './merge.js';
import type { OutpostConfig } from './schema.js';

type Reply = { ok: true; config: OutpostConfig; files: string[] } | { ok: false; code: ErrorCode; message: string; details: Record<string, unknown> };

/** The loader child's heap limit (MiB): far above what the file limits allow, far below the device's memory. */
const LOADER_HEAP_MIB = 512;
/** The loader child's deadline: the file limits keep a load under seconds even on a slow device. */
const LOADER_DEADLINE_MS = 120_000;

/**
 * Loads and validates the configuration in a short-lived child process, so the schema library and
 * the compiled validator (≈ 35 MiB of code and heap) never become resident in the long-running
 * gateway process. Same result and errors as loadConfig; costs one Node start (≈ 0.1–0.3 s).
 * The child runs with a heap limit and a deadline, so no input can make the gateway hang or swap.
 */
export function loadConfigIsolated(file: string, deadlineMs = LOADER_DEADLINE_MS): Promise<LoadedConfig> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./load-worker.js', import.meta.url)), [file], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      execArgv: [`--max-old-space-size=${LOADER_HEAP_MIB}`],
    });
    let reply: Reply | null = null;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, deadlineMs);
    child.once('message', (m) => {
      reply = m as Reply;
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new OutpostError('OUTPOST_E_CONFIG_READ', 'configuration loader could not start', { cause: e, details: { file } }));
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const r = reply as Reply | null;
      if (r === null) {
        const why = timedOut ? `configuration loader did not finish within ${deadlineMs} ms` : 'configuration loader exited without a result';
        reject(new OutpostError('OUTPOST_E_CONFIG_READ', why, { details: { file, exitCode: code, signal } }));
      } else if (r.ok) resolve({ config: deepFreeze(r.config), files: r.files });
      else reject(new OutpostError(r.code, r.message, { details: r.details }));
    });
  });
}
