import path from 'node:path';
import type { Logger } from 'pino';
import type { Clock } from '../hal/clock.js';
import type { DeviceDriver } from '../hal/types.js';
import type { DeviceConfig } from '../src/config/schema.js';
import { OutpostError } from '../src/errors/outpost-error.js';
import type { DriverFactory } from '../src/runtime/runtime.js';

type Deps = { clock: Clock; logger: Logger; dataDir?: string };

/** Where the OPC UA client keeps its PKI store (own certificate, trusted and rejected servers) under the data partition. */
export function opcuaPkiDir(dataDir: string): string {
  return path.join(dataDir, 'opcua', 'pki');
}

/**
 * Wires each configured device to its driver and transport: the simulator for `connection.type: sim`,
 * the real transport otherwise. Modules are imported only for the kinds a configuration uses, so a
 * gateway without OPC UA never loads node-opcua.
 */
export class DriverRegistry implements DriverFactory {
  async create(device: DeviceConfig, deps: Deps): Promise<DeviceDriver> {
    switch (device.kind) {
      case 'modbus': {
        const { ModbusDriver } = await import('../hal/modbus/driver.js');
        if (device.connection.type !== 'sim') {
          const { ModbusSerialPort, modbusSerialFactory } = await import('../hal/modbus/modbus-serial-port.js');
          return new ModbusDriver(device, new ModbusSerialPort(device.connection, await modbusSerialFactory()), deps);
        }
        const { createSimulatedModbus } = await import('../hal/modbus/simulator.js');
        return new ModbusDriver(device, createSimulatedModbus(device, deps.clock), deps);
      }
      case 'opcua': {
        const { OpcuaDriver } = await import('../hal/opcua/driver.js');
        if (device.connection.type !== 'sim') {
          if (deps.dataDir === undefined) {
            throw new OutpostError('OUTPOST_E_RUNTIME_START', `device ${device.id}: the OPC UA client needs a data directory for its certificates`, {
              details: { device: device.id },
            });
          }
          const { NodeOpcuaPort, loadNodeOpcua } = await import('../hal/opcua/node-opcua-port.js');
          const port = new NodeOpcuaPort(
            device.connection,
            { pkiDir: opcuaPkiDir(deps.dataDir), logger: deps.logger, maxItemsPerCall: device.maxMonitoredItemsPerCall },
            await loadNodeOpcua(deps.logger),
          );
          return new OpcuaDriver(device, port, deps);
        }
        const { createSimulatedOpcua } = await import('../hal/opcua/simulator.js');
        return new OpcuaDriver(device, createSimulatedOpcua(device, deps.clock), deps);
      }
      case 'serial': {
        const { SerialDriver } = await import('../hal/serial/driver.js');
        if (device.connection.type !== 'sim') {
          const { SerialportLink, serialportFactory } = await import('../hal/serial/serialport-link.js');
          return new SerialDriver(device, new SerialportLink(device.connection, await serialportFactory()), deps);
        }
        const { SimGpsLink } = await import('../hal/serial/sim-link.js');
        return new SerialDriver(device, new SimGpsLink(deps.clock, device.connection), deps);
      }
      case 'gpio': {
        const { GpioDriver } = await import('../hal/gpio/driver.js');
        if (device.connection.type !== 'sim') {
          const { OnoffGpioPort, onoffGpio } = await import('../hal/gpio/onoff-port.js');
          return new GpioDriver(device, new OnoffGpioPort(device.connection, { Gpio: await onoffGpio(), clock: deps.clock, logger: deps.logger }), deps);
        }
        const { createSimulatedGpio } = await import('../hal/gpio/simulator.js');
        return new GpioDriver(device, createSimulatedGpio(device, deps.clock), deps);
      }
    }
  }
}
