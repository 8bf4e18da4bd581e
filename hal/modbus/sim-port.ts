import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import type { ModbusPort } from './port.js';
import type { ModbusTable } from './schema.js';

/** One unit's four tables, 65536 entries each, allocated lazily. */
class UnitTables {
  readonly coil = new Uint8Array(65536);
  readonly discrete = new Uint8Array(65536);
  readonly holding = new Uint16Array(65536);
  readonly input = new Uint16Array(65536);
  /** Addresses that exist; reading anything else answers exception 2, as a real device does. */
  readonly mapped: Record<ModbusTable, Set<number>> = { coil: new Set(), discrete: new Set(), holding: new Set(), input: new Set() };
}

/**
 * An in-memory Modbus server seen through the ModbusPort interface.
 * Invariants: only declared units answer (others time out, like a silent RTU slave); reads of
 * unmapped addresses and writes to read-only tables fail with the Modbus exception a device would
 * send; at most 125 registers / 2000 bits per read, 123 registers / 1968 bits per write.
 */
export class SimModbusPort implements ModbusPort {
  private open = false;
  private readonly units = new Map<number, UnitTables>();
  /** Requests served, by function code: lets tests and benchmarks count what reached the "device". */
  readonly requests = { fc1: 0, fc2: 0, fc3: 0, fc4: 0, fc5: 0, fc6: 0, fc15: 0, fc16: 0 };
  /** Set to make the device stop answering (requests time out) until cleared. */
  offline = false;

  private readonly latencyMs: number;
  private readonly timeoutMs: number;
  private readonly beforeRequest: () => void;
  private readonly afterWrite: (unitId: number, table: ModbusTable, address: number, count: number) => void;

  constructor(
    private readonly clock: Clock,
    options: {
      latencyMs?: number;
      timeoutMs?: number;
      beforeRequest?: () => void;
      afterWrite?: (unitId: number, table: ModbusTable, address: number, count: number) => void;
    } = {},
  ) {
    this.latencyMs = options.latencyMs ?? 0;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.beforeRequest = options.beforeRequest ?? (() => undefined);
    this.afterWrite = options.afterWrite ?? (() => undefined);
  }

  /** Declares a range of addresses on a unit so it can be read and written. */
  map(unitId: number, table: ModbusTable, address: number, count: number): void {
    const u = this.unit(unitId, true) as UnitTables;
    for (let i = 0; i < count; i++) u.mapped[table].add(address + i);
  }

  /** Sets raw values as the device itself would (sensors changing), bypassing write rules. */
  poke(unitId: number, table: ModbusTable, address: number, values: readonly number[]): void {
    const u = this.unit(unitId, true) as UnitTables;
    const arr = u[table];
    values.forEach((v, i) => {
      arr[address + i] = table === 'coil' || table === 'discrete' ? (v ? 1 : 0) : v & 0xffff;
    });
  }

  peek(unitId: number, table: ModbusTable, address: number, count: number): number[] {
    const u = this.unit(unitId, false);
    if (!u) return [];
    return Array.from(u[table].subarray(address, address + count));
  }

  async connect(): Promise<void> {
    this.open = true;
  }

  async close(): Promise<void> {
    this.open = false;
  }

  isOpen(): boolean {
    return this.open;
  }

  async read(unitId: number, table: ModbusTable, address: number, count: number): Promise<number[]> {
    const fc = { coil: 1, discrete: 2, holding: 3, input: 4 }[table];
    const max = fc <= 2 ? 2000 : 125;
    const u = await this.request(unitId, `fc${fc}` as keyof SimModbusPort['requests']);
    if (count < 1 || count > max) throw this.exception(3, unitId, fc);
    for (let i = 0; i < count; i++) if (!u.mapped[table].has(address + i)) throw this.exception(2, unitId, fc);
    return Array.from(u[table].subarray(address, address + count));
  }

  async writeCoils(unitId: number, address: number, values: readonly boolean[]): Promise<void> {
    const fc = values.length === 1 ? 5 : 15;
    const u = await this.request(unitId, `fc${fc}` as keyof SimModbusPort['requests']);
    if (values.length < 1 || values.length > 1968) throw this.exception(3, unitId, fc);
    values.forEach((_, i) => {
      if (!u.mapped.coil.has(address + i)) throw this.exception(2, unitId, fc);
    });
    values.forEach((v, i) => (u.coil[address + i] = v ? 1 : 0));
    this.afterWrite(unitId, 'coil', address, values.length);
  }

  async writeRegisters(unitId: number, address: number, values: readonly number[]): Promise<void> {
    const fc = values.length === 1 ? 6 : 16;
    const u = await this.request(unitId, `fc${fc}` as keyof SimModbusPort['requests']);
    if (values.length < 1 || values.length > 123) throw this.exception(3, unitId, fc);
    values.forEach((_, i) => {
      if (!u.mapped.holding.has(address + i)) throw this.exception(2, unitId, fc);
    });
    values.forEach((v, i) => (u.holding[address + i] = v & 0xffff));
    this.afterWrite(unitId, 'holding', address, values.length);
  }

  private unit(unitId: number, create: boolean): UnitTables | undefined {
    let u = this.units.get(unitId);
    if (!u && create) {
      u = new UnitTables();
      this.units.set(unitId, u);
    }
    return u;
  }

  private async request(unitId: number, counter: keyof SimModbusPort['requests']): Promise<UnitTables> {
    if (!this.open) throw new OutpostError('OUTPOST_E_MODBUS_NOT_CONNECTED', 'modbus port is not open', { details: { unitId } });
    this.requests[counter]++;
    this.beforeRequest();
    const u = this.units.get(unitId);
    if (!u || this.offline) {
      await this.clock.sleep(this.timeoutMs);
      throw new OutpostError('OUTPOST_E_MODBUS_TIMEOUT', 'modbus request timed out', { details: { unitId, timeoutMs: this.timeoutMs } });
    }
    if (this.latencyMs > 0) await this.clock.sleep(this.latencyMs);
    return u;
  }

  private exception(code: number, unitId: number, fc: number): OutpostError {
    return new OutpostError('OUTPOST_E_MODBUS_EXCEPTION', 'modbus device answered with an exception', {
      details: { exception: code, unitId, functionCode: fc },
    });
  }
}
