import { Type, type Static } from '@sinclair/typebox';
import { Id, PointReporting, TaggedUnion } from '../schema-common.js';

export const SerialPoint = Type.Object(
  {
    id: Id,
    match: Type.String({ minLength: 1, description: 'Regular expression a frame must match to carry this point, e.g. `^\\$GPGGA,`.' }),
    field: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 255, description: 'Comma-separated field of the frame (0 = the sentence name), NMEA style.' }),
    ),
    group: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 32, description: 'Capture group of `match` holding the value (instead of `field`).' }),
    ),
    type: Type.Union([Type.Literal('number'), Type.Literal('integer'), Type.Literal('string'), Type.Literal('boolean')], {
      default: 'number',
      description: '`integer` accepts decimal or 0x-prefixed hex and rejects fractions; `boolean` accepts 1/0, true/false, on/off, yes/no, A/V.',
    }),
    transaction: Type.Optional(
      Type.String({ description: 'Id of the transaction whose response carries this point; it reports bad(timeout) when the response does not come.' }),
    ),
    ...PointReporting,
  },
  { additionalProperties: false },
);

export const SerialFraming = TaggedUnion('type', [
  Type.Object(
    {
      type: Type.Literal('delimiter'),
      delimiter: Type.String({ minLength: 1, default: '\r\n', description: 'Frame terminator; YAML escapes such as "\\r\\n" apply.' }),
      maxLength: Type.Integer({ minimum: 1, maximum: 65536, default: 1024 }),
    },
    { additionalProperties: false },
  ),
  Type.Object({ type: Type.Literal('fixed'), length: Type.Integer({ minimum: 1, maximum: 65536 }) }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal('regex'),
      pattern: Type.String({ minLength: 1, description: 'Each match of this expression in the byte stream is one frame.' }),
      maxLength: Type.Integer({ minimum: 1, maximum: 65536, default: 4096 }),
    },
    { additionalProperties: false },
  ),
]);

export const SerialConnection = TaggedUnion('type', [
  Type.Object(
    {
      type: Type.Literal('serial'),
      path: Type.String({ minLength: 1, description: 'e.g. /dev/ttyUSB0' }),
      baudRate: Type.Integer({ minimum: 50, maximum: 4_000_000, default: 9600 }),
      parity: Type.Union([Type.Literal('none'), Type.Literal('even'), Type.Literal('odd')], { default: 'none' }),
      dataBits: Type.Union([Type.Literal(7), Type.Literal(8)], { default: 8 }),
      stopBits: Type.Union([Type.Literal(1), Type.Literal(2)], { default: 1 }),
    },
    { additionalProperties: false },
  ),
  Type.Object(
    {
      type: Type.Literal('sim'),
      profile: Type.Literal('gps', { default: 'gps', description: 'A GPS receiver emitting NMEA GGA and RMC sentences.' }),
      intervalMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000 }),
      seed: Type.Integer({ default: 1 }),
      corruptEvery: Type.Integer({ minimum: 0, default: 0, description: 'Corrupt the checksum of every Nth sentence (0 = never).' }),
    },
    { additionalProperties: false },
  ),
]);

export const SerialTransaction = Type.Object(
  {
    id: Id,
    send: Type.String({ minLength: 1, description: 'Request bytes sent to the device (latin1; YAML escapes such as "\\r\\n" apply).' }),
    expect: Type.Optional(
      Type.String({ minLength: 1, description: 'Regular expression the response frame must match; other frames meanwhile are handled as unsolicited.' }),
    ),
    intervalMs: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 1000, description: 'How often the request is sent.' }),
    timeoutMs: Type.Integer({ minimum: 10, maximum: 60_000, default: 1000, description: 'How long to wait for the response frame.' }),
  },
  { additionalProperties: false, description: 'A request/response exchange; one is outstanding on a port at a time.' },
);

export const SerialDevice = Type.Object(
  {
    id: Id,
    kind: Type.Literal('serial'),
    description: Type.Optional(Type.String({ maxLength: 200 })),
    enabled: Type.Boolean({ default: true }),
    connection: SerialConnection,
    framing: Type.Optional(SerialFraming),
    checksum: Type.Union([Type.Literal('none'), Type.Literal('nmea')], {
      default: 'none',
      description: '`nmea`: frames must end in `*hh` with the XOR of the bytes between `$` and `*`; others are counted and dropped.',
    }),
    reopenMaxMs: Type.Integer({
      minimum: 500,
      maximum: 600_000,
      default: 30_000,
      description: 'Longest wait between two attempts to reopen a vanished port (the wait doubles from 500 ms up to this).',
    }),
    transactions: Type.Array(SerialTransaction, {
      default: [],
      description: 'Polled request/response exchanges (for devices that only answer when asked).',
    }),
    points: Type.Array(SerialPoint, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type SerialTransactionConfig = Static<typeof SerialTransaction>;
export type SerialPointConfig = Static<typeof SerialPoint>;
export type SerialFramingConfig = Static<typeof SerialFraming>;
export type SerialDeviceConfig = Static<typeof SerialDevice>;
