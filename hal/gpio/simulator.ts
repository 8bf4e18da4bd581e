import type { Clock } from '../clock.js';
import { SimSignal, seededRandom } from '../sim-signal.js';
import { SimGpioPort } from './sim-port.js';
import type { GpioDeviceConfig } from './schema.js';

/** Builds simulated GPIO for a configured device: inputs follow their `sim` model (toggling every 5 s by default). */
export function createSimulatedGpio(config: GpioDeviceConfig, clock: Clock): SimGpioPort {
  const seed = config.connection.type === 'sim' ? config.connection.seed : 1;
  const random = seededRandom(seed);
  const start = clock.now();
  const models = new Map<number, SimSignal>();
  for (const p of config.points) {
    if (p.direction === 'in') models.set(p.pin, new SimSignal(p.sim ?? { model: 'toggle', periodMs: 5000 }, random, start));
  }
  return new SimGpioPort(clock, models);
}
