import { commandTargets } from './commands.js';
import { configTargets } from './config.js';
import { modbusRtuTargets } from './modbus-rtu.js';
import { modbusTargets } from './modbus.js';
import { otaTargets } from './ota.js';
import { routeTargets } from './routes.js';
import { serialTargets } from './serial.js';
import type { FuzzTarget } from './target.js';

export type { FuzzTarget } from './target.js';

/** Every fuzz target, in the order `npm run bench:fuzz` runs them. */
export function allTargets(): FuzzTarget[] {
  return [...configTargets(), ...routeTargets(), ...commandTargets(), ...modbusTargets(), ...modbusRtuTargets(), ...serialTargets(), ...otaTargets()];
}
