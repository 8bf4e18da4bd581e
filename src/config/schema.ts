import { Type, type Static } from '@sinclair/typebox';
import { GpioDevice } from '../../hal/gpio/schema.js';
import { ModbusDevice } from '../../hal/modbus/schema.js';
import { OpcuaDevice } from '../../hal/opcua/schema.js';
import { ID_PATTERN, Id, PointReporting, TaggedUnion } from '../../hal/schema-common.js';
import { SerialDevice } from '../../hal/serial/schema.js';
import { OtaConfig } from '../../ota/schema.js';
import { ApiConfig } from '../api/schema.js';
import { BrokerConfig } from '../broker/schema.js';
import { MqttUpstream } from '../uplink/schema.js';

/** The one configuration schema of Outpost. docs/config.md is generated from it (`npm run docs`). */

const PointValueSchema = Type.Union([Type.Number(), Type.Boolean(), Type.String()]);

export const Device = TaggedUnion('kind', [ModbusDevice, OpcuaDevice, SerialDevice, GpioDevice], {
  description: 'A device and its points; `kind` selects the protocol, `connection.type: sim` its simulator.',
});

export const DerivedPoint = Type.Object(
  {
    id: Id,
    from: Id,
    compute: TaggedUnion('type', [
      Type.Object(
        {
          type: Type.Literal('rate'),
          perMs: Type.Integer({ minimum: 1, default: 1000, description: 'Rate unit: change per this many ms (1000 = per second).' }),
        },
        { additionalProperties: false, description: 'Rate of change of the source point.' },
      ),
      Type.Object(
        {
          type: Type.Literal('window'),
          windowMs: Type.Integer({ minimum: 100, maximum: 86_400_000 }),
          aggregate: Type.Union(['min', 'max', 'mean', 'count', 'sum'].map((a) => Type.Literal(a))),
        },
        { additionalProperties: false, description: 'Tumbling-window aggregate of the good values of the source point, emitted when each window closes.' },
      ),
    ]),
    ...PointReporting,
  },
  { additionalProperties: false },
);

export const Action = Type.Object(
  {
    write: Type.Object({ point: Id, value: PointValueSchema }, { additionalProperties: false }),
  },
  { additionalProperties: false, description: 'Write a value to a writable point (a GPIO output, a Modbus coil or register, an OPC UA variable).' },
);

export const Rule = Type.Object(
  {
    id: Id,
    description: Type.Optional(Type.String({ maxLength: 200 })),
    point: Id,
    when: Type.Union([Type.Literal('above'), Type.Literal('below')], {
      description: '`above`: triggers when the value exceeds `threshold`; `below`: when it falls under it.',
    }),
    threshold: Type.Number(),
    hysteresis: Type.Number({
      minimum: 0,
      default: 0,
      description: 'Releases only once the value is back past threshold ∓ hysteresis, so a noisy value does not chatter.',
    }),
    failSafe: Type.Boolean({
      default: false,
      description: 'Treat a bad reading of the point as a trigger (e.g. a safety sensor that stops answering).',
    }),
    releaseOnStart: Type.Boolean({
      default: false,
      description: 'Run `onRelease` when the first reading after start is in the normal range (outputs start from their safe state otherwise).',
    }),
    allowOverride: Type.Boolean({
      default: false,
      description:
        'While triggered the rule holds the outputs its `onTrigger` writes: writes from the API, the local broker, cloud commands and other rules are refused (OUTPOST_E_RUNTIME_INTERLOCKED). `true` lets them through (logged).',
    }),
    onTrigger: Type.Array(Action, { minItems: 1 }),
    onRelease: Type.Array(Action, { default: [] }),
  },
  { additionalProperties: false },
);

export const Route = Type.Object(
  {
    id: Id,
    route: Type.String({ minLength: 1, description: '`FROM <source> [WHERE <condition>] INTO <sink>`; see docs/routes.md.' }),
    priority: Type.Integer({ minimum: 0, maximum: 9, default: 5, description: '0 is the highest priority.' }),
    ttlSeconds: Type.Integer({ minimum: 1, maximum: 31_536_000, default: 86_400, description: 'Messages older than this are not sent.' }),
  },
  { additionalProperties: false },
);

export const Upstream = TaggedUnion(
  'type',
  [
  Type.Object(
    {
      type: Type.Literal('file'),
      path: Type.Optional(Type.String({ minLength: 1, description: 'Defaults to `<gateway.dataDir>/upstream/outbox.ndjson`.' })),
      maxBytes: Type.Integer({ minimum: 4096, default: 64 * 1024 * 1024, description: 'Rotate to `.1` beyond this size.' }),
    },
    { additionalProperties: false, description: 'Local JSON-lines file: the upstream until a cloud uplink is configured.' },
  ),
  MqttUpstream,
  ],
  { default: { type: 'file' }, description: 'Where `$upstream` routes deliver.' },
);

export const ConfigSchema = Type.Object(
  {
    gateway: Type.Object(
      {
        id: Type.String({ pattern: ID_PATTERN, default: 'outpost', description: 'Name of this gateway in topics and upstream messages.' }),
        dataDir: Type.String({
          minLength: 1,
          maxLength: 4096,
          default: '/var/lib/outpost',
          description: 'Writable state (the data partition). Relative paths are relative to the main config file. Not on /proc, /sys or /dev; created at start.',
        }),
      },
      { additionalProperties: false, default: {}, description: 'Identity and storage of this gateway.' },
    ),
    log: Type.Object(
      {
        level: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace'].map((l) => Type.Literal(l)), { default: 'info' }),
        pretty: Type.Boolean({ default: false, description: 'Human-readable logs instead of JSON lines.' }),
      },
      { additionalProperties: false, default: {}, description: 'Logging: JSON lines on stdout (journald), or pretty for humans.' },
    ),
    api: ApiConfig,
    broker: BrokerConfig,
    health: Type.Object(
      {
        sampleIntervalMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 10_000, description: 'How often system metrics are sampled.' }),
        maxEventLoopLagMs: Type.Integer({ minimum: 10, default: 1000, description: 'Above this p99 event-loop delay /healthz reports unhealthy.' }),
        maxRssMiB: Type.Integer({ minimum: 16, default: 400, description: 'Above this RSS /healthz reports unhealthy.' }),
      },
      { additionalProperties: false, default: {}, description: 'Health and metrics sampling, and the limits /healthz checks.' },
    ),
    devices: Type.Array(Device, { default: [] }),
    derived: Type.Array(DerivedPoint, { default: [], description: 'Points computed from other points (rates, window aggregates).' }),
    rules: Type.Array(Rule, { default: [], description: 'Threshold rules with hysteresis that act locally, without the cloud.' }),
    routes: Type.Array(Route, { default: [], description: 'Where readings and rule events go: the upstream or local broker topics (docs/routes.md).' }),
    upstream: Upstream,
    ota: Type.Optional(OtaConfig),
  },
  { additionalProperties: false, $id: 'https://outpost.dev/schema/config.json', title: 'Outpost configuration' },
);

export type OutpostConfig = Static<typeof ConfigSchema>;
export type DeviceConfig = Static<typeof Device>;
export type DerivedPointConfig = Static<typeof DerivedPoint>;
export type RuleConfig = Static<typeof Rule>;
export type ActionConfig = Static<typeof Action>;
export type RouteConfig = Static<typeof Route>;
export type UpstreamConfig = Static<typeof Upstream>;
