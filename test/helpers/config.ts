import type { GpioDeviceConfig } from '../../hal/gpio/schema.js';
import type { ModbusDeviceConfig } from '../../hal/modbus/schema.js';
import type { OpcuaDeviceConfig } from '../../hal/opcua/schema.js';
import type { SerialDeviceConfig } from '../../hal/serial/schema.js';
import { ConfigValidator } from '../../src/config/load.js';

/** Device configs exactly as the loader produces them: validated, defaults applied, frozen. */
function build<T>(raw: unknown): T {
  return new ConfigValidator().validate({ devices: [raw] }, ['test'], '/tmp').devices[0] as T;
}

export const modbusDevice = (raw: unknown): ModbusDeviceConfig => build(raw);
export const opcuaDevice = (raw: unknown): OpcuaDeviceConfig => build(raw);
export const serialDevice = (raw: unknown): SerialDeviceConfig => build(raw);
export const gpioDevice = (raw: unknown): GpioDeviceConfig => build(raw);
