import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor } from './net.js';
import { startProcess, type TestProcess } from './process.js';

/** Real peers of the driver tests: pymodbus servers, socat pty pairs, the fault relay, the serial line peer. */

export const PEERS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../peers');
export const PYTHON = '/usr/bin/python3';

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `outpost-${prefix}-`));
}

/** A socat pseudo-terminal pair: bytes written to `a` come out of `b` and back. */
export interface PtyPair {
  readonly a: string;
  readonly b: string;
  readonly process: TestProcess;
  stop(): Promise<void>;
}

export async function startPtyPair(dir: string, name: string): Promise<PtyPair> {
  const a = path.join(dir, `${name}-a`);
  const b = path.join(dir, `${name}-b`);
  const proc = startProcess('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`]);
  await waitFor(() => existsSync(a) && existsSync(b), 10_000);
  await proc.waitForOutput(/starting data transfer loop/, 10_000);
  return { a, b, process: proc, stop: async () => void (await proc.stop('SIGTERM')) };
}

/** The pymodbus peer (test/peers/modbus_peer.py): TCP on a free port. */
export async function startModbusTcpPeer(port?: number, extra: string[] = []): Promise<{ port: number; process: TestProcess }> {
  const p = port ?? (await freePort());
  const proc = startProcess(PYTHON, [path.join(PEERS_DIR, 'modbus_peer.py'), 'tcp', String(p), ...extra]);
  await proc.waitForOutput(/ready/, 20_000);
  return { port: p, process: proc };
}

/** The pymodbus peer as an RTU slave on one end of a pty pair. */
export async function startModbusRtuPeer(tty: string, units = '1,2'): Promise<TestProcess> {
  const proc = startProcess(PYTHON, [path.join(PEERS_DIR, 'modbus_peer.py'), 'rtu', tty, '19200', '--units', units]);
  await proc.waitForOutput(/ready/, 20_000);
  return proc;
}

/** Asks a peer that prints a JSON line on SIGUSR1 for its counters. */
export async function peerStats<T>(proc: TestProcess, key: string): Promise<T> {
  const before = proc.output().length;
  proc.child.kill('SIGUSR1');
  const line = await waitFor(() => {
    const lines = proc.output().slice(before).split('\n').filter((l) => l.startsWith('{'));
    return lines[0];
  }, 10_000);
  const parsed = JSON.parse(line) as Record<string, unknown>;
  return (key ? parsed[key] : parsed) as T;
}

/** The fault relay between two pty pairs: device end `deviceSide`, client end `clientSide`. */
export async function startRelay(deviceSide: string, clientSide: string, options: string[]): Promise<TestProcess> {
  const proc = startProcess(PYTHON, [path.join(PEERS_DIR, 'pty_relay.py'), deviceSide, clientSide, ...options]);
  await proc.waitForOutput(/ready/, 10_000);
  return proc;
}
