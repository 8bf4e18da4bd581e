import { chmod, lstat, rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import { CommandRegistry } from '../../src/commands/command.js';
import type { OutpostConfig } from '../../src/config/schema.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { otaCommandsInProcess } from '../command.js';
import type { LoadedOtaConfig } from '../config.js';
import type { OtaWiring } from '../system.js';
import { OtaAgentServer } from './server.js';

export interface AgentRunOptions {
  readonly loaded: LoadedOtaConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly fetch: typeof fetch;
  readonly wiring: OtaWiring;
  readonly env: NodeJS.ProcessEnv;
  /** Socket path to listen on when not socket-activated (default `ota.fleet.agentSocket`). */
  readonly listen?: string;
  /** Exit after this long without requests; default 60 s when socket-activated, never otherwise. */
  readonly idleExitSec?: number;
  readonly signal: AbortSignal;
}

/** The listening socket systemd passed (LISTEN_PID/LISTEN_FDS, fd 3), if any. */
export function activatedFd(env: NodeJS.ProcessEnv, pid: number): number | null {
  if (env['LISTEN_PID'] !== String(pid)) return null;
  const n = Number(env['LISTEN_FDS'] ?? '0');
  if (n === 0) return null;
  if (n !== 1) throw new OutpostError('OUTPOST_E_OTA_AGENT', `the OTA agent takes one listening socket, systemd passed ${n}`, { details: { fds: n } });
  return 3;
}

/**
 * `outpost ota agent`: the privileged half of fleet updates. Serves `ota.install` and `ota.status` with the
 * in-process updater to the unprivileged runtime (`ota.fleet.via: agent`) on a unix socket, either the one
 * systemd passes (outpost-ota-agent.socket, root:outpost 0660) or `listen`. Resolves when idle or aborted.
 */
export async function runOtaAgent(o: AgentRunOptions): Promise<void> {
  const commands = new CommandRegistry();
  const config = { ota: o.loaded.ota, gateway: { dataDir: o.loaded.dataDir } } as unknown as OutpostConfig;
  otaCommandsInProcess({ ...o.wiring, clock: o.clock, fetch: o.fetch })({ commands }, o.logger, { config, files: o.loaded.files });
  const fd = activatedFd(o.env, process.pid);
  const idleExitSec = o.idleExitSec ?? (fd !== null ? 60 : undefined);
  const server = new OtaAgentServer(commands, { logger: o.logger, clock: o.clock, idleExitMs: (idleExitSec ?? 0) * 1000 });
  const socket = o.listen ?? o.loaded.ota.fleet.agentSocket;
  if (fd !== null) {
    await server.listen({ fd });
  } else {
    // A socket file left by an agent that died is removed; anything else at that path is refused.
    const st = await lstat(socket).catch(() => null);
    if (st && !st.isSocket()) throw new OutpostError('OUTPOST_E_OTA_AGENT', `${socket} exists and is not a socket`, { details: { socket } });
    if (st) await rm(socket);
    await server.listen({ path: socket });
    await chmod(socket, 0o660);
  }
  o.logger.info({ socket: fd !== null ? `fd ${fd}` : socket, idleExitSec: idleExitSec ?? null }, 'ota agent listening');
  try {
    if (idleExitSec === undefined) {
      await new Promise<void>((resolve) => (o.signal.aborted ? resolve() : o.signal.addEventListener('abort', () => resolve(), { once: true })));
    } else {
      await server.idle(o.signal);
    }
  } finally {
    await server.close();
    if (fd === null) await rm(socket, { force: true });
    o.logger.info({}, 'ota agent stopped');
  }
}
