import type { GpioDeviceConfig } from '../../hal/gpio/schema.js';
import type { ModbusDeviceConfig } from '../../hal/modbus/schema.js';
import type { OpcuaDeviceConfig } from '../../hal/opcua/schema.js';
import type { SerialDeviceConfig } from '../../hal/serial/schema.js';
import path from 'node:path';
import { ConfigValidator, type ConfigFiles } from '../../src/config/load.js';

/** Device configs exactly as the loader produces them: validated, defaults applied, frozen. */
function build<T>(raw: unknown): T {
  return new ConfigValidator().validate({ devices: [raw] }, ['test'], '/tmp').devices[0] as T;
}

export const modbusDevice = (raw: unknown): ModbusDeviceConfig => build(raw);
export const opcuaDevice = (raw: unknown): OpcuaDeviceConfig => build(raw);
export const serialDevice = (raw: unknown): SerialDeviceConfig => build(raw);
export const gpioDevice = (raw: unknown): GpioDeviceConfig => build(raw);

/** Configuration files in memory (the loader's ConfigFiles): every directory above a file exists. */
export function memoryFiles(files: Record<string, string | Uint8Array>): ConfigFiles {
  const dirs = new Set(Object.keys(files).flatMap((f) => {
    const out: string[] = [];
    for (let d = path.dirname(f); d !== path.dirname(d); d = path.dirname(d)) out.push(d);
    return [...out, '/'];
  }));
  return {
    read: async (f, limit) => {
      const content = files[f];
      if (content === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${f}'`), { code: 'ENOENT' });
      const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
      return bytes.length > limit ? { kind: 'too-large', size: bytes.length } : { kind: 'bytes', bytes };
    },
    list: async (dir) => Object.keys(files).filter((f) => path.dirname(f) === dir).map((f) => path.basename(f)),
    kind: async (p) => (files[p] !== undefined ? 'file' : dirs.has(p) ? 'dir' : null),
  };
}
