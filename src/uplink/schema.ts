import { Type, type Static } from '@sinclair/typebox';
import { Id, TaggedUnion } from '../../hal/schema-common.js';

/** Configuration of the MQTT uplink (`upstream.type: mqtt`) and its durable store. See docs/uplink.md. */

const OnFull = Type.Union([Type.Literal('reject-new'), Type.Literal('drop-oldest'), Type.Literal('drop-lowest-priority')], {
  description: '`reject-new`: refuse new records; `drop-oldest`: delete the oldest segment of the same route; `drop-lowest-priority`: delete the oldest segment of the lowest priority class stored (never one above the new record\'s).',
});

export const StoreConfig = Type.Object(
  {
    dir: Type.Optional(Type.String({ minLength: 1, description: 'Defaults to `<gateway.dataDir>/store`.' })),
    maxBytes: Type.Integer({ minimum: 65_536, default: 64 * 1024 * 1024, description: 'Bytes of all segments on disk, never exceeded.' }),
    segmentBytes: Type.Integer({ minimum: 4096, maximum: 256 * 1024 * 1024, default: 1024 * 1024, description: 'A segment is closed past this size; space is reclaimed one whole segment at a time.' }),
    minFreeBytes: Type.Integer({ minimum: 0, default: 16 * 1024 * 1024, description: 'The store never writes when the filesystem would have less free space than this.' }),
    fsyncIntervalMs: Type.Integer({ minimum: 1, maximum: 1000, default: 200, description: 'Group-commit window: records are written and fdatasync\'ed together at most this long after the first arrives.' }),
    onFull: { ...OnFull, default: 'drop-oldest' },
    maxRecordBytes: Type.Integer({ minimum: 1024, maximum: 16 * 1024 * 1024, default: 256 * 1024, description: 'Larger records are refused.' }),
    checkpointIntervalMs: Type.Integer({ minimum: 50, maximum: 60_000, default: 1000, description: 'How often delivery progress is saved; after a crash, records delivered since the last save are sent again (at-least-once).' }),
    quarantineMaxBytes: Type.Integer({ minimum: 4096, default: 8 * 1024 * 1024, description: 'Size of `quarantine.ndjson` before it rotates to `.1`.' }),
    weights: Type.Optional(
      Type.Array(Type.Number({ exclusiveMinimum: 0 }), {
        minItems: 10,
        maxItems: 10,
        description: 'Share of each priority class 0…9 when several have a backlog (default 10,9,…,1: class 9 still gets 1/55 against all nine others).',
      }),
    ),
    routes: Type.Array(
      Type.Object(
        {
          route: Id,
          maxBytes: Type.Optional(Type.Integer({ minimum: 4096, description: 'Bound of this route\'s records on disk.' })),
          onFull: Type.Optional(OnFull),
        },
        { additionalProperties: false },
      ),
      { default: [], description: 'Per-route bound and on-full policy (routes not listed use `onFull` and only the store bound).' },
    ),
  },
  { additionalProperties: false, default: {}, description: 'The durable store-and-forward log on the data partition.' },
);

const Profile = TaggedUnion(
  'type',
  [
    Type.Object(
      {
        type: Type.Literal('json'),
        topicPrefix: Type.String({ pattern: '^[^+#]+$', default: 'outpost', description: 'Topics are `<topicPrefix>/<gateway>/…`.' }),
      },
      { additionalProperties: false, description: 'Plain JSON batches (schema in docs/uplink.md).' },
    ),
    Type.Object(
      {
        type: Type.Literal('sparkplug'),
        groupId: Type.String({ pattern: '^[^/+#]+$', minLength: 1 }),
        edgeNodeId: Type.Optional(Type.String({ pattern: '^[^/+#]+$', minLength: 1, description: 'Defaults to the gateway id.' })),
      },
      { additionalProperties: false, description: 'Sparkplug B (spBv1.0): NBIRTH/NDEATH with bdSeq, DBIRTH/DDATA per device, rebirth on NCMD.' },
    ),
    Type.Object(
      {
        type: Type.Literal('azure'),
        hubHostname: Type.Optional(Type.String({ minLength: 1, description: 'e.g. `myhub.azure-devices.net`; builds the IoT Hub user name unless `auth.username` is set.' })),
        deviceId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Defaults to the gateway id.' })),
      },
      { additionalProperties: false, description: 'Azure IoT Hub topics: `devices/{id}/messages/events/`, direct methods as commands.' },
    ),
  ],
  { default: { type: 'json' }, description: 'Payload and topic layout.' },
);

export const MqttUpstream = Type.Object(
  {
    type: Type.Literal('mqtt'),
    url: Type.String({ pattern: '^(mqtt|mqtts)://[^/]+$', description: '`mqtts://host:8883` (TLS, server verified) or `mqtt://host:1883` (e.g. the local TLS tunnel holding a TPM key).' }),
    clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Defaults to the gateway id (the Azure device id for `azure`).' })),
    protocolVersion: Type.Optional(Type.Union([Type.Literal(4), Type.Literal(5)], { description: 'MQTT 5 by default; 3.1.1 (4) by default for `azure`.' })),
    tls: Type.Object(
      {
        ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM file of the CA(s) that signed the broker certificate; the system CAs otherwise.' })),
        cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM client certificate (mTLS).' })),
        key: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key of `cert`.' })),
        servername: Type.Optional(Type.String({ minLength: 1, description: 'Name checked in the broker certificate when it differs from the URL host.' })),
      },
      { additionalProperties: false, default: {}, description: 'Used with `mqtts://`. The broker certificate is always verified.' },
    ),
    auth: Type.Object(
      {
        username: Type.Optional(Type.String({ minLength: 1 })),
        password: Type.Optional(Type.String({ minLength: 1, description: 'Prefer `passwordFile`.' })),
        passwordFile: Type.Optional(Type.String({ minLength: 1, description: 'File holding the password (or an IoT Hub SAS token), read at every connect.' })),
      },
      { additionalProperties: false, default: {} },
    ),
    keepaliveSeconds: Type.Integer({ minimum: 5, maximum: 1177, default: 30 }),
    connectTimeoutMs: Type.Integer({ minimum: 1000, maximum: 120_000, default: 15_000 }),
    reconnect: Type.Object(
      {
        initialMs: Type.Integer({ minimum: 50, default: 1000 }),
        maxMs: Type.Integer({ minimum: 100, default: 60_000 }),
      },
      { additionalProperties: false, default: {}, description: 'Exponential backoff with jitter between connection attempts.' },
    ),
    profile: Profile,
    batch: Type.Object(
      {
        maxRecords: Type.Integer({ minimum: 1, maximum: 10_000, default: 500 }),
        maxBytes: Type.Integer({ minimum: 256, maximum: 16 * 1024 * 1024, default: 128 * 1024, description: 'Record bytes per message (before compression).' }),
        maxLatencyMs: Type.Integer({ minimum: 0, maximum: 60_000, default: 100, description: 'How long new records may wait to fill a batch when there is no backlog.' }),
      },
      { additionalProperties: false, default: {} },
    ),
    compression: Type.Union([Type.Literal('none'), Type.Literal('gzip')], { default: 'none', description: 'gzip the JSON payloads (json and azure profiles).' }),
    maxMessageBytes: Type.Integer({ minimum: 1024, default: 256 * 1024, description: 'A record whose message would be larger goes to quarantine instead of being sent.' }),
    inflight: Type.Integer({ minimum: 1, maximum: 1000, default: 32, description: 'QoS 1 messages awaiting PUBACK at once (also capped by the broker\'s Receive Maximum).' }),
    drainRateBytesPerSec: Type.Integer({ minimum: 0, default: 0, description: 'Cap on payload bytes per second, so a backlog does not saturate a cellular link (0: no cap).' }),
    maxAttempts: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'A record refused this many times goes to quarantine (at once for a permanent refusal such as Not authorized).' }),
    commands: Type.Boolean({ default: true, description: 'Accept commands from the cloud (see docs/uplink.md).' }),
    commandLimits: Type.Object(
      {
        maxBytes: Type.Integer({ minimum: 256, maximum: 16 * 1024 * 1024, default: 64 * 1024, description: 'A larger command is refused unread (OUTPOST_E_UPLINK_COMMAND); with MQTT 5 the broker is also told not to send larger packets.' }),
        maxDepth: Type.Integer({ minimum: 2, maximum: 256, default: 32, description: 'Deeper JSON nesting is refused.' }),
        maxConcurrent: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: 'Commands running at once; more are refused with OUTPOST_E_UPLINK_COMMAND_BUSY.' }),
        ratePerSec: Type.Integer({ minimum: 0, maximum: 10_000, default: 10, description: 'Commands started per second (burst: twice that; 0: no cap); faster ones are refused with OUTPOST_E_UPLINK_COMMAND_BUSY.' }),
        rememberIds: Type.Integer({ minimum: 16, maximum: 100_000, default: 1024, description: 'Accepted command ids remembered; a repeated id is refused with OUTPOST_E_UPLINK_COMMAND_DUPLICATE.' }),
      },
      { additionalProperties: false, default: {}, description: 'Bounds on cloud commands (docs/security-broker.md).' },
    ),
    store: StoreConfig,
  },
  { additionalProperties: false, description: 'MQTT uplink with a durable store-and-forward log (docs/uplink.md).' },
);

export type MqttUpstreamConfig = Static<typeof MqttUpstream>;
export type StoreConfigT = Static<typeof StoreConfig>;

/** Cross-checks the schema cannot express: every `store.routes[].route` names a configured route, once. */
export function checkUplinkSemantics(upstream: { type: string }, routeIds: ReadonlySet<string>, add: (path: string, message: string) => void): void {
  if (upstream.type !== 'mqtt') return;
  const seen = new Set<string>();
  (upstream as MqttUpstreamConfig).store.routes.forEach((r, i) => {
    if (!routeIds.has(r.route)) add(`upstream.store.routes[${i}].route`, `no route '${r.route}' is configured (known: ${[...routeIds].join(', ') || 'none'})`);
    if (seen.has(r.route)) add(`upstream.store.routes[${i}].route`, `route '${r.route}' is listed twice`);
    seen.add(r.route);
  });
}
