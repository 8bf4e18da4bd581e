/** Error codes of the hardware abstraction layer (hal/): drivers, transports and simulators. */
export const HAL_CODES = {
  OUTPOST_E_HAL_UNKNOWN_POINT: { area: 'hal', summary: 'A write named a point that the device does not have.', input: true },
  OUTPOST_E_HAL_READ_ONLY: { area: 'hal', summary: 'A write targeted a point that is not writable (an input, or `writable: false`).', input: true },
  OUTPOST_E_HAL_VALUE: { area: 'hal', summary: 'A value does not fit the point type (range, integer, boolean level, string length).', input: true },
  OUTPOST_E_HAL_NOT_CONNECTED: { area: 'hal', summary: 'The device transport is not connected; the driver is reconnecting.', input: false },
  OUTPOST_E_MODBUS_TIMEOUT: { area: 'modbus', summary: 'A Modbus request got no answer within the timeout (after retries).', input: false },
  OUTPOST_E_MODBUS_EXCEPTION: {
    area: 'modbus',
    summary: 'The Modbus device answered with an exception (`details.exception`: 1 illegal function, 2 illegal address, 3 illegal value, 4 device failure…).',
    input: false,
  },
  OUTPOST_E_MODBUS_NOT_CONNECTED: { area: 'modbus', summary: 'The Modbus TCP connection or RTU line is not open.', input: false },
  OUTPOST_E_OPCUA_STATUS: { area: 'opcua', summary: 'The OPC UA server answered with a bad status code (`details.status`).', input: false },
  OUTPOST_E_SERIAL_TIMEOUT: { area: 'serial', summary: 'A serial request got no response frame within its timeout.', input: false },
  OUTPOST_E_GPIO_BUSY: { area: 'gpio', summary: 'A GPIO line is already requested by another point or process.', input: true },
} as const;
