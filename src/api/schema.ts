import { Type, type Static } from '@sinclair/typebox';

/** Configuration of the local HTTP API (`api:`); composed into src/config/schema.ts. docs/api.md explains the controls. */

/** A host name as it appears in a Host header (no port, no scheme). */
const HostName = Type.String({ pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$', description: 'A DNS name, e.g. `gw-17.plant.example`.' });

/** A browser origin: scheme, host and optional port, no path. */
const Origin = Type.String({ pattern: '^https?://[A-Za-z0-9.\\-\\[\\]:]+$', description: 'e.g. `https://hmi.plant.example` or `http://10.0.0.20:3000`.' });

export const ApiConfig = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    host: Type.String({
      minLength: 1,
      default: '127.0.0.1',
      description: 'Bind address: an IP address or host name. Anything but loopback needs `requireToken: true`, makes every `/api` request need the token and logs a warning at start.',
    }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8480, description: '0 picks a free port.' }),
    requireToken: Type.Boolean({
      default: true,
      description:
        'Writes need `Authorization: Bearer <token>`; the token is created at first start in `<gateway.dataDir>/api-token` (mode 0600). `false` lets any local process write and is refused unless `host` is loopback.',
    }),
    allowedHosts: Type.Array(HostName, {
      default: [],
      maxItems: 64,
      description:
        'Names accepted in the Host header of `/api` requests besides the address the request arrived on (and `localhost` on loopback). Other names are refused (DNS rebinding).',
    }),
    allowedOrigins: Type.Array(Origin, {
      default: [],
      maxItems: 64,
      description: 'Browser origins allowed to call `/api` (CORS). A request with any other `Origin` header is refused.',
    }),
    maxBodyBytes: Type.Integer({ minimum: 256, maximum: 1024 * 1024, default: 16 * 1024, description: 'Larger request bodies are refused with 413.' }),
    requestTimeoutMs: Type.Integer({
      minimum: 1000,
      maximum: 300_000,
      default: 10_000,
      description: 'A request (headers and body) not received within this time is answered 408 and its connection closed; idle connections close too.',
    }),
    maxConnections: Type.Integer({
      minimum: 1,
      maximum: 10_000,
      default: 32,
      description: 'Connections beyond this are closed at once, so a flood cannot exhaust the gateway.',
    }),
  },
  { additionalProperties: false, default: {}, description: 'Local HTTP API: /healthz, /metrics, /api/points (docs/api.md).' },
);

export type ApiConfigType = Static<typeof ApiConfig>;
