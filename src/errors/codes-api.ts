/** Error codes of the local HTTP API (docs/api.md, docs/security-api.md). Each answers one HTTP status. */
export const API_CODES = {
  OUTPOST_E_API_NOT_FOUND: { area: 'api', summary: 'No API route has this path (HTTP 404).', input: true },
  OUTPOST_E_API_METHOD: { area: 'api', summary: 'The route does not answer this method (HTTP 405 with `Allow`), or the method is unknown (HTTP 501).', input: true },
  OUTPOST_E_API_TOO_LARGE: { area: 'api', summary: 'The request body is over `api.maxBodyBytes` (HTTP 413) or its headers are too large (HTTP 431).', input: true },
  OUTPOST_E_API_CONTENT_TYPE: { area: 'api', summary: 'A write was not sent as `Content-Type: application/json` (HTTP 415).', input: true },
  OUTPOST_E_API_TIMEOUT: { area: 'api', summary: 'The request was not received within `api.requestTimeoutMs` (HTTP 408).', input: true },
  OUTPOST_E_API_HOST: { area: 'api', summary: 'The Host header names neither this gateway\'s address nor a name in `api.allowedHosts` (HTTP 403; DNS rebinding).', input: true },
  OUTPOST_E_API_ORIGIN: { area: 'api', summary: 'The request came from a browser page whose origin is not in `api.allowedOrigins` (HTTP 403; CSRF).', input: true },
  OUTPOST_E_API_UNAUTHORIZED: { area: 'api', summary: 'The request needs `Authorization: Bearer <token>` with the token of `<dataDir>/api-token` (HTTP 401).', input: true },
  OUTPOST_E_API_TOKEN: { area: 'api', summary: 'The API token file cannot be created or read, is not a token, or others can read it.', input: false },
} as const;
