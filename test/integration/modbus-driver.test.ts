import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { systemClock } from '../../hal/clock.js';
import { ModbusDriver } from '../../hal/modbus/driver.js';
import { ModbusSerialPort, modbusSerialFactory } from '../../hal/modbus/modbus-serial-port.js';
import type { ModbusDeviceConfig } from '../../hal/modbus/schema.js';
import { modbusDevice } from '../helpers/config.js';
import { silentLogger } from '../helpers/logger.js';
import { freePort, waitFor } from '../helpers/net.js';
import { peerStats, startModbusRtuPeer, startModbusTcpPeer, startPtyPair, startRelay, tempDir } from '../helpers/peers.js';
import { CollectingSink } from '../helpers/sink.js';

const run = promisify(execFile);

async function driverFor(config: ModbusDeviceConfig): Promise<ModbusDriver> {
  if (config.connection.type === 'sim') throw new Error('real connection expected');
  return new ModbusDriver(config, new ModbusSerialPort(config.connection, await modbusSerialFactory()), { clock: systemClock, logger: process.env['MB_TEST_LOG'] ? pino({ level: 'debug' }) : silentLogger() });
}

function sumRequests(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

describe('Modbus TCP driver against pymodbus', () => {
  let peer: Awaited<ReturnType<typeof startModbusTcpPeer>>;
  beforeAll(async () => {
    peer = await startModbusTcpPeer();
  });
  afterAll(async () => {
    await peer?.process.stop();
  });

  it('decodes every type and table, with the fewest requests (counted at the peer), and splits a block refused with exception 2 once', async () => {
    const config = modbusDevice({
      id: 'plc',
      kind: 'modbus',
      connection: { type: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 1000 },
      pollIntervalMs: 2000,
      maxGap: 20,
      points: [
        { id: 'u16', table: 'holding', address: 0, type: 'uint16' },
        { id: 'bit1', table: 'holding', address: 1, type: 'bit', bit: 1 },
        { id: 'bit0', table: 'holding', address: 1, type: 'bit', bit: 0 },
        { id: 'i32', table: 'holding', address: 2, type: 'int32' },
        { id: 'i32cdab', table: 'holding', address: 2, type: 'int32', byteOrder: 'CDAB' },
        { id: 'u64', table: 'holding', address: 4, type: 'uint64' },
        { id: 'f32', table: 'holding', address: 200, type: 'float32' },
        { id: 'coil1', table: 'coil', address: 1, type: 'bool' },
        { id: 'di1', table: 'discrete', address: 1, type: 'bool' },
        { id: 'ir5', table: 'input', address: 5 },
        { id: 'u2', unitId: 2, table: 'holding', address: 3, type: 'int16' },
        { id: 'hole-a', table: 'holding', address: 305 },
        { id: 'hole-b', table: 'holding', address: 322 },
      ],
    });
    const before = await peerStats<Record<string, number>>(peer.process, 'requests');
    const driver = await driverFor(config);
    // Holding 0..5 and 200..201 merge (gap 194 > 20? no: separate), 305..322 merges across the hole.
    const plan = driver.plan();
    expect(plan.map((b) => `${b.unitId}/${b.table}/${b.address}/${b.count}`).sort()).toEqual(
      ['1/coil/1/1', '1/discrete/1/1', '1/holding/0/8', '1/holding/200/2', '1/holding/305/18', '1/input/5/1', '2/holding/3/1'].sort(),
    );
    const sink = new CollectingSink();
    await driver.start(sink);
    await waitFor(() => sink.of('u16').length >= 2, 15_000);
    await driver.stop();
    const expected: Record<string, unknown> = {
      u16: 0,
      bit1: true,
      bit0: false,
      i32: (20 << 16) | 30,
      i32cdab: (30 << 16) | 20,
      u64: 40 * 2 ** 48 + 50 * 2 ** 32 + 60 * 2 ** 16 + 70,
      f32: 12.5,
      coil1: true,
      di1: false,
      ir5: 1005,
      u2: 2030,
      'hole-a': 3305,
      'hole-b': 3322,
    };
    for (const [id, v] of Object.entries(expected)) {
      expect(sink.of(id).map((s) => s.value), id).toEqual([v, v]);
      expect(sink.of(id).every((s) => s.quality.status === 'good'), id).toBe(true);
    }
    const after = await peerStats<Record<string, number>>(peer.process, 'requests');
    // Cycle 1: 7 planned requests, the merged 305..322 refused (exception 2) and re-read as 2 requests.
    // Cycle 2: the split is remembered: 6 + 2. Nothing else reached the peer.
    expect(sumRequests(after) - sumRequests(before)).toBe(7 + 2 + 6 + 2);
    expect(driver.counters()['exceptions_total']).toBe(1);
  });

  it('writes FC5/FC6/FC16 with the read types and byte orders; mbpoll reads back the same values', async () => {
    const config = modbusDevice({
      id: 'plc-w',
      kind: 'modbus',
      connection: { type: 'tcp', host: '127.0.0.1', port: peer.port, timeoutMs: 1000 },
      pollIntervalMs: 300,
      points: [
        { id: 'sp-f32', table: 'holding', address: 100, type: 'float32', byteOrder: 'CDAB', writable: true },
        { id: 'sp-i16', table: 'holding', address: 110, type: 'int16', writable: true },
        { id: 'sp-str', table: 'holding', address: 120, type: 'string', length: 3, writable: true },
        { id: 'flag', table: 'holding', address: 130, type: 'bit', bit: 3, writable: true },
        { id: 'relay', table: 'coil', address: 40, type: 'bool', writable: true },
      ],
    });
    const driver = await driverFor(config);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('sp-f32', (s) => s.quality.status === 'good');
      await driver.write('sp-f32', 3.25);
      await driver.write('sp-i16', -1234);
      await driver.write('sp-str', 'OUT');
      await driver.write('flag', true);
      await driver.write('relay', true);
      await sink.waitLatest('sp-f32', (s) => s.value === 3.25);
      await sink.waitLatest('sp-i16', (s) => s.value === -1234);
      await sink.waitLatest('sp-str', (s) => s.value === 'OUT');
      await sink.waitLatest('flag', (s) => s.value === true);
      await sink.waitLatest('relay', (s) => s.value === true);
      // Independent client (libmodbus' mbpoll, 1-based references; default word order = low word first = CDAB).
      const f = await run('mbpoll', ['-m', 'tcp', '-p', String(peer.port), '-a', '1', '-r', '101', '-c', '1', '-t', '4:float', '-1', '127.0.0.1']);
      expect(f.stdout).toMatch(/\[101\]:\s+3\.25/);
      const i = await run('mbpoll', ['-m', 'tcp', '-p', String(peer.port), '-a', '1', '-r', '111', '-c', '1', '-t', '4:hex', '-1', '127.0.0.1']);
      expect(i.stdout).toMatch(/\[111\]:\s+0xFB2E/i); // -1234 as int16
      const b = await run('mbpoll', ['-m', 'tcp', '-p', String(peer.port), '-a', '1', '-r', '131', '-c', '1', '-t', '4:hex', '-1', '127.0.0.1']);
      // HR 130 was 1300 (0x0514); bit 3 set keeps the other bits: 0x051C.
      expect(b.stdout).toMatch(/\[131\]:\s+0x051C/i);
      expect(driver.counters()['writes_total']).toBe(5);
      expect(driver.counters()['write_errors_total']).toBe(0);
    } finally {
      await driver.stop();
    }
  });

  it('rejects writes that do not fit the type before anything is sent', async () => {
    const config = modbusDevice({
      id: 'plc-v',
      kind: 'modbus',
      connection: { type: 'tcp', host: '127.0.0.1', port: peer.port },
      pollIntervalMs: 60_000,
      points: [{ id: 'small', table: 'holding', address: 140, type: 'int16', writable: true }],
    });
    const driver = await driverFor(config);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('small', (s) => s.quality.status === 'good');
      await expect(driver.write('small', 40_000)).rejects.toMatchObject({ code: 'OUTPOST_E_HAL_VALUE' });
      await expect(driver.write('nope', 1)).rejects.toMatchObject({ code: 'OUTPOST_E_HAL_UNKNOWN_POINT' });
    } finally {
      await driver.stop();
    }
  });
});

describe('Modbus TCP peer killed and restarted mid-poll', () => {
  it('reports bad, then good again with the same driver (no restart of Outpost)', async () => {
    const port = await freePort();
    let peer = await startModbusTcpPeer(port);
    const config = modbusDevice({
      id: 'plc-r',
      kind: 'modbus',
      connection: { type: 'tcp', host: '127.0.0.1', port, timeoutMs: 300, retries: 0 },
      pollIntervalMs: 100,
      points: [{ id: 'r', table: 'holding', address: 7 }],
    });
    const driver = await driverFor(config);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await sink.waitLatest('r', (s) => s.value === 70);
      await peer.process.stop('SIGKILL');
      const badSample = await sink.waitLatest('r', (s) => s.quality.status === 'bad');
      expect(['not connected', 'timeout']).toContain((badSample.quality as { reason: string }).reason);
      expect(driver.connected()).toBe(false);
      peer = await startModbusTcpPeer(port);
      await sink.waitLatest('r', (s) => s.quality.status === 'good' && s.value === 70, 40_000);
      expect(driver.connected()).toBe(true);
    } finally {
      await driver.stop();
      await peer.process.stop();
    }
  });
});

describe('Modbus RTU line (socat pty pair) with two units and a dead one', () => {
  it('polls units 1 and 2 over one line; the dead unit 3 is skipped and does not stall them', async () => {
    const pair = await startPtyPair(tempDir('rtu-dead'), 'line');
    const peer = await startModbusRtuPeer(pair.a, '1,2');
    const config = modbusDevice({
      id: 'line1',
      kind: 'modbus',
      connection: { type: 'rtu', port: pair.b, baudRate: 19200, timeoutMs: 250, retries: 1 },
      pollIntervalMs: 150,
      deadUnit: { afterTimeouts: 2, skipMs: 2000 },
      points: [
        { id: 'u1', unitId: 1, table: 'holding', address: 4 },
        { id: 'u2', unitId: 2, table: 'holding', address: 4 },
        { id: 'u3', unitId: 3, table: 'holding', address: 4 },
      ],
    });
    const driver = await driverFor(config);
    const sink = new CollectingSink();
    const started = Date.now();
    await driver.start(sink);
    try {
      await sink.waitLatest('u3', (s) => s.quality.status === 'bad');
      expect(sink.latest('u3')?.quality).toEqual({ status: 'bad', reason: 'timeout' });
      const from = sink.samples.length;
      await waitFor(() => sink.samples.slice(from).filter((s) => s.pointId === 'u1' && s.value === 40).length >= 12, 30_000);
      expect(sink.samples.slice(from).filter((s) => s.pointId === 'u2').every((s) => s.value === 2040)).toBe(true);
      // Unit 3 is skipped except for one probe per skip period: wait for a moment it is skipped, not the one just after a probe.
      await waitFor(() => driver.deadUnits().includes(3), 30_000);
      const c = driver.counters();
      expect(c['skipped_requests_total']).toBeGreaterThan(0);
      // A dead unit costs `afterTimeouts` timed-out requests, then one probe per skip period, never a retry.
      const probes = Math.ceil((Date.now() - started) / 2000) + 1;
      expect(c['timeouts_total']).toBeLessThanOrEqual(2 + probes);
    } finally {
      await driver.stop();
      await peer.stop();
      await pair.stop();
    }
  });

  it('survives corrupted and garbage frames from a fault relay: counted, no crash, never a wrong good value', async () => {
    const dir = tempDir('rtu-relay');
    const devicePair = await startPtyPair(dir, 'dev');
    const clientPair = await startPtyPair(dir, 'cli');
    const peer = await startModbusRtuPeer(devicePair.a, '1');
    const relay = await startRelay(devicePair.b, clientPair.a, ['--corrupt-every', '3', '--garbage-every', '5']);
    const config = modbusDevice({
      id: 'line2',
      kind: 'modbus',
      connection: { type: 'rtu', port: clientPair.b, baudRate: 19200, timeoutMs: 250, retries: 0 },
      pollIntervalMs: 100,
      deadUnit: { afterTimeouts: 50, skipMs: 1000 },
      points: [
        { id: 'a', table: 'holding', address: 10, type: 'uint32' },
        { id: 'b', table: 'input', address: 2 },
      ],
    });
    const driver = await driverFor(config);
    const sink = new CollectingSink();
    await driver.start(sink);
    try {
      await waitFor(() => driver.counters()['frame_errors_total']! >= 3 && sink.of('a').filter((s) => s.quality.status === 'good').length >= 10, 30_000);
      const stats = await peerStats<{ corrupted: number; garbage: number }>(relay, '');
      expect(stats.corrupted).toBeGreaterThan(0);
      for (const s of sink.of('a').filter((x) => x.quality.status === 'good')) expect(s.value).toBe((100 << 16) | 110);
      for (const s of sink.of('b').filter((x) => x.quality.status === 'good')) expect(s.value).toBe(1002);
      expect(sink.samples.some((s) => s.quality.status === 'bad' && (s.quality as { reason: string }).reason === 'frame error')).toBe(true);
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
