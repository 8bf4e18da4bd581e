import { ModbusSerialPort, modbusSerialFactory } from '../../hal/modbus/modbus-serial-port.js';
import { describeModbusPortContract, simulatorLikePeer } from '../contract/modbus-port-contract.js';
import { startModbusRtuPeer, startModbusTcpPeer, startPtyPair, tempDir } from '../helpers/peers.js';

describeModbusPortContract('simulator', async () => ({ port: simulatorLikePeer(), silentUnit: 9, teardown: async () => undefined }));

describeModbusPortContract('modbus-serial TCP against pymodbus', async () => {
  const peer = await startModbusTcpPeer();
  const port = new ModbusSerialPort({ type: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 500, retries: 0, inFlight: 1 }, await modbusSerialFactory());
  return { port, silentUnit: 9, teardown: async () => void (await peer.process.stop()) };
});

describeModbusPortContract('modbus-serial RTU against pymodbus on a socat pty pair', async () => {
  const pair = await startPtyPair(tempDir('rtu'), 'line');
  const peer = await startModbusRtuPeer(pair.a);
  const port = new ModbusSerialPort(
    { type: 'rtu', port: pair.b, baudRate: 19200, parity: 'none', dataBits: 8, stopBits: 1, timeoutMs: 500, retries: 0 },
    await modbusSerialFactory(),
  );
  return {
    port,
    silentUnit: 7,
    teardown: async () => {
      await peer.stop();
      await pair.stop();
    },
  };
});
