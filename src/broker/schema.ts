import { Type, type Static } from '@sinclair/typebox';
import { filterProblem } from './acl.js';
import { PASSWORD_HASH_PATTERN } from './passwords.js';

/** Configuration of the embedded local broker (`broker:`); composed into src/config/schema.ts. See docs/broker.md. */

const Pattern = Type.String({
  minLength: 1,
  maxLength: 1024,
  description: 'An MQTT topic filter (`+`, `#`); `{prefix}` is `broker.topicPrefix`, `{username}` the user.',
});

export const USERNAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$';

export const BrokerUser = Type.Object(
  {
    username: Type.String({ pattern: USERNAME_PATTERN, description: 'Letters, digits, `_ . @ -`; also the CN of the client certificate that authenticates as this user.' }),
    passwordHash: Type.Optional(
      Type.String({ pattern: PASSWORD_HASH_PATTERN, description: 'scrypt hash printed by `outpost broker passwd`. Without it the user can only log in with a client certificate (`broker.tls`).' }),
    ),
    publish: Type.Array(Pattern, {
      default: [],
      description: 'Topics the user may publish on. Commands need `{prefix}/commands/write/<point>` (or `{prefix}/commands/write/+`); other `{prefix}/…` topics stay the gateway\'s.',
    }),
    subscribe: Type.Optional(
      Type.Array(Pattern, {
        description: 'Topic filters the user may subscribe to (a filter must lie inside one of them). Default: what anonymous clients may read, plus `{prefix}/commands/result/#` and `{prefix}/replies/{username}/#`.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const BrokerLimits = Type.Object(
  {
    maxPacketBytes: Type.Integer({ minimum: 1024, maximum: 268_435_455, default: 128 * 1024, description: 'A client announcing a larger MQTT packet is disconnected before the packet is read.' }),
    maxConnections: Type.Integer({ minimum: 1, maximum: 10_000, default: 64, description: 'Connections beyond this (all listeners together) are closed at once.' }),
    connectTimeoutMs: Type.Integer({ minimum: 500, maximum: 120_000, default: 10_000, description: 'A connection that has not sent CONNECT by then is closed.' }),
    maxRetainedMessages: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1000, description: 'Retained messages clients may store (the gateway\'s own readings and status do not count). A new one beyond is refused.' }),
    maxRetainedBytes: Type.Integer({ minimum: 0, default: 4 * 1024 * 1024, description: 'Topic and payload bytes of the retained messages clients may store.' }),
    maxInflight: Type.Integer({ minimum: 1, maximum: 65_535, default: 16, description: 'QoS 2 messages one client may have awaiting PUBREL; beyond, the client is disconnected.' }),
    maxSubscriptions: Type.Integer({ minimum: 1, maximum: 100_000, default: 100, description: 'Topic filters one client may hold; further ones are refused in the SUBACK.' }),
    publishRatePerSec: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 100, description: 'PUBLISH packets per second one client may send (burst: one second\'s worth); a faster client is slowed down (the broker stops reading its socket).' }),
    byteRatePerSec: Type.Integer({ minimum: 1024, default: 1024 * 1024, description: 'Bytes per second one client may send, enforced the same way.' }),
    maxPendingCommands: Type.Integer({ minimum: 1, maximum: 1000, default: 8, description: 'Write commands running at once; further ones are answered OUTPOST_E_BROKER_BUSY and not executed.' }),
    maxCommandBytes: Type.Integer({ minimum: 64, maximum: 1024 * 1024, default: 16 * 1024, description: 'A larger write command is refused (OUTPOST_E_BROKER_COMMAND).' }),
  },
  { additionalProperties: false, default: {}, description: 'Resource limits per client and for the broker; see docs/security-broker.md.' },
);

export const BrokerTls = Type.Object(
  {
    host: Type.Optional(Type.String({ description: 'Bind address of the TLS listener; `broker.host` by default.' })),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8883, description: '0 picks a free port.' }),
    cert: Type.String({ minLength: 1, description: 'PEM server certificate (file).' }),
    key: Type.String({ minLength: 1, description: 'PEM private key of `cert` (file).' }),
    ca: Type.Optional(Type.String({ minLength: 1, description: 'PEM CA(s) that sign client certificates (file); needed unless `clientCerts` is `off`.' })),
    clientCerts: Type.Union([Type.Literal('required'), Type.Literal('optional'), Type.Literal('off')], {
      default: 'required',
      description: '`required`: a connection without a certificate signed by `ca` is refused in the handshake; `optional`: clients without one log in with a password or as anonymous.',
    }),
  },
  { additionalProperties: false, description: 'A second listener with TLS; a verified client certificate whose CN names a user logs in as that user without a password.' },
);

export const BrokerConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    host: Type.String({ default: '127.0.0.1', description: 'Bind address of the plain listener; keep loopback (use `tls` for other hosts).' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 1883, description: '0 picks a free port.' }),
    topicPrefix: Type.String({ pattern: '^[^+#${}\\u0000][^+#{}\\u0000]*$', maxLength: 128, default: 'outpost', description: 'First level(s) of every gateway topic (see docs/broker.md).' }),
    publishReadings: Type.Boolean({ default: true, description: 'Publish every reading on `<prefix>/readings/<device>/<point>`.' }),
    retainReadings: Type.Boolean({ default: true, description: 'Retain the last reading of each point, so a new subscriber gets it at once.' }),
    allowWrites: Type.Boolean({ default: true, description: 'Accept write commands on `<prefix>/commands/write/<point>` from users whose `publish` list allows the topic.' }),
    anonymous: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: 'Accept clients that send no username.' }),
        publish: Type.Array(Pattern, { default: [], description: 'Topics anonymous clients may publish on (none by default: read-only).' }),
        subscribe: Type.Optional(
          Type.Array(Pattern, {
            description: 'Filters anonymous clients may subscribe to. Default: `{prefix}/readings/#`, `{prefix}/events/#`, `{prefix}/status` and the topics of `$broker(…)` routes.',
          }),
        ),
      },
      { additionalProperties: false, default: {}, description: 'Clients without a username: read-only by default.' },
    ),
    users: Type.Array(BrokerUser, { default: [], maxItems: 1000, description: 'Local applications that log in (password and/or client certificate), each with its topic permissions.' }),
    onDenied: Type.Union([Type.Literal('ignore'), Type.Literal('disconnect')], {
      default: 'ignore',
      description: 'A refused PUBLISH is dropped (and acknowledged, as MQTT 3.1.1 has no refusal code), or the client is disconnected. Either way it is counted in /metrics.',
    }),
    limits: BrokerLimits,
    tls: Type.Optional(BrokerTls),
  },
  { additionalProperties: false, default: {}, description: 'Embedded MQTT broker for local applications (docs/broker.md).' },
);

export type BrokerConfigT = Static<typeof BrokerConfig>;
export type BrokerUserT = Static<typeof BrokerUser>;
export type BrokerLimitsT = Static<typeof BrokerLimits>;

/** Cross-checks the schema cannot express: unique usernames, valid topic filters, TLS files that go together, distinct ports. */
export function checkBrokerSemantics(b: BrokerConfigT, apiPort: number | null, add: (path: string, message: string) => void): void {
  if (!b.enabled) return;
  const filters = (list: readonly string[] | undefined, at: string) =>
    list?.forEach((p, i) => {
      const problem = filterProblem(p.replaceAll('{prefix}', 'p').replaceAll('{username}', 'u'));
      if (problem) add(`${at}[${i}]`, `topic filter ${problem}`);
    });
  filters(b.anonymous.publish, 'broker.anonymous.publish');
  filters(b.anonymous.subscribe, 'broker.anonymous.subscribe');
  const seen = new Map<string, number>();
  b.users.forEach((u, i) => {
    const prev = seen.get(u.username);
    if (prev !== undefined) add(`broker.users[${i}].username`, `user '${u.username}' is already declared at broker.users[${prev}]`);
    else seen.set(u.username, i);
    filters(u.publish, `broker.users[${i}].publish`);
    filters(u.subscribe, `broker.users[${i}].subscribe`);
    if (u.passwordHash === undefined && (b.tls === undefined || b.tls.clientCerts === 'off')) {
      add(`broker.users[${i}]`, 'a user without passwordHash can only log in with a client certificate: configure broker.tls with clientCerts');
    }
  });
  if (b.tls) {
    if (b.tls.clientCerts !== 'off' && b.tls.ca === undefined) add('broker.tls.ca', `clientCerts: ${b.tls.clientCerts} needs the CA that signs client certificates`);
    if (b.tls.port !== 0 && b.tls.port === b.port) add('broker.tls.port', `port ${b.tls.port} is also broker.port`);
    if (b.tls.port !== 0 && b.tls.port === apiPort) add('broker.tls.port', `port ${b.tls.port} is also api.port`);
  }
  if (b.limits.maxCommandBytes > b.limits.maxPacketBytes) add('broker.limits.maxCommandBytes', `must not exceed limits.maxPacketBytes (${b.limits.maxPacketBytes})`);
}
