import { OutpostError } from '../../src/errors/outpost-error.js';
import type { ModbusPort } from './port.js';
import type { ModbusConnectionConfig, ModbusTable } from './schema.js';

type Callback<T> = (err: unknown, res: T) => void;

/** The part of modbus-serial's client this port uses (kept narrow so tests can read what is relied on). */
export interface ModbusSerialClient {
  readonly isOpen: boolean;
  setTimeout(ms: number): void;
  connectTCP(host: string, options: { port: number; timeout?: number }): Promise<void>;
  connectRTUBuffered(path: string, options: Record<string, unknown>): Promise<void>;
  close(cb: () => void): void;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (e: unknown) => void): unknown;
  writeFC1(unit: number, address: number, count: number, next: Callback<{ data: boolean[] }>): void;
  writeFC2(unit: number, address: number, count: number, next: Callback<{ data: boolean[] }>): void;
  writeFC3(unit: number, address: number, count: number, next: Callback<{ data: number[] }>): void;
  writeFC4(unit: number, address: number, count: number, next: Callback<{ data: number[] }>): void;
  writeFC5(unit: number, address: number, state: boolean, next: Callback<unknown>): void;
  writeFC6(unit: number, address: number, value: number, next: Callback<unknown>): void;
  writeFC15(unit: number, address: number, states: boolean[], next: Callback<unknown>): void;
  writeFC16(unit: number, address: number, values: number[], next: Callback<unknown>): void;
}

export type ModbusClientFactory = () => ModbusSerialClient;

type RealConnection = Exclude<ModbusConnectionConfig, { type: 'sim' }>;

const FRAME_ERROR = /^(CRC error|Data length error|Unexpected data error)/;

/** Maps an error of modbus-serial to the OutpostError the driver understands. */
export function mapModbusError(e: unknown, context: Record<string, unknown>): OutpostError {
  const err = e as { name?: string; errno?: string; message?: string; modbusCode?: number } | null;
  if (typeof err?.modbusCode === 'number') {
    return new OutpostError('OUTPOST_E_MODBUS_EXCEPTION', 'modbus device answered with an exception', {
      cause: e,
      details: { ...context, exception: err.modbusCode },
    });
  }
  if (err?.errno === 'ETIMEDOUT' || err?.name === 'TransactionTimedOutError') {
    return new OutpostError('OUTPOST_E_MODBUS_TIMEOUT', 'modbus request timed out', { cause: e, details: context });
  }
  if (typeof err?.message === 'string' && FRAME_ERROR.test(err.message)) {
    return new OutpostError('OUTPOST_E_MODBUS_FRAME', 'modbus answer was malformed', { cause: e, details: context });
  }
  return new OutpostError('OUTPOST_E_MODBUS_NOT_CONNECTED', 'modbus transport is not usable', { cause: e, details: context });
}

/**
 * ModbusPort over modbus-serial: a Modbus TCP connection, or an RTU line (buffered RTU framing).
 * Invariants: a fresh client per `connect()` (modbus-serial never reconnects, and a client that saw
 * its socket close stays unusable); `isOpen()` is false from the moment the socket or tty closes;
 * every failure is an OutpostError (TIMEOUT, EXCEPTION with the code, FRAME, NOT_CONNECTED); on an
 * RTU line, bytes left over from an earlier (timed-out or corrupt) answer are dropped before each
 * request, so they are never parsed as the next answer. Concurrency is the caller's job (the
 * driver's JobQueue: one request at a time on a line).
 */
export class ModbusSerialPort implements ModbusPort {
  private client: ModbusSerialClient | null = null;
  private open = false;

  constructor(
    private readonly connection: RealConnection,
    private readonly createClient: ModbusClientFactory,
  ) {}

  async connect(): Promise<void> {
    await this.close();
    const c = this.connection;
    const client = this.createClient();
    client.on('error', () => undefined);
    client.on('close', () => {
      if (this.client === client) this.open = false;
    });
    try {
      if (c.type === 'tcp') {
        await client.connectTCP(c.host, { port: c.port, timeout: c.timeoutMs });
      } else {
        await client.connectRTUBuffered(c.port, {
          baudRate: c.baudRate,
          parity: c.parity,
          dataBits: c.dataBits,
          stopBits: c.stopBits,
        });
      }
    } catch (e) {
      await closeClient(client);
      throw new OutpostError('OUTPOST_E_MODBUS_CONNECT', c.type === 'tcp' ? `cannot connect to ${c.host}:${c.port}` : `cannot open serial line ${c.port}`, {
        cause: e,
        details: c.type === 'tcp' ? { host: c.host, port: c.port } : { port: c.port },
      });
    }
    client.setTimeout(c.timeoutMs);
    this.client = client;
    this.open = true;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = null;
    this.open = false;
    if (client) await closeClient(client);
  }

  isOpen(): boolean {
    return this.open && this.client !== null && this.client.isOpen;
  }

  async read(unitId: number, table: ModbusTable, address: number, count: number): Promise<number[]> {
    const fc = { coil: 1, discrete: 2, holding: 3, input: 4 }[table];
    const res = await this.call<{ data: Array<number | boolean> }>(unitId, fc, address, (client, next) => {
      if (fc === 1) client.writeFC1(unitId, address, count, next as Callback<{ data: boolean[] }>);
      else if (fc === 2) client.writeFC2(unitId, address, count, next as Callback<{ data: boolean[] }>);
      else if (fc === 3) client.writeFC3(unitId, address, count, next as Callback<{ data: number[] }>);
      else client.writeFC4(unitId, address, count, next as Callback<{ data: number[] }>);
    });
    const data = res.data.slice(0, count).map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
    if (data.length !== count) {
      throw new OutpostError('OUTPOST_E_MODBUS_FRAME', 'modbus answer was malformed', { details: { unitId, functionCode: fc, expected: count, got: data.length } });
    }
    return data;
  }

  async writeCoils(unitId: number, address: number, values: readonly boolean[]): Promise<void> {
    if (values.length === 1) await this.call(unitId, 5, address, (c, next) => c.writeFC5(unitId, address, values[0] as boolean, next));
    else await this.call(unitId, 15, address, (c, next) => c.writeFC15(unitId, address, [...values], next));
  }

  async writeRegisters(unitId: number, address: number, values: readonly number[]): Promise<void> {
    if (values.length === 1) await this.call(unitId, 6, address, (c, next) => c.writeFC6(unitId, address, values[0] as number, next));
    else await this.call(unitId, 16, address, (c, next) => c.writeFC16(unitId, address, [...values], next));
  }

  private call<T>(unitId: number, fc: number, address: number, send: (client: ModbusSerialClient, next: Callback<T>) => void): Promise<T> {
    const client = this.client;
    const context = { unitId, functionCode: fc, address };
    if (!client || !this.isOpen()) {
      return Promise.reject(new OutpostError('OUTPOST_E_MODBUS_NOT_CONNECTED', 'modbus port is not open', { details: context }));
    }
    if (this.connection.type === 'rtu') dropStaleBytes(client);
    return new Promise<T>((resolve, reject) => {
      try {
        send(client, (err, res) => (err ? reject(mapModbusError(err, context)) : resolve(res)));
      } catch (e) {
        reject(mapModbusError(e, context));
      }
    });
  }
}

/** Closes a client; modbus-serial never calls back when the socket was not open, so this waits at most 1 s. */
function closeClient(client: ModbusSerialClient): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 1000);
    t.unref();
    try {
      client.close(() => {
        clearTimeout(t);
        resolve();
      });
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

/** Empties modbus-serial's RTU receive buffer (a private field; absent fields are left alone). */
function dropStaleBytes(client: ModbusSerialClient): void {
  const port = (client as unknown as { _port?: { _buffer?: unknown } })._port;
  if (port && Buffer.isBuffer(port._buffer)) port._buffer = Buffer.alloc(0);
}

/** Creates modbus-serial clients; imported lazily so a gateway without Modbus never loads it. */
export async function modbusSerialFactory(): Promise<ModbusClientFactory> {
  const mod = (await import('modbus-serial')) as unknown as { default: new () => ModbusSerialClient };
  const ModbusRTU = mod.default;
  return () => new ModbusRTU();
}
