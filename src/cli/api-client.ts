import { readFile } from 'node:fs/promises';
import { apiTokenPath, readApiToken } from '../api/api-token.js';
import { loadConfig } from '../config/load.js';
import { ERROR_CATALOG, type ErrorCode } from '../errors/catalog.js';
import { OutpostError } from '../errors/outpost-error.js';

/**
 * How CLI commands (`outpost points`, `outpost write`) reach a running gateway's local API: its base
 * URL and bearer token. Sources, first found wins:
 *   URL:   --api, $OUTPOST_API, the `api:` section of --config, http://127.0.0.1:8480
 *   token: --token-file, $OUTPOST_API_TOKEN (the token itself), $OUTPOST_API_TOKEN_FILE,
 *          <gateway.dataDir>/api-token of --config, /var/lib/outpost/api-token
 * A token file that is named explicitly must be readable; the default ones are used when they are.
 * Invariant: the token is sent only in the Authorization header, never printed.
 */

export interface ApiTarget {
  readonly base: string;
  readonly token: string | null;
  /** Why no token was found (for the error of a 401 answer). */
  readonly tokenProblem?: string;
}

export interface ApiTargetOptions {
  readonly api?: string;
  readonly config?: string;
  readonly tokenFile?: string;
}

const DEFAULT_TOKEN_FILE = '/var/lib/outpost/api-token';

function checkedBase(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (e) {
    throw new OutpostError('OUTPOST_E_CLI_USAGE', `--api must be an http(s) URL such as http://127.0.0.1:8480, got ${JSON.stringify(raw)}`, { cause: e });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OutpostError('OUTPOST_E_CLI_USAGE', `--api must be an http(s) URL such as http://127.0.0.1:8480, got ${JSON.stringify(raw)}`);
  }
  return raw.replace(/\/$/, '');
}

/** The loopback URL of a configured API (a wildcard bind is reached on loopback). */
function urlOfConfig(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

export async function resolveApiTarget(o: ApiTargetOptions, env: NodeJS.ProcessEnv): Promise<ApiTarget> {
  const loaded = o.config !== undefined ? (await loadConfig(o.config)).config : null;
  const fromEnv = env['OUTPOST_API'] === '' ? undefined : env['OUTPOST_API'];
  const base = checkedBase(o.api ?? fromEnv ?? (loaded ? urlOfConfig(loaded.api.host, loaded.api.port) : 'http://127.0.0.1:8480'));
  if (o.tokenFile !== undefined) return { base, token: await readApiToken(o.tokenFile) };
  const direct = env['OUTPOST_API_TOKEN'];
  if (direct !== undefined && direct !== '') return { base, token: direct.trim() };
  const envFile = env['OUTPOST_API_TOKEN_FILE'];
  if (envFile !== undefined && envFile !== '') return { base, token: await readApiToken(envFile) };
  const file = loaded ? apiTokenPath(loaded.gateway.dataDir) : DEFAULT_TOKEN_FILE;
  try {
    await readFile(file, { flag: 'r' });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { base, token: null, tokenProblem: code === 'EACCES' ? `${file} is not readable by this user (run as the gateway's user or root, or set OUTPOST_API_TOKEN)` : `no token file at ${file} (use --config, --token-file or OUTPOST_API_TOKEN)` };
  }
  return { base, token: await readApiToken(file) };
}

/** Calls the API; a non-2xx answer becomes the gateway's own error (its code and message). */
export async function callApi(target: ApiTarget, fetchImpl: typeof fetch, path: string, init: { method?: string; body?: unknown } = {}): Promise<unknown> {
  const headers: Record<string, string> = {};
  if (target.token !== null) headers['authorization'] = `Bearer ${target.token}`;
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetchImpl(`${target.base}${path}`, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(5000),
    });
  } catch (e) {
    throw new OutpostError('OUTPOST_E_CLI_UNREACHABLE', `cannot reach the gateway API at ${target.base}; is \`outpost run\` running?`, { cause: e });
  }
  const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } } | null;
  if (res.ok) return body;
  const err = body?.error;
  if (err?.code && err.code in ERROR_CATALOG && typeof err.message === 'string') {
    const hint = res.status === 401 && target.tokenProblem ? `; ${target.tokenProblem}` : '';
    throw new OutpostError(err.code as ErrorCode, `${err.message}${hint}`, { details: { ...(err.details ?? {}), url: target.base, status: res.status } });
  }
  throw new OutpostError('OUTPOST_E_CLI_UNREACHABLE', `gateway API answered HTTP ${res.status}`, { details: { url: target.base } });
}

/** A command-line value: JSON numbers and booleans as such, anything else as a string. */
export function parseCliValue(text: string): number | boolean | string {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text) && Number.isFinite(Number(text))) return Number(text);
  return text;
}
