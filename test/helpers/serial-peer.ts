import path from 'node:path';
import { startProcess, type TestProcess } from './process.js';
import { PEERS_DIR, PYTHON } from './peers.js';

/** The pyserial line peer (test/peers/line_peer.py) on one end of a pty pair. */
export async function startLinePeer(tty: string, extra: string[] = []): Promise<TestProcess> {
  const proc = startProcess(PYTHON, [path.join(PEERS_DIR, 'line_peer.py'), tty, ...extra]);
  await proc.waitForOutput(/ready/, 20_000);
  return proc;
}
