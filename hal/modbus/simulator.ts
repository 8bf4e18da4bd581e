import type { Clock } from '../clock.js';
import type { SimModelConfig } from '../sim-model.js';
import { SimSignal, seededRandom } from '../sim-signal.js';
import { encode, isBitTable, registerCount } from './codec.js';
import { SimModbusPort } from './sim-port.js';
import type { ModbusDeviceConfig, ModbusPointConfig } from './schema.js';

function defaultModel(p: ModbusPointConfig): SimModelConfig {
  if (p.type === 'bool' || p.type === 'bit') return { model: 'toggle', periodMs: 5000 };
  if (p.type === 'string') return { model: 'constant', value: 'OUTPOST-SIM' };
  if (p.type.startsWith('float')) return { model: 'drift', start: 20, step: 0.2, min: 0, max: 40 };
  return { model: 'counter', start: 0, step: 1, wrap: p.type === 'int16' ? 32767 : 65535 };
}

/**
 * Builds a simulated Modbus device for a configured device: every point's registers are mapped on
 * its unit, and each request first advances every point's simulation model and encodes the value
 * with the point's own type and byte order, so decoding is exercised exactly as with a real device.
 * Points that were written keep the written value (a setpoint or an output stays where it was set).
 */
export function createSimulatedModbus(config: ModbusDeviceConfig, clock: Clock): SimModbusPort {
  const conn = config.connection.type === 'sim' ? config.connection : { seed: 1, latencyMs: 0 };
  const random = seededRandom(conn.seed);
  const start = clock.now();
  const signals = config.points.map((p) => ({ p, signal: new SimSignal(p.sim ?? defaultModel(p), random, start), written: false }));
  const refresh = () => {
    const now = clock.now();
    for (const s of signals) {
      if (s.written) continue;
      const { p } = s;
      const current = port.peek(p.unitId, p.table, p.address, registerCount(p.type, p.length));
      const raw = s.signal.valueAt(now);
      const value = typeof raw === 'number' && /int/.test(p.type) ? Math.round(raw) : raw;
      const words = isBitTable(p.table)
        ? [value === true || (typeof value === 'number' && value !== 0) ? 1 : 0]
        : encode(p, p.type === 'bit' ? Boolean(value) : value, current[0] ?? 0);
      port.poke(p.unitId, p.table, p.address, words);
    }
  };
  // A client write freezes the written writable points (a setpoint or an output stays where it was set).
  const afterWrite = (unitId: number, table: string, address: number, count: number) => {
    for (const s of signals) {
      const { p } = s;
      if (!p.writable || p.unitId !== unitId || p.table !== table) continue;
      const end = p.address + registerCount(p.type, p.length);
      if (p.address < address + count && address < end) s.written = true;
    }
  };
  const port = new SimModbusPort(clock, { latencyMs: conn.latencyMs, beforeRequest: refresh, afterWrite });
  for (const p of config.points) port.map(p.unitId, p.table, p.address, registerCount(p.type, p.length));
  return port;
}
