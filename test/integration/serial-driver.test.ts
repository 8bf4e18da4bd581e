import { describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { SerialDriver } from '../../hal/serial/driver.js';
import type { SerialDeviceConfig } from '../../hal/serial/schema.js';
import { SerialportLink, serialportFactory } from '../../hal/serial/serialport-link.js';
import { serialDevice } from '../helpers/config.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';
import { peerStats, startPtyPair, startRelay, tempDir } from '../helpers/peers.js';
import { startLinePeer } from '../helpers/serial-peer.js';
import { CollectingSink } from '../helpers/sink.js';

async function driverFor(config: SerialDeviceConfig): Promise<SerialDriver> {
  if (config.connection.type !== 'serial') throw new Error('real connection expected');
  return new SerialDriver(config, new SerialportLink(config.connection, await serialportFactory()), { clock: systemClock, logger: silentLogger() });
}

const transactionsConfig = (path: string) =>
  serialDevice({
    id: 'meter',
    kind: 'serial',
    connection: { type: 'serial', path, baudRate: 115200 },
    framing: { type: 'delimiter', delimiter: '\r\n' },
    transactions: [
      { id: 'temp', send: 'READ?\r\n', expect: '^\\$TEMP', intervalMs: 200, timeoutMs: 500 },
      { id: 'ident', send: 'ID?\r\n', expect: '^ID,', intervalMs: 300, timeoutMs: 500 },
      { id: 'broken', send: 'NOPE?\r\n', expect: '^NOPE', intervalMs: 400, timeoutMs: 300 },
    ],
    points: [
      { id: 'temp', match: '^\\$TEMP,([-0-9.]+),', group: 1, transaction: 'temp' },
      { id: 'unit', match: '^\\$TEMP,', field: 2, type: 'string', transaction: 'temp' },
      { id: 'model', match: '^ID,', field: 1, type: 'string', transaction: 'ident' },
      { id: 'code', match: '^ID,', field: 2, type: 'integer', transaction: 'ident' },
      { id: 'never', match: '^NOPE', transaction: 'broken' },
      { id: 'sats', match: '^\\$GPGGA,', field: 7, type: 'integer' },
    ],
  });

describe('serial line device on a socat pty (pyserial peer)', () => {
  it('runs request/response transactions with timeouts next to an unsolicited stream', async () => {
    const pair = await startPtyPair(tempDir('serial-tx'), 'tty');
    const peer = await startLinePeer(pair.a, ['--stream', '150', '--silent-on', 'NOPE']);
    const cfg = { ...transactionsConfig(pair.b), checksum: 'none' as const };
    const driver = await driverFor(cfg);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('temp', (s) => s.value === 21.5);
      // No checksum checking on this device: the field keeps the `*hh` suffix.
      await sink.waitLatest('unit', (s) => /^C\*[0-9A-F]{2}$/.test(String(s.value)));
      await sink.waitLatest('model', (s) => s.value === 'OUTPOST-PEER');
      await sink.waitLatest('code', (s) => s.value === 42);
      await sink.waitLatest('never', (s) => s.quality.status === 'bad' && (s.quality as { reason: string }).reason === 'timeout');
      await sink.waitLatest('sats', (s) => typeof s.value === 'number' && s.value >= 8 && s.value <= 10);
      const c = driver.counters();
      expect(c['timeouts_total']).toBeGreaterThan(0);
      expect(c['requests_total']).toBeGreaterThanOrEqual(3);
      const rx = peer.output().split('\n').filter((l) => l.startsWith('rx '));
      expect(rx.length).toBeGreaterThanOrEqual(3);
    } finally {
      await driver.stop();
      await peer.stop();
      await pair.stop();
    }
  });

  it('reports bad(not connected) when the port disappears and recovers when it is back (unplug/replug)', async () => {
    const dir = tempDir('serial-unplug');
    let pair = await startPtyPair(dir, 'tty');
    let peer = await startLinePeer(pair.a);
    const driver = await driverFor(transactionsConfig(pair.b));
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('temp', (s) => s.value === 21.5);
      await pair.stop();
      await peer.stop();
      await sink.waitLatest('temp', (s) => s.quality.status === 'bad' && (s.quality as { reason: string }).reason === 'not connected');
      expect(driver.connected()).toBe(false);
      pair = await startPtyPair(dir, 'tty');
      peer = await startLinePeer(pair.a);
      await sink.waitLatest('temp', (s) => s.quality.status === 'good' && s.value === 21.5, 40_000);
      expect(driver.counters()['reopens_total']).toBeGreaterThanOrEqual(1);
    } finally {
      await driver.stop();
      await peer.stop();
      await pair.stop();
    }
  });

  it('counts corrupted and garbage frames from a fault relay, without a crash or a wrong value', async () => {
    const dir = tempDir('serial-relay');
    const devicePair = await startPtyPair(dir, 'dev');
    const clientPair = await startPtyPair(dir, 'cli');
    const peer = await startLinePeer(devicePair.a, ['--stream', '20']);
    const relay = await startRelay(devicePair.b, clientPair.a, ['--corrupt-every', '3', '--garbage-every', '4']);
    const driver = await driverFor(
      serialDevice({
        id: 'gps',
        kind: 'serial',
        connection: { type: 'serial', path: clientPair.b, baudRate: 115200 },
        checksum: 'nmea',
        points: [
          { id: 'sats', match: '^\\$GPGGA,', field: 7, type: 'integer' },
          { id: 'alt', match: '^\\$GPGGA,', field: 9 },
        ],
      }),
    );
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await waitFor(() => driver.counters()['checksum_errors_total']! >= 5 && sink.of('alt').length >= 20, 30_000);
      const stats = await peerStats<{ corrupted: number; garbage: number }>(relay, '');
      expect(stats.corrupted).toBeGreaterThan(0);
      expect(stats.garbage).toBeGreaterThan(0);
      for (const s of sink.of('alt')) expect(s).toMatchObject({ value: 545.4, quality: { status: 'good' } });
      for (const s of sink.of('sats')) expect([8, 9, 10]).toContain(s.value);
      expect(driver.connected()).toBe(true);
    } finally {
      await driver.stop();
      await relay.stop();
      await peer.stop();
      await clientPair.stop();
      await devicePair.stop();
    }
  });
});
