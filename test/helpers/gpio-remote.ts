import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { GpioLine, GpioLineOptions, GpioPort } from '../../hal/gpio/port.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import type { ErrorCode } from '../../src/errors/catalog.js';
import { PEERS_DIR } from './peers.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist');

/**
 * The real OnoffGpioPort running in a child process inside a private mount namespace (`unshare -m`)
 * with a tmpfs sysfs GPIO tree (test/peers/gpio_sysfs_child.mjs), seen here through GpioPort.
 * `poke` changes an input's value file as the outside world would; `file` reads a sysfs file.
 */
export class RemoteGpioPort implements GpioPort {
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  private readonly watchers = new Map<number, (v: boolean) => void>();
  private nextId = 1;
  private stderr = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {}

  static async start(layout: 'base0' | 'base512'): Promise<RemoteGpioPort> {
    const child = spawn('unshare', ['-m', process.execPath, path.join(PEERS_DIR, 'gpio_sysfs_child.mjs'), DIST, layout], { stdio: ['pipe', 'pipe', 'pipe'] });
    const port = new RemoteGpioPort(child);
    child.stderr.on('data', (d: Buffer) => (port.stderr += d.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`gpio child not ready: ${port.stderr}`)), 20_000);
      child.once('exit', (code) => reject(new Error(`gpio child exited ${code}: ${port.stderr}`)));
      createInterface({ input: child.stdout }).on('line', (l) => {
        const m = JSON.parse(l) as { id?: number; ok?: boolean; value?: unknown; error?: { code?: string; message: string }; event?: string; line?: number };
        if (m.event === 'ready') {
          clearTimeout(t);
          resolve();
        } else if (m.event === 'edge') port.watchers.get(m.line as number)?.(m.value as boolean);
        else if (m.id !== undefined) {
          const p = port.pending.get(m.id);
          port.pending.delete(m.id);
          if (m.ok) p?.resolve(m.value);
          else p?.reject(m.error?.code?.startsWith('OUTPOST_E_') ? new OutpostError(m.error.code as ErrorCode, m.error.message) : new Error(m.error?.message));
        }
      });
    });
    await ready;
    return port;
  }

  logs(): string {
    return this.stderr;
  }

  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });
  }

  poke(pin: number, level: boolean): Promise<void> {
    return this.call('poke', { pin, level });
  }

  file(p: string): Promise<string> {
    return this.call('file', { path: p });
  }

  async open(pin: number, options: GpioLineOptions): Promise<GpioLine> {
    const line = await this.call<number>('open', { pin, options });
    return {
      read: () => this.call<boolean>('read', { line }),
      write: (value: boolean) => this.call<void>('write', { line, value }),
      watch: (listener) => {
        this.watchers.set(line, listener);
        void this.call('watch', { line });
      },
      close: () => this.call<void>('close', { line }),
    };
  }

  close(): Promise<void> {
    return this.call('closePort');
  }

  async stop(): Promise<void> {
    this.child.stdin.end();
    await new Promise((r) => (this.child.exitCode !== null ? r(null) : this.child.once('exit', r)));
  }
}
