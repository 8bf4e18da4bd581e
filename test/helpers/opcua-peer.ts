import { copyFileSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitFor } from './net.js';
import { startProcess, type TestProcess } from './process.js';
import { PEERS_DIR } from './peers.js';

/** The node-opcua server of test/peers/opcua_server.mjs, in its own process with its own PKI folder. */
export interface OpcuaPeer {
  readonly port: number;
  readonly endpoint: string;
  readonly pki: string;
  process: TestProcess;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startOpcuaServer(
  pki: string,
  options: { port?: number; vars?: number; maxPerCall?: number; policies?: readonly string[]; modes?: readonly string[] } = {},
): Promise<OpcuaPeer> {
  const port = options.port ?? (await freePort());
  const args = [path.join(PEERS_DIR, 'opcua_server.mjs'), '--port', String(port), '--pki', pki, '--vars', String(options.vars ?? 12), '--max-per-call', String(options.maxPerCall ?? 5)];
  // Only these security policies / modes offered (default: all), e.g. a server that offers no secure endpoint.
  if (options.policies) args.push('--policies', options.policies.join(','));
  if (options.modes) args.push('--modes', options.modes.join(','));
  const launch = async () => {
    const p = startProcess(process.execPath, args);
    await p.waitForOutput(/ready \d+/, 60_000);
    return p;
  };
  const peer: OpcuaPeer = {
    port,
    endpoint: `opc.tcp://127.0.0.1:${port}`,
    pki,
    process: await launch(),
    restart: async () => {
      peer.process = await launch();
    },
    stop: async () => void (await peer.process.stop()),
  };
  return peer;
}

/** What a server administrator does: trust every client certificate the server rejected so far. */
export async function serverTrustsRejectedClients(pki: string, timeoutMs = 10_000): Promise<string[]> {
  const rejected = path.join(pki, 'rejected');
  const names = await waitFor(() => {
    const n = readdirSync(rejected).filter((f) => f.endsWith('.pem') || f.endsWith('.der'));
    return n.length > 0 ? n : undefined;
  }, timeoutMs);
  mkdirSync(path.join(pki, 'trusted', 'certs'), { recursive: true });
  for (const n of names) renameSync(path.join(rejected, n), path.join(pki, 'trusted', 'certs', n));
  return names;
}

/** Pre-trusts a server's own certificate in a client PKI (as an installer would, out of band). */
export function clientTrustsServer(serverPki: string, clientPki: string): void {
  const own = path.join(serverPki, 'own', 'certs');
  const dst = path.join(clientPki, 'trusted', 'certs');
  mkdirSync(dst, { recursive: true });
  for (const f of readdirSync(own).filter((x) => x.endsWith('.pem'))) copyFileSync(path.join(own, f), path.join(dst, f));
}
