/** Error codes of the real device transports (issue 3): Modbus, OPC UA, serial and GPIO, and the `outpost opcua` CLI. */
export const DRIVER_CODES = {
  OUTPOST_E_MODBUS_FRAME: {
    area: 'modbus',
    summary: 'A Modbus answer was malformed (CRC error, wrong length, unit or function code); counted as a frame error, the line stays open.',
    input: false,
  },
  OUTPOST_E_MODBUS_CONNECT: { area: 'modbus', summary: 'The Modbus TCP connection or RTU serial line could not be opened; the driver retries with backoff.', input: false },
  OUTPOST_E_OPCUA_CONNECT: { area: 'opcua', summary: 'No OPC UA session could be opened (server unreachable, endpoint or security settings refused).', input: false },
  OUTPOST_E_OPCUA_UNTRUSTED: {
    area: 'opcua',
    summary: 'The OPC UA server certificate is not trusted: it was put in the rejected folder; trust it with `outpost opcua certs trust <id>`.',
    input: false,
  },
  OUTPOST_E_OPCUA_CERT_UNKNOWN: { area: 'opcua', summary: '`outpost opcua certs trust|reject` named a certificate that is in neither the trusted nor the rejected folder.', input: true },
  OUTPOST_E_OPCUA_BROWSE: { area: 'opcua', summary: '`outpost opcua browse` could not browse the server (bad start node, connection lost).', input: false },
  OUTPOST_E_SERIAL_OPEN: { area: 'serial', summary: 'A serial port could not be opened (missing device, permission, busy); the driver retries with backoff.', input: false },
  OUTPOST_E_SERIAL_WRITE: { area: 'serial', summary: 'Bytes could not be written to a serial port (port closed or unplugged).', input: false },
  OUTPOST_E_GPIO_CHIP: { area: 'gpio', summary: 'No gpiochip with the configured label was found under the sysfs root, or the pin is beyond the chip.', input: true },
  OUTPOST_E_GPIO_IO: { area: 'gpio', summary: 'Reading, writing or exporting a GPIO line through sysfs failed.', input: false },
} as const;
