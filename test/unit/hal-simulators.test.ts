import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { systemClock } from '../../hal/clock.js';
import { GpioDriver } from '../../hal/gpio/driver.js';
import { SimGpioPort } from '../../hal/gpio/sim-port.js';
import { createSimulatedGpio } from '../../hal/gpio/simulator.js';
import { ModbusDriver } from '../../hal/modbus/driver.js';
import type { ModbusDeviceConfig } from '../../hal/modbus/schema.js';
import { createSimulatedModbus } from '../../hal/modbus/simulator.js';
import { OpcuaDriver } from '../../hal/opcua/driver.js';
import { SimOpcuaPort } from '../../hal/opcua/sim-port.js';
import { createSimulatedOpcua } from '../../hal/opcua/simulator.js';
import { SerialDriver } from '../../hal/serial/driver.js';
import { Framer, checkNmea, nmeaChecksum } from '../../hal/serial/framer.js';
import { SimGpsLink } from '../../hal/serial/sim-link.js';
import { GOOD, bad, type DeviceDriver, type Sample, type SampleSink } from '../../hal/types.js';
import { ConfigValidator } from '../../src/config/load.js';
import type { DeviceConfig } from '../../src/config/schema.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { captureLogger, silentLogger } from '../helpers/logger.js';

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0); // 2024-05-01T12:00:00.000Z
const validator = new ConfigValidator();

function deviceOf<K extends DeviceConfig['kind']>(kind: K, yaml: string): Extract<DeviceConfig, { kind: K }> {
  const d = validator.validate(parseYaml(yaml), [], '/tmp').devices[0];
  if (d?.kind !== kind) throw new Error(`expected a ${kind} device`);
  return d as Extract<DeviceConfig, { kind: K }>;
}

class Sink implements SampleSink {
  readonly batches: Sample[][] = [];
  onSamples(samples: readonly Sample[]): void {
    this.batches.push([...samples]);
  }
  get all(): Sample[] {
    return this.batches.flat();
  }
  of(id: string): Sample[] {
    return this.all.filter((s) => s.pointId === id);
  }
  values(id: string): Array<Sample['value']> {
    return this.of(id).map((s) => s.value);
  }
  last(id: string): Sample | undefined {
    return this.of(id).at(-1);
  }
  clear(): void {
    this.batches.length = 0;
  }
}

async function rejection(p: Promise<unknown>, code: string): Promise<OutpostError> {
  const e = await p.then(
    () => {
      throw new Error(`expected a rejection with ${code}, the promise resolved`);
    },
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(OutpostError);
  expect((e as OutpostError).code).toBe(code);
  return e as OutpostError;
}

/** Runs pending promise chains without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

const drivers: DeviceDriver[] = [];
function track<T extends DeviceDriver>(d: T): T {
  drivers.push(d);
  return d;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});
afterEach(async () => {
  for (const d of drivers.splice(0)) await d.stop();
  vi.useRealTimers();
});

// ---------------------------------------------------------------------------------------------
describe('Modbus simulator + driver', () => {
  const deps = () => ({ clock: systemClock, logger: silentLogger(), random: () => 0.5 });

  const TYPES = `
devices:
  - id: plc
    kind: modbus
    connection: { type: sim, seed: 3 }
    pollIntervalMs: 1000
    points:
      - { id: f-abcd, table: holding, address: 0, type: float32, byteOrder: ABCD, sim: { model: constant, value: 12.5 } }
      - { id: f-cdab, table: holding, address: 2, type: float32, byteOrder: CDAB, sim: { model: constant, value: 12.5 } }
      - { id: f-badc, table: holding, address: 4, type: float32, byteOrder: BADC, sim: { model: constant, value: -3.25 } }
      - { id: f-dcba, table: holding, address: 6, type: float32, byteOrder: DCBA, sim: { model: constant, value: -3.25 } }
      - { id: i32, table: holding, address: 8, type: int32, byteOrder: CDAB, sim: { model: constant, value: -2 } }
      - { id: u64, table: holding, address: 10, type: uint64, byteOrder: HGFEDCBA, sim: { model: constant, value: 4822678189205111 } }
      - { id: name, table: holding, address: 14, type: string, length: 4, byteOrder: BADC, sim: { model: constant, value: OUTPOST } }
      - { id: alarm, table: holding, address: 18, type: bit, bit: 3, sim: { model: constant, value: true } }
      - { id: f64, table: input, address: 0, type: float64, byteOrder: DCBA, sim: { model: constant, value: -0.1 } }
      - { id: level, table: input, address: 4, type: uint16, sim: { model: counter, start: 100, step: 5 } }
      - { id: pump, table: coil, address: 0, type: bool, sim: { model: toggle, periodMs: 2000 } }
`;

  it('yields good samples for every point, decoded with each point byte order, one request per merged block', async () => {
    const cfg = deviceOf('modbus', TYPES);
    const port = createSimulatedModbus(cfg, systemClock);
    const driver = track(new ModbusDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await flush();

    expect(driver.connected()).toBe(true);
    expect(sink.batches).toHaveLength(1);
    const first = Object.fromEntries(sink.all.map((s) => [s.pointId, s.value]));
    expect(first).toEqual({
      'f-abcd': 12.5,
      'f-cdab': 12.5,
      'f-badc': -3.25,
      'f-dcba': -3.25,
      i32: -2,
      u64: 4822678189205111,
      name: 'OUTPOST',
      alarm: true,
      f64: -0.1,
      level: 100,
      pump: false,
    });
    expect(sink.all.every((s) => s.quality.status === 'good' && s.sourceTime === T0)).toBe(true);

    // What is on the "wire" is the hand-computed layout of each byte order.
    expect(port.peek(1, 'holding', 0, 2)).toEqual([0x4148, 0x0000]);
    expect(port.peek(1, 'holding', 2, 2)).toEqual([0x0000, 0x4148]);
    expect(port.peek(1, 'holding', 4, 2)).toEqual([0x50c0, 0x0000]);
    expect(port.peek(1, 'holding', 6, 2)).toEqual([0x0000, 0x50c0]);
    expect(port.peek(1, 'holding', 8, 2)).toEqual([0xfffe, 0xffff]);
    expect(port.peek(1, 'holding', 10, 4)).toEqual([0x7766, 0x5544, 0x3322, 0x1100]);
    expect(port.peek(1, 'holding', 14, 4)).toEqual([0x554f, 0x5054, 0x534f, 0x0054]);
    expect(port.peek(1, 'holding', 18, 1)).toEqual([0x0008]);

    // holding 0..18, input 0..4 and coil 0 are one request each.
    expect(port.requests).toMatchObject({ fc1: 1, fc2: 0, fc3: 1, fc4: 1 });
    expect(driver.plan().map((b) => [b.table, b.address, b.count])).toEqual([
      ['holding', 0, 19],
      ['input', 0, 5],
      ['coil', 0, 1],
    ]);

    // The models move with the clock: one cycle per poll interval.
    await vi.advanceTimersByTimeAsync(2000);
    expect(sink.batches).toHaveLength(3);
    expect(sink.values('level')).toEqual([100, 105, 110]);
    expect(sink.values('pump')).toEqual([false, false, true]);
    expect(sink.values('f-cdab')).toEqual([12.5, 12.5, 12.5]);
    expect(port.requests).toMatchObject({ fc1: 3, fc3: 3, fc4: 3 });
    expect(driver.counters()).toMatchObject({ requests_total: 9, request_errors_total: 0 });
  });

  it('an unmapped address answers exception 2', async () => {
    const port = createSimulatedModbus(deviceOf('modbus', TYPES), systemClock);
    await port.connect();
    const e = await rejection(port.read(1, 'holding', 19, 1), 'OUTPOST_E_MODBUS_EXCEPTION');
    expect(e.details).toMatchObject({ exception: 2, unitId: 1, functionCode: 3 });
    // A read that runs past the mapped range fails the same way.
    expect((await rejection(port.read(1, 'holding', 16, 4), 'OUTPOST_E_MODBUS_EXCEPTION')).details['exception']).toBe(2);
    expect((await rejection(port.read(1, 'holding', 0, 126), 'OUTPOST_E_MODBUS_EXCEPTION')).details['exception']).toBe(3);
    expect(await port.read(1, 'holding', 0, 2)).toEqual([0x4148, 0x0000]);
  });

  const GAPPY = `
devices:
  - id: plc
    kind: modbus
    connection: { type: sim }
    pollIntervalMs: 1000
    maxGap: 10
    points:
      - { id: a, table: holding, address: 0, sim: { model: constant, value: 1 } }
      - { id: b, table: holding, address: 5, sim: { model: constant, value: 2 } }
`;

  it('splits a merged block that hits an unmapped address, and remembers the split', async () => {
    const cfg = deviceOf('modbus', GAPPY);
    const port = createSimulatedModbus(cfg, systemClock);
    const { logger, lines } = captureLogger();
    const driver = track(new ModbusDriver(cfg, port, { clock: systemClock, logger }));
    expect(driver.plan().map((b) => [b.address, b.count])).toEqual([[0, 6]]); // bridges unmapped 1..4
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    expect(port.requests.fc3).toBe(3); // the merged read, then one per point
    expect(sink.batches).toHaveLength(1);
    expect(sink.all.map((s) => [s.pointId, s.value, s.quality.status]).sort()).toEqual([
      ['a', 1, 'good'],
      ['b', 2, 'good'],
    ]);
    expect(lines.filter((l) => l['msg'] === 'merged read refused with illegal address; reading point by point')).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(1000);
    expect(port.requests.fc3).toBe(5); // remembered: only the two single reads
    await vi.advanceTimersByTimeAsync(1000);
    expect(port.requests.fc3).toBe(7);
    expect(driver.counters()).toMatchObject({ exceptions_total: 1 });
    expect(sink.values('a')).toEqual([1, 1, 1]);
    expect(sink.values('b')).toEqual([2, 2, 2]);
  });

  it('a unit that does not exist times out → bad(timeout); a lone unmapped point → bad(exception 2)', async () => {
    const simCfg = deviceOf('modbus', GAPPY);
    const port = createSimulatedModbus(simCfg, systemClock);
    // The driver knows more points than the device has.
    const cfg = deviceOf(
      'modbus',
      `${GAPPY.replace('pollIntervalMs: 1000', 'pollIntervalMs: 10000')}
      - { id: hole, table: holding, address: 100 }
      - { id: ghost, unitId: 9, table: holding, address: 0 }
`,
    );
    const driver = track(new ModbusDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    expect(sink.batches).toHaveLength(0); // the cycle waits for the silent unit
    await vi.advanceTimersByTimeAsync(999);
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.batches).toHaveLength(1);
    expect(sink.last('ghost')).toMatchObject({ value: null, quality: bad('timeout') });
    expect(sink.last('hole')).toMatchObject({ value: null, quality: bad('exception 2') });
    expect(sink.last('a')).toMatchObject({ value: 1, quality: GOOD });
    expect(sink.last('b')).toMatchObject({ value: 2, quality: GOOD });
    expect(driver.counters()).toMatchObject({ timeouts_total: 1, exceptions_total: 2 });
    expect(driver.connected()).toBe(true); // a timeout is not a lost connection
  });

  it('an offline device times out → bad(timeout) for every point, then recovers', async () => {
    const cfg = deviceOf('modbus', GAPPY.replace('pollIntervalMs: 1000', 'pollIntervalMs: 5000').replace('maxGap: 10', 'maxGap: 0'));
    const port = createSimulatedModbus(cfg, systemClock);
    const driver = track(new ModbusDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    expect(sink.all.every((s) => s.quality.status === 'good')).toBe(true);
    sink.clear();

    port.offline = true;
    await vi.advanceTimersByTimeAsync(5000); // next cycle starts; both reads wait for their timeout
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(2000); // two blocks, one after the other on the line
    expect(sink.batches).toHaveLength(1);
    expect(sink.all.map((s) => [s.pointId, s.value, s.quality])).toEqual([
      ['a', null, bad('timeout')],
      ['b', null, bad('timeout')],
    ]);
    expect(driver.counters()).toMatchObject({ timeouts_total: 2 });

    port.offline = false;
    sink.clear();
    await vi.advanceTimersByTimeAsync(3000); // the next cycle at 10 s
    expect(sink.all.map((s) => [s.pointId, s.value, s.quality.status])).toEqual([
      ['a', 1, 'good'],
      ['b', 2, 'good'],
    ]);
  });

  const WRITES = `
devices:
  - id: plc
    kind: modbus
    connection: { type: sim }
    pollIntervalMs: 1000
    maxGap: 0
    points:
      - { id: sp, table: holding, address: 0, type: int16, writable: true, sim: { model: counter, start: 0, step: 1 } }
      - { id: sp32, table: holding, address: 1, type: float32, byteOrder: CDAB, writable: true, sim: { model: constant, value: 0 } }
      - { id: flag, table: holding, address: 5, type: bit, bit: 2, writable: true, sim: { model: constant, value: false } }
      - { id: cnt, table: holding, address: 20, type: uint16, sim: { model: counter, start: 0, step: 1 } }
      - { id: ro, table: holding, address: 30, type: uint16 }
      - { id: inreg, table: input, address: 0, type: uint16 }
      - { id: run, table: coil, address: 0, type: bool, writable: true, sim: { model: constant, value: false } }
`;

  it('writes holding registers with FC6 (one) or FC16 (several), a bit by read-modify-write, a coil with FC5', async () => {
    const cfg = deviceOf('modbus', WRITES);
    const port = createSimulatedModbus(cfg, systemClock);
    const driver = track(new ModbusDriver(cfg, port, deps()));
    await driver.start(new Sink());
    await flush();
    const base = { ...port.requests };

    await driver.write('sp', -42);
    expect(port.requests.fc6 - base.fc6).toBe(1);
    expect(port.requests.fc16 - base.fc16).toBe(0);
    expect(port.peek(1, 'holding', 0, 1)).toEqual([0xffd6]);

    await driver.write('sp32', 12.5);
    expect(port.requests.fc16 - base.fc16).toBe(1);
    expect(port.peek(1, 'holding', 1, 2)).toEqual([0x0000, 0x4148]);

    port.poke(1, 'holding', 5, [0x1200]); // other bits set by the device
    const fc3 = port.requests.fc3;
    await driver.write('flag', true);
    expect(port.requests.fc3 - fc3).toBe(1); // read the register…
    expect(port.requests.fc6 - base.fc6).toBe(2); // …then write it back with FC6
    expect(port.peek(1, 'holding', 5, 1)).toEqual([0x1204]);
    await driver.write('flag', false);
    expect(port.peek(1, 'holding', 5, 1)).toEqual([0x1200]);

    await driver.write('run', true);
    expect(port.requests.fc5 - base.fc5).toBe(1);
    expect(port.peek(1, 'coil', 0, 1)).toEqual([1]);
    expect(driver.counters()).toMatchObject({ writes_total: 5, write_errors_total: 0 });
  });

  it('refuses writes to input registers, read-only points and unknown points; rejects values that do not fit', async () => {
    const cfg = deviceOf('modbus', WRITES);
    const port = createSimulatedModbus(cfg, systemClock);
    const driver = track(new ModbusDriver(cfg, port, deps()));
    await driver.start(new Sink());
    await flush();
    const before = { ...port.requests };
    expect((await rejection(driver.write('inreg', 1), 'OUTPOST_E_HAL_READ_ONLY')).details).toMatchObject({ pointId: 'inreg', table: 'input' });
    await rejection(driver.write('ro', 1), 'OUTPOST_E_HAL_READ_ONLY');
    await rejection(driver.write('nope', 1), 'OUTPOST_E_HAL_UNKNOWN_POINT');
    // Even a point flagged writable is refused when its table is read-only (config validation is not the only guard).
    const forced: ModbusDeviceConfig = { ...cfg, points: cfg.points.map((p) => (p.id === 'inreg' ? { ...p, writable: true } : p)) };
    const forcedDriver = track(new ModbusDriver(forced, createSimulatedModbus(forced, systemClock), deps()));
    await forcedDriver.start(new Sink());
    await rejection(forcedDriver.write('inreg', 1), 'OUTPOST_E_HAL_READ_ONLY');
    expect(port.requests).toEqual(before); // nothing reached the device

    await rejection(driver.write('sp', 40000), 'OUTPOST_E_HAL_VALUE');
    expect(port.requests.fc6).toBe(before.fc6);
    expect(driver.counters()).toMatchObject({ write_errors_total: 1 });
    expect(driver.connected()).toBe(true);
  });

  it('a written value survives the simulation model', async () => {
    const cfg = deviceOf('modbus', WRITES);
    const port = createSimulatedModbus(cfg, systemClock);
    const driver = track(new ModbusDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    await driver.write('sp', 42);
    await vi.advanceTimersByTimeAsync(3000);
    expect(sink.values('cnt')).toEqual([0, 1, 2, 3]); // the model keeps running…
    expect(sink.values('sp')).toEqual([0, 42, 42, 42]); // …but not over the written setpoint
    await driver.write('sp', 7);
    await vi.advanceTimersByTimeAsync(2000);
    expect(sink.values('sp').slice(-2)).toEqual([7, 7]);
  });

  it('stop() ends polling and closes the port', async () => {
    const cfg = deviceOf('modbus', GAPPY);
    const port = createSimulatedModbus(cfg, systemClock);
    const driver = new ModbusDriver(cfg, port, deps());
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    await driver.stop();
    const n = sink.batches.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(sink.batches).toHaveLength(n);
    expect(driver.connected()).toBe(false);
    await driver.stop(); // idempotent
  });
});

// ---------------------------------------------------------------------------------------------
describe('OPC UA simulator + driver', () => {
  const deps = () => ({ clock: systemClock, logger: silentLogger(), random: () => 0 });
  const UA = `
devices:
  - id: ua
    kind: opcua
    connection: { type: sim, seed: 2 }
    samplingIntervalMs: 250
    points:
      - { id: count, nodeId: "ns=1;s=Count", sim: { model: counter, start: 0, step: 1 } }
      - { id: sp, nodeId: "ns=1;s=SP", writable: true }
      - { id: fixed, nodeId: "ns=1;s=Fixed", sim: { model: constant, value: 7 } }
`;

  it('a subscription delivers the initial values, then changes only', async () => {
    const cfg = deviceOf('opcua', UA);
    const port = createSimulatedOpcua(cfg, systemClock);
    const driver = track(new OpcuaDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    expect(driver.connected()).toBe(true);
    expect(sink.values('count')).toEqual([0]);
    expect(sink.values('sp')).toEqual([50]); // a writable point without a model holds its value
    expect(sink.values('fixed')).toEqual([7]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.values('count')).toEqual([0, 1, 2, 3, 4]);
    expect(sink.values('fixed')).toEqual([7]); // unchanged: no notification
    expect(sink.of('count').map((s) => s.sourceTime)).toEqual([T0, T0 + 250, T0 + 500, T0 + 750, T0 + 1000]);
    expect(sink.all.every((s) => s.quality.status === 'good')).toBe(true);
    expect(driver.counters()).toMatchObject({ notifications_total: 7 });

    await driver.write('sp', 7.5);
    await vi.advanceTimersByTimeAsync(250);
    expect(sink.values('sp')).toEqual([50, 7.5]);
    expect(driver.counters()).toMatchObject({ writes_total: 1, write_errors_total: 0 });
  });

  it('drop(): every point goes bad(not connected), then the session and subscription are re-created', async () => {
    const cfg = deviceOf('opcua', UA);
    const port = createSimulatedOpcua(cfg, systemClock);
    const subscribe = vi.spyOn(port, 'subscribe');
    const driver = track(new OpcuaDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await vi.advanceTimersByTimeAsync(500);
    expect(subscribe).toHaveBeenCalledTimes(1);
    sink.clear();

    port.drop();
    expect(sink.batches[0]).toEqual([
      { pointId: 'count', value: null, quality: bad('not connected'), sourceTime: T0 + 500 },
      { pointId: 'sp', value: null, quality: bad('not connected'), sourceTime: T0 + 500 },
      { pointId: 'fixed', value: null, quality: bad('not connected'), sourceTime: T0 + 500 },
    ]);
    await flush();
    expect(subscribe).toHaveBeenCalledTimes(2);
    expect(driver.connected()).toBe(true);
    // The new subscription reports every point good again.
    expect(sink.batches.slice(1).flat().map((s) => [s.pointId, s.quality.status])).toEqual([
      ['count', 'good'],
      ['sp', 'good'],
      ['fixed', 'good'],
    ]);
    expect(sink.last('count')?.value).toBe(2);
    // The old subscription is gone: one notification per sampling interval, not two.
    sink.clear();
    await vi.advanceTimersByTimeAsync(250);
    expect(sink.values('count')).toEqual([3]);
  });

  it('a write to a read-only variable is refused by the server with BadNotWritable', async () => {
    const port = new SimOpcuaPort(systemClock);
    port.addVariable('ns=1;s=Locked', 1, null, false);
    port.addVariable('ns=1;s=Open', 1, null, true);
    const cfg = deviceOf(
      'opcua',
      `
devices:
  - id: ua
    kind: opcua
    connection: { type: sim }
    points:
      - { id: locked, nodeId: "ns=1;s=Locked", writable: true }
      - { id: open, nodeId: "ns=1;s=Open", writable: true }
      - { id: ro, nodeId: "ns=1;s=Open" }
`,
    );
    const driver = track(new OpcuaDriver(cfg, port, deps()));
    await driver.start(new Sink());
    await flush();
    const e = await rejection(driver.write('locked', 2), 'OUTPOST_E_OPCUA_STATUS');
    expect(e.details).toMatchObject({ status: 'BadNotWritable', nodeId: 'ns=1;s=Locked' });
    expect(await port.read(['ns=1;s=Locked'])).toMatchObject([{ value: 1, status: 'Good' }]);
    await driver.write('open', 3);
    expect(await port.read(['ns=1;s=Open'])).toMatchObject([{ value: 3 }]);
    await rejection(driver.write('ro', 4), 'OUTPOST_E_HAL_READ_ONLY'); // refused by the driver, before the server
    await rejection(driver.write('nope', 4), 'OUTPOST_E_HAL_UNKNOWN_POINT');
    expect(driver.counters()).toMatchObject({ writes_total: 2, write_errors_total: 1 });
  });

  it('poll mode reads every point every pollIntervalMs, changed or not; unknown nodes are bad', async () => {
    const port = new SimOpcuaPort(systemClock);
    port.addVariable('ns=1;s=Fixed', 7, null, false);
    const cfg = deviceOf(
      'opcua',
      `
devices:
  - id: ua
    kind: opcua
    connection: { type: sim }
    mode: poll
    pollIntervalMs: 1000
    points:
      - { id: fixed, nodeId: "ns=1;s=Fixed" }
      - { id: ghost, nodeId: "ns=1;s=Ghost" }
`,
    );
    const subscribe = vi.spyOn(port, 'subscribe');
    const driver = track(new OpcuaDriver(cfg, port, deps()));
    const sink = new Sink();
    await driver.start(sink);
    await flush();
    expect(sink.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(3000);
    expect(sink.batches).toHaveLength(4);
    expect(sink.values('fixed')).toEqual([7, 7, 7, 7]);
    expect(sink.last('fixed')).toEqual({ pointId: 'fixed', value: 7, quality: GOOD, sourceTime: T0 + 3000 });
    expect(sink.last('ghost')).toMatchObject({ value: null, quality: bad('BadNodeIdUnknown') });
    expect(subscribe).not.toHaveBeenCalled();
    expect(driver.counters()).toMatchObject({ reads_total: 4, read_errors_total: 0 });

    await driver.stop();
    await vi.advanceTimersByTimeAsync(3000);
    expect(sink.batches).toHaveLength(4);
  });
});

// ---------------------------------------------------------------------------------------------
describe('serial framing and NMEA', () => {
  const buf = (s: string) => Buffer.from(s, 'latin1');
  const text = (frames: Buffer[]) => frames.map((f) => f.toString('latin1'));

  it('delimiter framing across chunk boundaries, including a split delimiter', () => {
    const f = new Framer({ type: 'delimiter', delimiter: '\r\n', maxLength: 1024 });
    expect(text(f.push(buf('$GPG')))).toEqual([]);
    expect(text(f.push(buf('GA,1\r')))).toEqual([]);
    expect(text(f.push(buf('\n$GPRMC,2\r\n$GP')))).toEqual(['$GPGGA,1', '$GPRMC,2']);
    expect(text(f.push(buf('X\r\n\r\n')))).toEqual(['$GPX', '']);
    expect(f.overflows).toBe(0);
  });

  it('fixed-length framing', () => {
    const f = new Framer({ type: 'fixed', length: 4 });
    expect(text(f.push(buf('abcdef')))).toEqual(['abcd']);
    expect(text(f.push(buf('gh')))).toEqual(['efgh']);
    expect(text(f.push(buf('ijklmnopq')))).toEqual(['ijkl', 'mnop']);
    expect(text(f.push(buf('rst')))).toEqual(['qrst']);
  });

  it('regex framing across chunk boundaries, skipping noise between frames', () => {
    const f = new Framer({ type: 'regex', pattern: '\\$[^\\r\\n]*\\r\\n', maxLength: 4096 });
    expect(text(f.push(buf('noise$GP')))).toEqual([]);
    expect(text(f.push(buf('GGA,1*00\r\n$GPR')))).toEqual(['$GPGGA,1*00\r\n']);
    expect(text(f.push(buf('MC,2\r')))).toEqual([]);
    expect(text(f.push(buf('\n')))).toEqual(['$GPRMC,2\r\n']);
    expect(text(f.push(buf('$A\r\nxx$B\r\n')))).toEqual(['$A\r\n', '$B\r\n']);
  });

  it('regex framing: STX/ETX binary-style frames', () => {
    const f = new Framer({ type: 'regex', pattern: '\\x02[^\\x03]*\\x03', maxLength: 64 });
    expect(text(f.push(buf('\x02AB')))).toEqual([]);
    expect(text(f.push(buf('C\x03\x02D\x03')))).toEqual(['\x02ABC\x03', '\x02D\x03']);
  });

  it('an over-long frame is dropped and counted; its tail is not taken for a frame', () => {
    const f = new Framer({ type: 'delimiter', delimiter: '\r\n', maxLength: 8 });
    expect(text(f.push(buf('12345678\r\n')))).toEqual(['12345678']); // exactly maxLength is fine
    expect(text(f.push(buf('0123456789\r\nok\r\n')))).toEqual(['ok']);
    expect(f.overflows).toBe(1);
    expect(text(f.push(buf('0123456789')))).toEqual([]); // no delimiter yet, already too long
    expect(f.overflows).toBe(2);
    expect(text(f.push(buf('abc\r\nnext\r\n')))).toEqual(['next']);
    expect(f.overflows).toBe(2);
    // A frame of exactly maxLength whose delimiter is split across chunks is still a frame…
    expect(text(f.push(buf('87654321\r')))).toEqual([]);
    expect(text(f.push(buf('\n')))).toEqual(['87654321']);
    expect(f.overflows).toBe(2);
    // …and a split delimiter ending an over-long frame still ends it.
    expect(text(f.push(buf('0123456789\r')))).toEqual([]);
    expect(text(f.push(buf('\nafter\r\n')))).toEqual(['after']);
    expect(f.overflows).toBe(3);

    const r = new Framer({ type: 'regex', pattern: '\\$[^\\r\\n]*\\r\\n', maxLength: 8 });
    expect(text(r.push(buf('$ABCDEFGHIJ')))).toEqual([]);
    expect(r.overflows).toBe(1);
    expect(text(r.push(buf('$OK\r\n')))).toEqual(['$OK\r\n']);
  });

  it('nmeaChecksum / checkNmea on real sentences', () => {
    const gga = '$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47';
    const rmc = '$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A';
    expect(nmeaChecksum('GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,')).toBe('47');
    expect(nmeaChecksum('GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W')).toBe('6A');
    expect(nmeaChecksum('')).toBe('00');
    expect(nmeaChecksum('A')).toBe('41');
    expect(checkNmea(gga)).toBe('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,');
    expect(checkNmea(rmc)).toBe('$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W');
    expect(checkNmea(`${gga}\r\n`)).not.toBeNull(); // trailing line end tolerated
    expect(checkNmea(rmc.replace('*6A', '*6a'))).not.toBeNull(); // hex case does not matter
    expect(checkNmea('!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0*5C')).toBe('!AIVDM,1,1,,B,177KQJ5000G?tO`K>RA1wUbN0TKH,0');
  });

  it('checkNmea rejects wrong checksums and malformed sentences', () => {
    expect(checkNmea('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*48')).toBeNull();
    expect(checkNmea('$GPGGA,123519,4807.039,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47')).toBeNull(); // one digit changed
    expect(checkNmea('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,')).toBeNull(); // no checksum
    expect(checkNmea('GPGGA,123519*47')).toBeNull(); // no start character
    expect(checkNmea('$GPGGA,123519*4')).toBeNull();
    expect(checkNmea('$GPGGA,123519*4G')).toBeNull();
  });
});

describe('SimGpsLink + SerialDriver', () => {
  const GPS = (corruptEvery = 0) => `
devices:
  - id: gps
    kind: serial
    connection: { type: sim, profile: gps, intervalMs: 1000, seed: 5, corruptEvery: ${corruptEvery} }
    framing: { type: delimiter, delimiter: "\\r\\n" }
    checksum: nmea
    points:
      - { id: time, match: '^\\$GPGGA,', field: 1, type: string }
      - { id: lat, match: '^\\$GPGGA,', field: 2 }
      - { id: lon, match: '^\\$GPGGA,', field: 4 }
      - { id: sats, match: '^\\$GPGGA,', field: 7 }
      - { id: alt, match: '^\\$GPGGA,', field: 9 }
      - { id: speed, match: '^\\$GPRMC,', field: 7 }
      - { id: fix, match: '^\\$GPRMC,', field: 2, type: boolean }
      - { id: rmc-lat, match: '^\\$GPRMC,[^,]*,A,([0-9.]+),N', group: 1 }
`;
  const setup = (corruptEvery = 0, link?: SimGpsLink) => {
    const cfg = deviceOf('serial', GPS(corruptEvery));
    if (cfg.connection.type !== 'sim') throw new Error('sim expected');
    const l = link ?? new SimGpsLink(systemClock, cfg.connection);
    const driver = track(new SerialDriver(cfg, l, { clock: systemClock, logger: silentLogger(), random: () => 0 }));
    return { cfg, link: l, driver, sink: new Sink() };
  };

  it('parses points from GGA and RMC fields (and capture groups), sentences arriving in split chunks', async () => {
    const { driver, sink } = setup();
    await driver.start(sink);
    await flush();
    expect(driver.connected()).toBe(true);
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.of('time')).toEqual([{ pointId: 'time', value: '120001.00', quality: GOOD, sourceTime: T0 + 1000 }]);
    const lat = sink.last('lat')?.value as number;
    expect(Math.abs(lat - 4807.038)).toBeLessThanOrEqual(0.0025); // one drift step from the start
    expect(Math.abs((sink.last('lon')?.value as number) - 1131.0)).toBeLessThanOrEqual(0.0025);
    expect(Math.abs((sink.last('alt')?.value as number) - 545.4)).toBeLessThanOrEqual(0.35);
    expect(sink.last('sats')?.value).toBe(8);
    expect(sink.last('fix')?.value).toBe(true);
    expect(sink.last('rmc-lat')?.value).toBe(lat); // the same position in both sentences
    const speed = sink.last('speed')?.value as number;
    expect(speed).toBeGreaterThanOrEqual(11.5);
    expect(speed).toBeLessThanOrEqual(12.5);
    expect(sink.all.every((s) => s.quality.status === 'good')).toBe(true);

    await vi.advanceTimersByTimeAsync(2000);
    expect(sink.values('time')).toEqual(['120001.00', '120002.00', '120003.00']);
    expect(sink.of('lat')).toHaveLength(3);
    expect(sink.of('speed')).toHaveLength(3);
    expect(driver.counters()).toMatchObject({ frames_total: 6, checksum_errors_total: 0, parse_errors_total: 0, overflows_total: 0 });
  });

  it('corruptEvery: a sentence with a bad checksum is counted and yields no sample', async () => {
    const { driver, sink } = setup(2); // every second sentence: each RMC
    await driver.start(sink);
    await vi.advanceTimersByTimeAsync(3000);
    expect(driver.counters()).toMatchObject({ frames_total: 6, checksum_errors_total: 3 });
    expect(sink.of('lat')).toHaveLength(3);
    expect(sink.of('speed')).toEqual([]);
    expect(sink.of('fix')).toEqual([]);
    expect(sink.of('rmc-lat')).toEqual([]);
  });

  it('an empty numeric field is a parse error with bad quality', async () => {
    const cfg = deviceOf('serial', GPS().replace("      - { id: time, match: '^\\$GPGGA,', field: 1, type: string }", "      - { id: station, match: '^\\$GPGGA,', field: 14 }"));
    if (cfg.connection.type !== 'sim') throw new Error('sim expected');
    const driver = track(new SerialDriver(cfg, new SimGpsLink(systemClock, cfg.connection), { clock: systemClock, logger: silentLogger() }));
    const sink = new Sink();
    await driver.start(sink);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.of('station')).toEqual([{ pointId: 'station', value: null, quality: bad('parse error'), sourceTime: T0 + 1000 }]);
    expect(driver.counters()).toMatchObject({ parse_errors_total: 1 });
  });

  it('unplug → every point bad(not connected), the port is reopened and samples resume', async () => {
    const { driver, sink, link } = setup();
    await driver.start(sink);
    await vi.advanceTimersByTimeAsync(1500);
    sink.clear();
    (link as SimGpsLink).unplug();
    expect(sink.batches).toHaveLength(1);
    expect(sink.batches[0]?.map((s) => [s.pointId, s.value, s.quality])).toEqual(
      ['time', 'lat', 'lon', 'sats', 'alt', 'speed', 'fix', 'rmc-lat'].map((id) => [id, null, bad('not connected')]),
    );
    sink.clear();
    await flush();
    expect(driver.connected()).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.values('time')).toEqual(['120002.50']);
    expect(sink.last('lat')?.quality).toEqual(GOOD);
  });

  it('a port that fails to open is retried with backoff', async () => {
    class FlakyLink extends SimGpsLink {
      failures = 2;
      override async open(): Promise<void> {
        if (this.failures > 0) {
          this.failures--;
          throw new Error('ENOENT: no such device');
        }
        return super.open();
      }
    }
    const link = new FlakyLink(systemClock, { intervalMs: 1000, seed: 1, corruptEvery: 0 });
    const { driver, sink } = setup(0, link);
    await driver.start(sink);
    await flush();
    expect(driver.connected()).toBe(false);
    expect(driver.counters()).toMatchObject({ reopens_total: 1 });
    await vi.advanceTimersByTimeAsync(250); // first backoff: 250 ms with this random
    expect(driver.counters()).toMatchObject({ reopens_total: 2 });
    expect(driver.connected()).toBe(false);
    await vi.advanceTimersByTimeAsync(500);
    expect(driver.connected()).toBe(true);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.of('lat')).toHaveLength(1);
  });

  it('serial points are read-only', async () => {
    const { driver } = setup();
    await rejection(driver.write('lat', 1), 'OUTPOST_E_HAL_READ_ONLY');
  });
});

// ---------------------------------------------------------------------------------------------
describe('GPIO simulator + driver', () => {
  const IO = `
devices:
  - id: io
    kind: gpio
    connection: { type: sim }
    pollIntervalMs: 60000
    points:
      - { id: door, pin: 17, direction: in, edge: both, debounceMs: 20 }
      - { id: button, pin: 18, direction: in, edge: rising }
      - { id: level, pin: 19, direction: in, edge: none }
      - { id: relay, pin: 23, direction: out, safeState: false, writable: true }
      - { id: lamp, pin: 24, direction: out, safeState: true, writable: true }
      - { id: fixed, pin: 25, direction: out, safeState: false }
`;
  const setup = () => {
    const cfg = deviceOf('gpio', IO);
    const port = new SimGpioPort(systemClock);
    const outputs: Array<[number, boolean]> = [];
    port.onOutput((pin, level) => outputs.push([pin, level]));
    const driver = track(new GpioDriver(cfg, port, { clock: systemClock, logger: silentLogger() }));
    return { port, driver, outputs, sink: new Sink() };
  };

  it('drives outputs to their safe state at start and reports every line once', async () => {
    const { port, driver, sink } = setup();
    await driver.start(sink);
    expect(port.level(23)).toBe(false);
    expect(port.level(24)).toBe(true); // safeState true, not the default low
    expect(port.level(25)).toBe(false);
    expect(driver.connected()).toBe(true);
    expect(sink.batches).toHaveLength(1);
    expect(Object.fromEntries(sink.all.map((s) => [s.pointId, s.value]))).toEqual({
      door: false,
      button: false,
      level: false,
      relay: false,
      lamp: true,
      fixed: false,
    });
  });

  it('a write sets the level and emits a sample at once', async () => {
    const { port, driver, sink, outputs } = setup();
    await driver.start(sink);
    sink.clear();
    await driver.write('relay', true);
    expect(port.level(23)).toBe(true);
    expect(outputs).toEqual([[23, true]]);
    expect(sink.batches).toEqual([[{ pointId: 'relay', value: true, quality: GOOD, sourceTime: T0 }]]);
    for (const [v, level] of [[0, false], ['on', true], ['LOW', false], [1, true], ['false', false]] as const) {
      await driver.write('relay', v);
      expect(port.level(23)).toBe(level);
    }
    await rejection(driver.write('relay', 'maybe'), 'OUTPOST_E_HAL_VALUE');
    expect(port.level(23)).toBe(false);
    expect(driver.counters()).toMatchObject({ writes_total: 6, write_errors_total: 0 });
  });

  it('drives outputs back to their safe state at stop, once', async () => {
    const { driver, sink, outputs } = setup();
    await driver.start(sink);
    await driver.write('relay', true);
    await driver.write('lamp', false);
    outputs.length = 0;
    const n = sink.batches.length;
    await driver.stop();
    expect(outputs).toEqual(expect.arrayContaining([[23, false], [24, true], [25, false]]));
    expect(outputs).toHaveLength(3);
    expect(driver.connected()).toBe(false);
    await driver.stop();
    expect(outputs).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sink.batches).toHaveLength(n);
  });

  it('debounce: a bouncing input yields one sample once the level held debounceMs', async () => {
    const { port, driver, sink } = setup();
    await driver.start(sink);
    sink.clear();
    port.setInput(17, true);
    await vi.advanceTimersByTimeAsync(5);
    port.setInput(17, false);
    await vi.advanceTimersByTimeAsync(5);
    port.setInput(17, true);
    await vi.advanceTimersByTimeAsync(19);
    expect(sink.batches).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.batches).toEqual([[{ pointId: 'door', value: true, quality: GOOD, sourceTime: T0 + 30 }]]);
    expect(driver.counters()).toMatchObject({ edges_total: 3, debounced_total: 2 });
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.batches).toHaveLength(1);
    // A clean edge after the bounce: one more sample.
    port.setInput(17, false);
    await vi.advanceTimersByTimeAsync(20);
    expect(sink.values('door')).toEqual([true, false]);
  });

  it('edges without debounce are reported at once, only for the edges asked for', async () => {
    const { port, driver, sink } = setup();
    await driver.start(sink);
    sink.clear();
    port.setInput(18, true);
    expect(sink.batches).toEqual([[{ pointId: 'button', value: true, quality: GOOD, sourceTime: T0 }]]);
    port.setInput(18, false); // falling: not watched
    port.setInput(19, true); // edge none: only the periodic re-read sees it
    await flush();
    expect(sink.batches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sink.last('level')?.value).toBe(true);
    expect(sink.last('button')?.value).toBe(false); // the missed edge is corrected by the re-read
  });

  it('writing an input or a non-writable output is refused', async () => {
    const { port, driver, sink } = setup();
    await driver.start(sink);
    expect((await rejection(driver.write('door', true), 'OUTPOST_E_HAL_READ_ONLY')).details).toMatchObject({ pointId: 'door' });
    await rejection(driver.write('fixed', true), 'OUTPOST_E_HAL_READ_ONLY');
    await rejection(driver.write('nope', true), 'OUTPOST_E_HAL_UNKNOWN_POINT');
    expect(port.level(17)).toBe(false);
    expect(port.level(25)).toBe(false);
    // The simulated line itself refuses too.
    const other = new SimGpioPort(systemClock);
    const line = await other.open(4, { direction: 'in', edge: 'both', activeLow: false });
    await rejection(line.write(true), 'OUTPOST_E_HAL_READ_ONLY');
    await rejection(other.open(4, { direction: 'in', edge: 'both', activeLow: false }), 'OUTPOST_E_GPIO_BUSY');
  });

  it('createSimulatedGpio: an input follows its model and its edges pass the debounce', async () => {
    const cfg = deviceOf(
      'gpio',
      `
devices:
  - id: io
    kind: gpio
    connection: { type: sim }
    pollIntervalMs: 60000
    points:
      - { id: door, pin: 17, direction: in, edge: both, debounceMs: 20, sim: { model: toggle, periodMs: 1000 } }
      - { id: relay, pin: 23, direction: out, safeState: true, writable: true }
`,
    );
    const port = createSimulatedGpio(cfg, systemClock);
    const driver = track(new GpioDriver(cfg, port, { clock: systemClock, logger: silentLogger() }));
    const sink = new Sink();
    await driver.start(sink);
    expect(port.level(23)).toBe(true);
    expect(sink.values('door')).toEqual([false]);
    await vi.advanceTimersByTimeAsync(1019);
    expect(sink.values('door')).toEqual([false]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sink.values('door')).toEqual([false, true]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sink.values('door')).toEqual([false, true, false]);
  });
});
