import { Type, type Static } from '@sinclair/typebox';
import { Id, PointReporting, TaggedUnion, WritableFlag } from '../schema-common.js';
import { SimModel } from '../sim-model.js';

export const MODBUS_TABLES = ['coil', 'discrete', 'holding', 'input'] as const;
export const MODBUS_TYPES = [
  'bool',
  'bit',
  'int16',
  'uint16',
  'int32',
  'uint32',
  'int64',
  'uint64',
  'float32',
  'float64',
  'string',
] as const;
export const BYTE_ORDERS = ['ABCD', 'BADC', 'CDAB', 'DCBA', 'ABCDEFGH', 'BADCFEHG', 'GHEFCDAB', 'HGFEDCBA'] as const;

export const ModbusPoint = Type.Object(
  {
    id: Id,
    unitId: Type.Integer({ minimum: 0, maximum: 255, default: 1, description: 'Modbus unit (slave) id.' }),
    table: Type.Union(
      MODBUS_TABLES.map((t) => Type.Literal(t)),
      { description: 'coil (FC1/5/15), discrete input (FC2), holding register (FC3/6/16), input register (FC4).' },
    ),
    address: Type.Integer({ minimum: 0, maximum: 65535, description: 'Zero-based protocol address.' }),
    type: Type.Union(
      MODBUS_TYPES.map((t) => Type.Literal(t)),
      {
        default: 'uint16',
        description:
          '`bool` for coils and discrete inputs; `bit` is one bit of a register (see `bit`); `string` spans `length` registers.',
      },
    ),
    bit: Type.Optional(Type.Integer({ minimum: 0, maximum: 15, description: 'Bit number (0 = least significant) for type `bit`.' })),
    length: Type.Optional(Type.Integer({ minimum: 1, maximum: 125, description: 'Registers of a `string` point.' })),
    byteOrder: Type.Union(
      BYTE_ORDERS.map((t) => Type.Literal(t)),
      {
        default: 'ABCD',
        description:
          'ABCD big-endian; BADC bytes swapped in each word; CDAB words swapped; DCBA little-endian. The 8-letter names spell the same for 64-bit values; a 4-letter name applies its pattern to 64-bit values too.',
      },
    ),
    pollGroup: Type.Optional(Id),
    writable: WritableFlag,
    sim: Type.Optional(SimModel),
    ...PointReporting,
  },
  { additionalProperties: false },
);

export const ModbusConnection = TaggedUnion('type', [
  Type.Object(
    {
      type: Type.Literal('tcp'),
      host: Type.String({ minLength: 1 }),
      port: Type.Integer({ minimum: 1, maximum: 65535, default: 502 }),
      timeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
      retries: Type.Integer({ minimum: 0, maximum: 10, default: 1 }),
      inFlight: Type.Integer({ minimum: 1, maximum: 16, default: 1, description: 'Requests outstanding at once on this connection.' }),
    },
    { additionalProperties: false, description: 'Modbus TCP.' },
  ),
  Type.Object(
    {
      type: Type.Literal('rtu'),
      port: Type.String({ minLength: 1, description: 'Serial device, e.g. /dev/ttyUSB0.' }),
      baudRate: Type.Integer({ minimum: 50, maximum: 4_000_000, default: 9600 }),
      parity: Type.Union([Type.Literal('none'), Type.Literal('even'), Type.Literal('odd')], { default: 'none' }),
      dataBits: Type.Union([Type.Literal(7), Type.Literal(8)], { default: 8 }),
      stopBits: Type.Union([Type.Literal(1), Type.Literal(2)], { default: 1 }),
      timeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
      retries: Type.Integer({ minimum: 0, maximum: 10, default: 1 }),
    },
    { additionalProperties: false, description: 'Modbus RTU on a serial line; all unit ids on the line share it.' },
  ),
  Type.Object(
    {
      type: Type.Literal('sim'),
      seed: Type.Integer({ default: 1, description: 'Seed of the simulator, for reproducible values.' }),
      latencyMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 0, description: 'Simulated response time.' }),
    },
    { additionalProperties: false, description: 'Built-in simulator: a register bank driven by each point `sim` model.' },
  ),
]);

export const ModbusDevice = Type.Object(
  {
    id: Id,
    kind: Type.Literal('modbus'),
    description: Type.Optional(Type.String({ maxLength: 200 })),
    enabled: Type.Boolean({ default: true }),
    connection: ModbusConnection,
    pollIntervalMs: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 1000, description: 'Interval of the default poll group.' }),
    pollGroups: Type.Array(
      Type.Object({ id: Id, intervalMs: Type.Integer({ minimum: 10, maximum: 86_400_000 }) }, { additionalProperties: false }),
      { default: [], description: 'Extra poll groups with their own intervals; points name one in `pollGroup`.' },
    ),
    maxGap: Type.Integer({
      minimum: 0,
      maximum: 124,
      default: 10,
      description: 'Unused registers (or bits ÷ 16) a merged read may bridge between two points.',
    }),
    maxRegistersPerRequest: Type.Integer({ minimum: 1, maximum: 125, default: 125 }),
    reconnectMaxMs: Type.Integer({
      minimum: 250,
      maximum: 600_000,
      default: 30_000,
      description: 'Longest wait between two connection attempts (the wait doubles from 250 ms up to this).',
    }),
    deadUnit: Type.Object(
      {
        afterTimeouts: Type.Integer({ minimum: 1, maximum: 100, default: 3, description: 'Consecutive timed-out requests after which a unit is skipped.' }),
        skipMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 10_000, description: 'How long a dead unit is skipped before one probe request.' }),
      },
      {
        additionalProperties: false,
        default: {},
        description: 'A unit that stops answering is skipped for a while (its points report bad timeout) so it cannot stall the other units of its line.',
      },
    ),
    points: Type.Array(ModbusPoint, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type ModbusPointConfig = Static<typeof ModbusPoint>;
export type ModbusConnectionConfig = Static<typeof ModbusConnection>;
export type ModbusDeviceConfig = Static<typeof ModbusDevice>;
export type ModbusType = (typeof MODBUS_TYPES)[number];
export type ModbusTable = (typeof MODBUS_TABLES)[number];
export type ByteOrder = (typeof BYTE_ORDERS)[number];
