import { systemClock } from '../../hal/clock.js';
import { SimGpsLink } from '../../hal/serial/sim-link.js';
import { SerialportLink, serialportFactory } from '../../hal/serial/serialport-link.js';
import { describeSerialLinkContract } from '../contract/serial-link-contract.js';
import { startLinePeer } from '../helpers/serial-peer.js';
import { startPtyPair, tempDir } from '../helpers/peers.js';

describeSerialLinkContract('simulated GPS', async () => {
  const link = new SimGpsLink(systemClock, { intervalMs: 50, seed: 1, corruptEvery: 0 });
  return {
    link,
    poke: async () => undefined,
    received: () => Buffer.concat(link.received).toString('latin1'),
    unplug: async () => link.unplug(),
    replug: async () => undefined,
    teardown: async () => undefined,
  };
});

describeSerialLinkContract('serialport on a socat pty with a pyserial line peer', async () => {
  const dir = tempDir('serial-contract');
  let pair = await startPtyPair(dir, 'tty');
  let peer = await startLinePeer(pair.a);
  let before = '';
  const link = new SerialportLink({ type: 'serial', path: pair.b, baudRate: 115200, parity: 'none', dataBits: 8, stopBits: 1 }, await serialportFactory());
  return {
    link,
    poke: () => link.write(Buffer.from('READ?\r\n', 'latin1')),
    received: () => before + peer.output(),
    unplug: async () => {
      before += peer.output();
      await pair.stop();
      await peer.stop();
    },
    replug: async () => {
      pair = await startPtyPair(dir, 'tty');
      peer = await startLinePeer(pair.a);
    },
    teardown: async () => {
      await peer.stop();
      await pair.stop();
    },
  };
});
