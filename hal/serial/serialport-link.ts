import { realpath } from 'node:fs/promises';
import { OutpostError } from '../../src/errors/outpost-error.js';
import type { SerialLink } from './port.js';
import type { SerialDeviceConfig } from './schema.js';

/** The part of serialport's SerialPort this link uses. */
export interface SerialPortLike {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  close(cb: (err: Error | null) => void): void;
  write(data: Buffer, cb: (err: Error | null | undefined) => void): boolean;
  drain(cb: (err: Error | null) => void): void;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close', listener: (err?: Error & { disconnected?: boolean }) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  removeAllListeners(): unknown;
}

export interface SerialPortOptions {
  readonly path: string;
  readonly baudRate: number;
  readonly parity: 'none' | 'even' | 'odd';
  readonly dataBits: 7 | 8;
  readonly stopBits: 1 | 2;
}

export type SerialPortFactory = (options: SerialPortOptions) => SerialPortLike;

type RealConnection = Extract<SerialDeviceConfig['connection'], { type: 'serial' }>;

/**
 * SerialLink over the serialport package.
 * Invariants: a fresh SerialPort per `open()` (a port whose device vanished cannot be reused);
 * `onClose` fires once per unexpected close (unplug, tty gone), never for our own `close()`;
 * `write` resolves only once the bytes were handed to the OS (drained) and rejects with
 * OUTPOST_E_SERIAL_WRITE when the port is not open. The device path is also checked every
 * `presenceCheckMs`: when it vanishes or now resolves to another device node (a USB adapter pulled,
 * a pty gone), the port is closed and reported as unplugged, even if the kernel never woke up the
 * pending read (a hung-up pty can signal POLLHUP without POLLIN, which serialport never sees).
 */
export class SerialportLink implements SerialLink {
  private port: SerialPortLike | null = null;
  private dataListener: (chunk: Buffer) => void = () => undefined;
  private closeListener: () => void = () => undefined;

  private presence: NodeJS.Timeout | null = null;

  constructor(
    private readonly connection: RealConnection,
    private readonly createPort: SerialPortFactory,
    private readonly presenceCheckMs = 1000,
  ) {}

  async open(): Promise<void> {
    if (this.port?.isOpen) return;
    const c = this.connection;
    const port = this.createPort({ path: c.path, baudRate: c.baudRate, parity: c.parity, dataBits: c.dataBits, stopBits: c.stopBits });
    port.on('error', () => undefined);
    try {
      await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    } catch (e) {
      port.removeAllListeners();
      throw new OutpostError('OUTPOST_E_SERIAL_OPEN', `cannot open serial port ${c.path}`, { cause: e, details: { path: c.path } });
    }
    port.on('data', (chunk) => {
      if (this.port === port) this.dataListener(chunk);
    });
    port.on('close', () => this.lost(port));
    this.port = port;
    this.watchPresence(port, await realpath(c.path).catch(() => c.path));
  }

  private lost(port: SerialPortLike): void {
    if (this.port !== port) return;
    this.port = null;
    this.stopPresence();
    if (port.isOpen) port.close(() => undefined);
    this.closeListener();
  }

  private watchPresence(port: SerialPortLike, device: string): void {
    this.stopPresence();
    let checking = false;
    this.presence = setInterval(() => {
      if (checking) return;
      checking = true;
      realpath(this.connection.path)
        .then((now) => now !== device, () => true)
        .then((gone) => {
          if (gone) this.lost(port);
        })
        .finally(() => (checking = false));
    }, this.presenceCheckMs);
    this.presence.unref();
  }

  private stopPresence(): void {
    if (this.presence) clearInterval(this.presence);
    this.presence = null;
  }

  async close(): Promise<void> {
    const port = this.port;
    this.port = null;
    this.stopPresence();
    if (!port?.isOpen) return;
    await new Promise<void>((resolve) => port.close(() => resolve()));
    port.removeAllListeners();
  }

  isOpen(): boolean {
    return this.port?.isOpen ?? false;
  }

  async write(data: Buffer): Promise<void> {
    const port = this.port;
    if (!port?.isOpen) throw new OutpostError('OUTPOST_E_SERIAL_WRITE', 'serial port is not open', { details: { path: this.connection.path } });
    try {
      await new Promise<void>((resolve, reject) => {
        port.write(data, (err) => (err ? reject(err) : undefined));
        port.drain((err) => (err ? reject(err) : resolve()));
      });
    } catch (e) {
      throw new OutpostError('OUTPOST_E_SERIAL_WRITE', 'serial write failed', { cause: e, details: { path: this.connection.path } });
    }
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: () => void): void {
    this.closeListener = listener;
  }
}

/** Creates serialport ports; imported lazily so a gateway without serial devices never loads the native binding. */
export async function serialportFactory(): Promise<SerialPortFactory> {
  const { SerialPort } = (await import('serialport')) as unknown as {
    SerialPort: new (o: SerialPortOptions & { autoOpen: boolean }) => SerialPortLike;
  };
  return (options) => new SerialPort({ ...options, autoOpen: false });
}
