import { Type, type Static } from '@sinclair/typebox';
import { Id, PointReporting, TaggedUnion, WritableFlag } from '../schema-common.js';
import { SimModel } from '../sim-model.js';

export const OpcuaPoint = Type.Object(
  {
    id: Id,
    nodeId: Type.String({ minLength: 1, description: 'OPC UA node id, e.g. `ns=1;s=Temperature` or `i=2258`.' }),
    samplingIntervalMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 3_600_000, description: 'Overrides the device default.' })),
    queueSize: Type.Integer({ minimum: 1, maximum: 1000, default: 1 }),
    serverDeadband: Type.Optional(
      Type.Union([
        Type.Object({ absolute: Type.Number({ exclusiveMinimum: 0 }) }, { additionalProperties: false }),
        Type.Object({ percent: Type.Number({ exclusiveMinimum: 0, maximum: 100 }) }, { additionalProperties: false }),
      ], { description: 'Data-change filter evaluated by the server (percent needs the variable\'s EURange).' }),
    ),
    writable: WritableFlag,
    sim: Type.Optional(SimModel),
    ...PointReporting,
  },
  { additionalProperties: false },
);

export const OpcuaConnection = TaggedUnion('type', [
  Type.Object(
    {
      type: Type.Literal('opcua'),
      endpoint: Type.String({ pattern: '^opc\\.tcp://', description: 'e.g. opc.tcp://plc.local:4840' }),
      securityMode: Type.Union([Type.Literal('None'), Type.Literal('Sign'), Type.Literal('SignAndEncrypt')], { default: 'None' }),
      securityPolicy: Type.Union(
        [
          Type.Literal('None'),
          Type.Literal('Basic256Sha256'),
          Type.Literal('Aes128_Sha256_RsaOaep'),
          Type.Literal('Aes256_Sha256_RsaPss'),
        ],
        { default: 'None' },
      ),
      auth: TaggedUnion('type', [
        Type.Object({ type: Type.Literal('anonymous') }, { additionalProperties: false }),
        Type.Object(
          { type: Type.Literal('userpass'), username: Type.String({ minLength: 1 }), password: Type.String() },
          { additionalProperties: false },
        ),
      ]),
      timeoutMs: Type.Integer({ minimum: 100, maximum: 120_000, default: 10_000 }),
    },
    { additionalProperties: false, description: 'A real OPC UA server.' },
  ),
  Type.Object(
    { type: Type.Literal('sim'), seed: Type.Integer({ default: 1 }) },
    { additionalProperties: false, description: 'Built-in simulator: variables driven by each point `sim` model.' },
  ),
]);

export const OpcuaDevice = Type.Object(
  {
    id: Id,
    kind: Type.Literal('opcua'),
    description: Type.Optional(Type.String({ maxLength: 200 })),
    enabled: Type.Boolean({ default: true }),
    connection: OpcuaConnection,
    mode: Type.Union([Type.Literal('subscribe'), Type.Literal('poll')], {
      default: 'subscribe',
      description: 'Subscriptions first; `poll` reads all points every `pollIntervalMs`.',
    }),
    publishingIntervalMs: Type.Integer({ minimum: 50, maximum: 3_600_000, default: 1000 }),
    samplingIntervalMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 500 }),
    pollIntervalMs: Type.Integer({ minimum: 50, maximum: 86_400_000, default: 1000 }),
    reconnectMaxMs: Type.Integer({
      minimum: 500,
      maximum: 600_000,
      default: 30_000,
      description: 'Longest wait between two connection attempts (the wait doubles from 500 ms up to this).',
    }),
    maxMonitoredItemsPerCall: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 500,
      description: 'Monitored items created per call; the server\'s own MaxMonitoredItemsPerCall, when it has one, lowers it.',
    }),
    points: Type.Array(OpcuaPoint, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type OpcuaPointConfig = Static<typeof OpcuaPoint>;
export type OpcuaDeviceConfig = Static<typeof OpcuaDevice>;
