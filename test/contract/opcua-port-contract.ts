import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import type { OpcuaDataValue, OpcuaPort } from '../../hal/opcua/port.js';
import { SimOpcuaPort } from '../../hal/opcua/sim-port.js';
import { SimSignal, seededRandom } from '../../hal/sim-model.js';
import { waitFor } from '../helpers/net.js';

/**
 * The OpcuaPort contract, written against the address space of test/peers/opcua_server.mjs
 * (ns=1: T0..T11 changing Doubles, Setpoint writable Double, Count writable Int32, Name String,
 * ReadOnly Double). The simulator and node-opcua against that server must both pass it.
 */
export interface OpcuaPortUnderTest {
  readonly port: OpcuaPort;
  /** The server goes away (process killed), then comes back. */
  dropServer(): Promise<void>;
  restoreServer(): Promise<void>;
  teardown(): Promise<void>;
}

export function describeOpcuaPortContract(name: string, setup: () => Promise<OpcuaPortUnderTest>): void {
  describe(`OpcuaPort contract: ${name}`, () => {
    let t: OpcuaPortUnderTest;
    let disconnects = 0;
    beforeAll(async () => {
      t = await setup();
      t.port.onDisconnect(() => disconnects++);
      await t.port.connect();
    });
    afterAll(async () => {
      await t?.port.close();
      await t?.teardown();
    });

    it('reads values with status codes, BadNodeIdUnknown for an unknown node', async () => {
      expect(t.port.isOpen()).toBe(true);
      const [name, t3, nope] = await t.port.read(['ns=1;s=Name', 'ns=1;s=T3', 'ns=1;s=Nope']);
      expect(name).toMatchObject({ value: 'Boiler 1', status: 'Good' });
      expect(t3?.status).toBe('Good');
      expect(typeof t3?.value).toBe('number');
      expect(nope).toMatchObject({ value: null, status: 'BadNodeIdUnknown' });
    });

    it('writes writable variables and refuses read-only and unknown ones with the status code', async () => {
      await t.port.write('ns=1;s=Setpoint', 21.5);
      await t.port.write('ns=1;s=Count', 9);
      const [sp, count] = await t.port.read(['ns=1;s=Setpoint', 'ns=1;s=Count']);
      expect(sp?.value).toBe(21.5);
      expect(count?.value).toBe(9);
      await expect(t.port.write('ns=1;s=ReadOnly', 2)).rejects.toMatchObject({ code: 'OUTPOST_E_OPCUA_STATUS', details: { status: 'BadNotWritable' } });
      await expect(t.port.write('ns=1;s=Nope', 2)).rejects.toMatchObject({ code: 'OUTPOST_E_OPCUA_STATUS', details: { status: 'BadNodeIdUnknown' } });
    });

    it('notifies monitored items, initial values and changes', async () => {
      const seen: Array<[string, OpcuaDataValue]> = [];
      const sub = await t.port.subscribe(100, ['ns=1;s=T1', 'ns=1;s=Setpoint'].map((nodeId) => ({ nodeId, samplingIntervalMs: 100, queueSize: 1 })), (n, v) => seen.push([n, v]));
      await waitFor(() => seen.filter(([n]) => n === 'ns=1;s=T1').length >= 2, 10_000);
      await waitFor(() => seen.some(([n, v]) => n === 'ns=1;s=Setpoint' && v.value === 21.5), 10_000);
      await t.port.write('ns=1;s=Setpoint', 30);
      await waitFor(() => seen.some(([n, v]) => n === 'ns=1;s=Setpoint' && v.value === 30), 10_000);
      await sub.close();
    });

    it('tells its listeners when the server goes away, refuses calls until reconnected', async () => {
      await t.dropServer();
      await waitFor(() => disconnects === 1, 20_000);
      expect(t.port.isOpen()).toBe(false);
      await expect(t.port.read(['ns=1;s=Name'])).rejects.toMatchObject({ code: 'OUTPOST_E_HAL_NOT_CONNECTED' });
      await t.restoreServer();
      await waitFor(async () => {
        try {
          await t.port.connect();
          return true;
        } catch {
          return false;
        }
      }, 30_000, 500);
      expect((await t.port.read(['ns=1;s=Name']))[0]?.value).toBe('Boiler 1');
    });
  });
}

/** The simulator with the address space of test/peers/opcua_server.mjs. */
export function simulatorLikeServer(): SimOpcuaPort {
  const port = new SimOpcuaPort(systemClock);
  const r = seededRandom(1);
  for (let i = 0; i < 12; i++) port.addVariable(`ns=1;s=T${i}`, i, new SimSignal({ model: 'sine', min: i - 0.5, max: i + 0.5, periodMs: 2000 }, r, Date.now(), 50), false);
  port.addVariable('ns=1;s=Setpoint', 20, null, true);
  port.addVariable('ns=1;s=Count', 7, null, true);
  port.addVariable('ns=1;s=Name', 'Boiler 1', null, false);
  port.addVariable('ns=1;s=ReadOnly', 1.5, null, false);
  return port;
}
