import { createRequire } from 'node:module';
import fc from 'fast-check';
import { ModbusSerialPort, modbusSerialFactory, type ModbusSerialClient } from '../../hal/modbus/modbus-serial-port.js';
import type { ModbusTable } from '../../hal/modbus/schema.js';
import { check, expectOutpostError, type FuzzTarget } from './target.js';

/** serialport's in-memory binding (its types do not resolve under NodeNext, so it is loaded as CommonJS with the part used here). */
const { MockBinding } = createRequire(import.meta.url)('@serialport/binding-mock') as { MockBinding: { createPort(path: string, options: { echo: boolean; record: boolean }): void } };

/**
 * Fuzz targets of the Modbus RTU answer path: the real modbus-serial client with its buffered RTU
 * framing (what a device, or anyone on the RS-485 line, sends back) over an in-memory serial port,
 * behind Outpost's ModbusSerialPort. Invariants under test: a well-formed answer, however it is cut
 * into chunks, reads as exactly the registers sent; any other answer (garbage, truncated, corrupted,
 * an exception, silence) gives `count` words in 0..65535 or one of the port's documented errors
 * (OUTPOST_E_MODBUS_TIMEOUT/_FRAME/_EXCEPTION/_NOT_CONNECTED), never another exception and never a hang.
 */

const FC: Record<ModbusTable, number> = { coil: 1, discrete: 2, holding: 3, input: 4 };

function crc16(buf: Uint8Array): number {
  let crc = 0xffff;
  for (const b of buf) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function withCrc(bytes: number[]): Buffer {
  const b = Buffer.alloc(bytes.length + 2);
  Buffer.from(bytes).copy(b);
  b.writeUInt16LE(crc16(b.subarray(0, bytes.length)), bytes.length);
  return b;
}

/** The well-formed RTU answer to a read of `values` (registers, or bits as 0/1). */
function answer(unit: number, table: ModbusTable, values: readonly number[]): Buffer {
  const fc = FC[table];
  if (fc <= 2) {
    const bytes = new Array<number>(Math.ceil(values.length / 8)).fill(0);
    values.forEach((v, i) => {
      if (v) bytes[i >> 3] = (bytes[i >> 3] as number) | (1 << (i & 7));
    });
    return withCrc([unit, fc, bytes.length, ...bytes]);
  }
  return withCrc([unit, fc, values.length * 2, ...values.flatMap((v) => [v >> 8, v & 0xff])]);
}

function chunked(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const c of at) {
    out.push(buf.subarray(from, c));
    from = c;
  }
  out.push(buf.subarray(from));
  return out.filter((c) => c.length > 0);
}

type Reply = (request: Buffer) => Buffer[];

let portSerial = 0;

/** A ModbusSerialPort on a fresh in-memory serial port whose device answers each request with `reply(request)`. */
async function openPort(timeoutMs: number, reply: Reply): Promise<ModbusSerialPort> {
  const path = `/dev/fuzz-rtu-${++portSerial}`;
  MockBinding.createPort(path, { echo: false, record: false });
  const create = await modbusSerialFactory();
  const factory = (): ModbusSerialClient => {
    const client = create();
    const connect = client.connectRTUBuffered.bind(client);
    client.connectRTUBuffered = async (p, options) => {
      await connect(p, { ...options, binding: MockBinding });
      const binding = (client as unknown as { _port: { _client: { port: { write(b: Buffer): Promise<void>; emitData(d: Buffer): void } } } })._port._client.port;
      const write = binding.write.bind(binding);
      binding.write = async (b: Buffer) => {
        await write(b);
        const request = Buffer.from(b);
        for (const chunk of reply(request)) binding.emitData(chunk);
      };
    };
    return client;
  };
  const port = new ModbusSerialPort({ type: 'rtu', port: path, baudRate: 9600, parity: 'none', dataBits: 8, stopBits: 1, timeoutMs } as ConstructorParameters<typeof ModbusSerialPort>[0], factory);
  await port.connect();
  return port;
}

const readArb = fc.record({
  unit: fc.integer({ min: 1, max: 247 }),
  table: fc.constantFrom<ModbusTable>('coil', 'discrete', 'holding', 'input'),
  address: fc.integer({ min: 0, max: 65000 }),
  count: fc.integer({ min: 1, max: 40 }),
});

export function modbusRtuTargets(): FuzzTarget[] {
  return [
    {
      name: 'modbus.rtu-answers',
      runs: 60,
      property: () =>
        fc.asyncProperty(readArb, fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 40, maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 }), async (read, all, cuts) => {
          const bits = read.table === 'coil' || read.table === 'discrete';
          const values = all.slice(0, read.count).map((v) => (bits ? v & 1 : v));
          const port = await openPort(20_000, () => chunked(answer(read.unit, read.table, values), cuts));
          try {
            const got = await port.read(read.unit, read.table, read.address, read.count);
            check(got.join() === values.join(), `read ${got.join()} instead of ${values.join()}`);
          } finally {
            await port.close();
          }
        }),
    },
    {
      name: 'modbus.rtu-hostile-answers',
      runs: 60,
      property: () =>
        fc.asyncProperty(
          readArb,
          fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 40, maxLength: 40 }),
          fc.oneof(
            fc.record({ kind: fc.constant('garbage' as const), bytes: fc.uint8Array({ maxLength: 90 }) }),
            fc.record({ kind: fc.constant('mutated' as const), edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 2 })), { minLength: 1, maxLength: 4 }) }),
            fc.record({ kind: fc.constant('exception' as const), code: fc.integer({ min: 0, max: 255 }), unitDelta: fc.constantFrom(0, 0, 1) }),
            fc.record({ kind: fc.constant('prefixed' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
          ),
          fc.array(fc.nat(), { maxLength: 6 }),
          async (read, all, hostile, cuts) => {
            const bits = read.table === 'coil' || read.table === 'discrete';
            const values = all.slice(0, read.count).map((v) => (bits ? v & 1 : v));
            const good = answer(read.unit, read.table, values);
            let bytes: Buffer;
            if (hostile.kind === 'garbage') bytes = Buffer.from(hostile.bytes);
            else if (hostile.kind === 'prefixed') bytes = Buffer.concat([Buffer.from(hostile.bytes), good]);
            else if (hostile.kind === 'exception') bytes = withCrc([(read.unit + hostile.unitDelta) & 0xff, FC[read.table] | 0x80, hostile.code]);
            else {
              const arr = [...good];
              for (const [at, value, op] of hostile.edits) {
                const i = at % (arr.length + 1);
                if (op === 0) arr.splice(i, 0, value);
                else if (op === 1) arr.splice(i, 1);
                else if (i < arr.length) arr[i] = value;
              }
              bytes = Buffer.from(arr);
            }
            const port = await openPort(60, () => chunked(bytes, cuts));
            try {
              const got = await port.read(read.unit, read.table, read.address, read.count);
              check(got.length === read.count, `${got.length} words for a read of ${read.count}`);
              check(got.every((w) => Number.isInteger(w) && w >= 0 && w <= (bits ? 1 : 0xffff)), `a word out of range: ${got.join()}`);
            } catch (e) {
              const err = expectOutpostError(e, ['OUTPOST_E_MODBUS_TIMEOUT', 'OUTPOST_E_MODBUS_FRAME', 'OUTPOST_E_MODBUS_EXCEPTION', 'OUTPOST_E_MODBUS_NOT_CONNECTED']);
              if (err.code === 'OUTPOST_E_MODBUS_EXCEPTION') check(hostile.kind === 'exception' && err.details['exception'] === hostile.code, 'an exception the device did not send');
            } finally {
              await port.close();
            }
          },
        ),
    },
  ];
}
