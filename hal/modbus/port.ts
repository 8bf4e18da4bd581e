import type { ModbusTable } from './schema.js';

/**
 * The Modbus transport as the driver sees it: one client for one TCP connection or one RTU line.
 * Real implementations wrap modbus-serial; the simulator serves a register bank in memory.
 *
 * Errors are OutpostError with codes OUTPOST_E_MODBUS_TIMEOUT, OUTPOST_E_MODBUS_EXCEPTION
 * (`details.exception` = the Modbus exception code) and OUTPOST_E_MODBUS_NOT_CONNECTED.
 */
export interface ModbusPort {
  connect(): Promise<void>;
  close(): Promise<void>;
  isOpen(): boolean;
  /** Reads `count` registers (as uint16) or bits (as 0/1) from a table: FC1, FC2, FC3 or FC4. */
  read(unitId: number, table: ModbusTable, address: number, count: number): Promise<number[]>;
  /** Writes coils: FC5 for one value, FC15 for several. */
  writeCoils(unitId: number, address: number, values: readonly boolean[]): Promise<void>;
  /** Writes holding registers: FC6 for one value, FC16 for several. */
  writeRegisters(unitId: number, address: number, values: readonly number[]): Promise<void>;
}

/** Modbus exception codes (Modbus Application Protocol V1.1b3, §7). */
export const MODBUS_EXCEPTIONS: Readonly<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};
