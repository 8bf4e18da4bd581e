import { describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { ModbusDriver } from '../../hal/modbus/driver.js';
import type { ModbusPort } from '../../hal/modbus/port.js';
import { SimModbusPort } from '../../hal/modbus/sim-port.js';
import { modbusDevice } from '../helpers/config.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';
import { CollectingSink } from '../helpers/sink.js';

/** Wraps a port and records the order in which requests reach it. */
function recording(inner: ModbusPort, log: string[]): ModbusPort {
  return {
    connect: () => inner.connect(),
    close: () => inner.close(),
    isOpen: () => inner.isOpen(),
    read: (u, t, a, c) => {
      log.push(`r${a}`);
      return inner.read(u, t, a, c);
    },
    writeCoils: (u, a, v) => {
      log.push(`w${a}`);
      return inner.writeCoils(u, a, v);
    },
    writeRegisters: (u, a, v) => {
      log.push(`w${a}`);
      return inner.writeRegisters(u, a, v);
    },
  };
}

describe('ModbusDriver scheduling', () => {
  it('puts a write ahead of queued polls on the same line (one request at a time)', async () => {
    const config = modbusDevice({
      id: 'd',
      kind: 'modbus',
      connection: { type: 'sim', latencyMs: 30 },
      pollIntervalMs: 60_000,
      maxGap: 0,
      points: Array.from({ length: 6 }, (_, i) => ({ id: `p${i}`, table: 'holding', address: i * 10, writable: true })),
    });
    const sim = new SimModbusPort(systemClock, { latencyMs: 30 });
    for (let i = 0; i < 6; i++) sim.map(1, 'holding', i * 10, 1);
    const log: string[] = [];
    const driver = new ModbusDriver(config, recording(sim, log), { clock: systemClock, logger: silentLogger() });
    const sink = new CollectingSink();
    await driver.start(sink);
    await waitFor(() => log.length >= 1);
    await driver.write('p5', 99);
    await waitFor(() => sink.samples.length >= 6);
    await driver.stop();
    // The first poll was already on the wire; the write went next, before the five queued polls.
    expect(log).toEqual(['r0', 'w50', 'r10', 'r20', 'r30', 'r40', 'r50']);
    expect(sink.latest('p5')?.value).toBe(99);
  });

  it('reports the last good value as uncertain(stale) when cycles overrun', async () => {
    const config = modbusDevice({
      id: 'd2',
      kind: 'modbus',
      connection: { type: 'sim' },
      pollIntervalMs: 40,
      points: [{ id: 'slow', table: 'holding', address: 0 }],
    });
    const sim = new SimModbusPort(systemClock, { latencyMs: 0 });
    sim.map(1, 'holding', 0, 1);
    sim.poke(1, 'holding', 0, [42]);
    let slow = false;
    const port: ModbusPort = { ...recording(sim, []), read: async (u, t, a, c) => {
      if (slow) await new Promise((r) => setTimeout(r, 400));
      return sim.read(u, t, a, c);
    } };
    const driver = new ModbusDriver(config, port, { clock: systemClock, logger: silentLogger() });
    const sink = new CollectingSink();
    await driver.start(sink);
    await sink.waitLatest('slow', (s) => s.value === 42 && s.quality.status === 'good');
    slow = true;
    const stale = await sink.waitNext('slow', (s) => s.quality.status === 'uncertain');
    await driver.stop();
    expect(stale).toMatchObject({ value: 42, quality: { status: 'uncertain', reason: 'stale' } });
    expect(driver.counters()['cycle_overruns_total']).toBeGreaterThan(0);
  });
});
