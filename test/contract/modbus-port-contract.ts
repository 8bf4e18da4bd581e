import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import type { ModbusPort } from '../../hal/modbus/port.js';
import { SimModbusPort } from '../../hal/modbus/sim-port.js';
import { isOutpostError } from '../../src/errors/outpost-error.js';

/**
 * The ModbusPort contract, written against the register map of test/peers/modbus_peer.py (units 1
 * and 2). Every implementation (the simulator, modbus-serial over TCP, over RTU) must pass it.
 */
export interface ModbusPortUnderTest {
  readonly port: ModbusPort;
  /** A unit id nobody answers for. */
  readonly silentUnit: number;
  teardown(): Promise<void>;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; exception?: unknown }> {
  try {
    await p;
  } catch (e) {
    if (isOutpostError(e)) return { code: e.code, exception: e.details['exception'] };
    throw e;
  }
  throw new Error('expected the request to fail');
}

export function describeModbusPortContract(name: string, setup: () => Promise<ModbusPortUnderTest>): void {
  describe(`ModbusPort contract: ${name}`, () => {
    let t: ModbusPortUnderTest;
    beforeAll(async () => {
      t = await setup();
      await t.port.connect();
    });
    afterAll(async () => {
      await t?.port.close();
      await t?.teardown();
    });

    it('reads the four tables of two units (FC1-FC4)', async () => {
      expect(t.port.isOpen()).toBe(true);
      expect(await t.port.read(1, 'holding', 0, 5)).toEqual([0, 10, 20, 30, 40]);
      expect(await t.port.read(2, 'holding', 0, 2)).toEqual([2000, 2010]);
      expect(await t.port.read(1, 'input', 0, 3)).toEqual([1000, 1001, 1002]);
      expect(await t.port.read(1, 'coil', 0, 4)).toEqual([0, 1, 0, 1]);
      expect(await t.port.read(1, 'discrete', 0, 4)).toEqual([1, 0, 1, 0]);
      expect(await t.port.read(1, 'holding', 200, 2)).toEqual([0x4148, 0x0000]);
    });

    it('answers exception 2 for a read over unmapped addresses and exception 3 for more than 125 registers', async () => {
      expect(await codeOf(t.port.read(1, 'holding', 305, 10))).toEqual({ code: 'OUTPOST_E_MODBUS_EXCEPTION', exception: 2 });
      expect(await codeOf(t.port.read(1, 'holding', 0, 126))).toEqual({ code: 'OUTPOST_E_MODBUS_EXCEPTION', exception: 3 });
      expect(await t.port.read(1, 'holding', 320, 3)).toEqual([3320, 3321, 3322]);
    });

    it('times out for a unit that does not answer', async () => {
      expect((await codeOf(t.port.read(t.silentUnit, 'holding', 0, 1))).code).toBe('OUTPOST_E_MODBUS_TIMEOUT');
      expect(await t.port.read(1, 'holding', 1, 1)).toEqual([10]);
    });

    it('writes registers (FC6, FC16) and coils (FC5, FC15) that read back', async () => {
      await t.port.writeRegisters(1, 50, [0xbeef]);
      await t.port.writeRegisters(2, 51, [1, 2, 3]);
      await t.port.writeCoils(1, 10, [true]);
      await t.port.writeCoils(1, 20, [true, true, false, true]);
      expect(await t.port.read(1, 'holding', 50, 1)).toEqual([0xbeef]);
      expect(await t.port.read(2, 'holding', 51, 3)).toEqual([1, 2, 3]);
      expect(await t.port.read(1, 'coil', 10, 1)).toEqual([1]);
      expect(await t.port.read(1, 'coil', 20, 4)).toEqual([1, 1, 0, 1]);
      expect(await codeOf(t.port.writeRegisters(1, 310, [1]))).toEqual({ code: 'OUTPOST_E_MODBUS_EXCEPTION', exception: 2 });
    });

    it('fails with not-connected after close, and works again after connect', async () => {
      await t.port.close();
      expect(t.port.isOpen()).toBe(false);
      expect((await codeOf(t.port.read(1, 'holding', 0, 1))).code).toBe('OUTPOST_E_MODBUS_NOT_CONNECTED');
      await t.port.connect();
      expect(t.port.isOpen()).toBe(true);
      expect(await t.port.read(1, 'holding', 2, 1)).toEqual([20]);
    });
  });
}

/** The simulator loaded with the same map as test/peers/modbus_peer.py. */
export function simulatorLikePeer(): SimModbusPort {
  const port = new SimModbusPort(systemClock, { timeoutMs: 200 });
  for (const unit of [1, 2]) {
    const hr = Array.from({ length: 200 }, (_, i) => (i * 10 + (unit === 2 ? 2000 : 0)) & 0xffff);
    port.map(unit, 'holding', 0, 202);
    port.poke(unit, 'holding', 0, [...hr, 0x4148, 0]);
    for (const start of [300, 320]) {
      port.map(unit, 'holding', start, 10);
      port.poke(unit, 'holding', start, Array.from({ length: 10 }, (_, i) => 3000 + start + i));
    }
    port.map(unit, 'input', 0, 100);
    port.poke(unit, 'input', 0, Array.from({ length: 100 }, (_, i) => 1000 + i));
    port.map(unit, 'coil', 0, 100);
    port.poke(unit, 'coil', 0, Array.from({ length: 100 }, (_, i) => i % 2));
    port.map(unit, 'discrete', 0, 100);
    port.poke(unit, 'discrete', 0, Array.from({ length: 100 }, (_, i) => (i + 1) % 2));
  }
  return port;
}
