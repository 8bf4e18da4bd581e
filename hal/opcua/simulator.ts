import type { Clock } from '../clock.js';
import { SimSignal, seededRandom } from '../sim-signal.js';
import { SimOpcuaPort } from './sim-port.js';
import type { OpcuaDeviceConfig } from './schema.js';

/**
 * Builds a simulated OPC UA server for a configured device: one variable per distinct node id,
 * driven by the point's `sim` model (a drifting Double by default), writable when the point is.
 */
export function createSimulatedOpcua(config: OpcuaDeviceConfig, clock: Clock): SimOpcuaPort {
  const seed = config.connection.type === 'sim' ? config.connection.seed : 1;
  const random = seededRandom(seed);
  const port = new SimOpcuaPort(clock);
  const start = clock.now();
  for (const p of config.points) {
    if (port.has(p.nodeId)) continue; // several points may read one variable: the first declares it
    const signal = new SimSignal(p.sim ?? { model: 'drift', start: 50, step: 0.5, min: 0, max: 100 }, random, start, 250);
    port.addVariable(p.nodeId, signal.valueAt(start), p.writable && !p.sim ? null : signal, p.writable);
  }
  return port;
}
