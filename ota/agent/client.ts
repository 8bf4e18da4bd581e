import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { ERROR_CATALOG, type ErrorCode } from '../../src/errors/catalog.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import type { CommandReply } from '../../src/uplink/commands.js';

export type AgentProgress = { percent?: number; state: string; detail?: Record<string, unknown> };

function agentError(message: string, socket: string, cause?: unknown): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_AGENT', message, { details: { socket }, ...(cause === undefined ? {} : { cause }) });
}

/** The agent's error reply as the OutpostError it was on the agent's side (same code, message and details). */
function fromReply(e: NonNullable<CommandReply['error']>, socket: string): OutpostError {
  const code = (Object.hasOwn(ERROR_CATALOG, e.code) ? e.code : 'OUTPOST_E_OTA_AGENT') as ErrorCode;
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : 'the OTA agent reported an error';
  return new OutpostError(code, message, { details: { ...(e.details ?? {}), via: 'agent', socket } });
}

/**
 * Runs one command on the OTA agent over its unix socket: sends the request line, relays `progress`
 * replies and resolves with the `ok` result or rejects with the agent's error. Invariants: exactly one
 * settle per call; the connection is always closed; a reply line that is not JSON, or a connection that
 * ends before the final reply, is OUTPOST_E_OTA_AGENT; aborting the signal closes the connection (the
 * agent keeps running the command: an install is not abandoned half-way by the runtime going away).
 */
export function callAgent(socket: string, name: string, params: unknown, onProgress: (p: AgentProgress) => void, signal?: AbortSignal, maxReplyBytes = 1 << 20): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = connect({ path: socket });
    let settled = false;
    let buf = '';
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      conn.destroy();
      f();
    };
    const onAbort = () => settle(() => reject(agentError('the command was aborted while the OTA agent ran it', socket, signal?.reason)));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify({ id: randomUUID(), name, params })}\n`));
    conn.on('error', (e) => settle(() => reject(agentError('the OTA agent is not reachable on its socket (is outpost-ota-agent.socket running?)', socket, e))));
    conn.on('close', () => settle(() => reject(agentError('the OTA agent closed the connection before its final reply', socket))));
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > maxReplyBytes) return settle(() => reject(agentError(`a reply line from the OTA agent exceeds ${maxReplyBytes} bytes`, socket)));
      let nl: number;
      while (!settled && (nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let r: CommandReply;
        try {
          r = JSON.parse(line) as CommandReply;
        } catch (e) {
          return settle(() => reject(agentError('the OTA agent sent a reply that is not JSON', socket, e)));
        }
        if (r.status === 'progress' && typeof r.state === 'string') {
          onProgress({ state: r.state, ...(typeof r.percent === 'number' ? { percent: r.percent } : {}), ...(r.detail ? { detail: r.detail } : {}) });
        } else if (r.status === 'ok') {
          settle(() => resolve(r.result ?? null));
        } else if (r.status === 'error') {
          const err = r.error ?? { code: 'OUTPOST_E_OTA_AGENT', message: 'the OTA agent reported an error without details' };
          settle(() => reject(fromReply(err, socket)));
        } else if (r.status !== 'accepted') {
          settle(() => reject(agentError('the OTA agent sent a reply with an unknown status', socket)));
        }
      }
    });
  });
}
