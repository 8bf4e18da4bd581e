import { OutpostError } from '../errors/outpost-error.js';

/**
 * Parsing of the request target and matching of the API's routes (pure). Never throws anything but
 * OutpostError(OUTPOST_E_API_REQUEST): a malformed target is the client's problem, never a crash.
 */

/** The routes of the local API. */
export type RouteName = 'healthz' | 'metrics' | 'info' | 'points' | 'point' | 'write';

export interface RouteMatch {
  readonly name: RouteName;
  /** The point id of `point` and `write` (percent-decoded). */
  readonly point?: string;
}

/** Methods each route answers; HEAD wherever GET works, OPTIONS (CORS preflight) on /api. */
export const ROUTE_METHODS: Readonly<Record<RouteName, readonly string[]>> = {
  healthz: ['GET', 'HEAD'],
  metrics: ['GET', 'HEAD'],
  info: ['GET', 'HEAD', 'OPTIONS'],
  points: ['GET', 'HEAD', 'OPTIONS'],
  point: ['GET', 'HEAD', 'OPTIONS'],
  write: ['POST', 'OPTIONS'],
};

const bad = (message: string, target: string) =>
  new OutpostError('OUTPOST_E_API_REQUEST', message, { details: { target: target.length > 200 ? `${target.slice(0, 200)}…` : target } });

/**
 * The path of a request target, split into percent-decoded segments. Accepts origin-form (`/a/b?q`)
 * and absolute-form (`http://host/a/b`); refuses anything else, malformed percent-encoding, dot
 * segments (`.`, `..`, also encoded) and control characters.
 */
export function parseTarget(raw: string | undefined): { path: string; segments: string[] } {
  const target = raw ?? '';
  let path: string;
  if (target.startsWith('/')) {
    path = target.split(/[?#]/, 1)[0] as string;
  } else if (/^https?:\/\//i.test(target)) {
    let url: URL;
    try {
      url = new URL(target);
    } catch (e) {
      throw new OutpostError('OUTPOST_E_API_REQUEST', 'request target is not a valid URL', { cause: e, details: { target: target.slice(0, 200) } });
    }
    path = url.pathname;
  } else {
    throw bad('request target must be a path such as /api/points', target);
  }
  const segments: string[] = [];
  for (const raw of path.split('/')) {
    if (raw === '') continue;
    let s: string;
    try {
      s = decodeURIComponent(raw);
    } catch (e) {
      throw new OutpostError('OUTPOST_E_API_REQUEST', 'request path has malformed percent-encoding', { cause: e, details: { target: target.slice(0, 200) } });
    }
    if (s === '.' || s === '..') throw bad('request path must not contain . or .. segments', target);
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    if (/[\u0000-\u001f\u007f]/.test(s)) throw bad('request path must not contain control characters', target);
    segments.push(s);
  }
  return { path, segments };
}

/** The route of a decoded path, or null (404). */
export function matchRoute(segments: readonly string[]): RouteMatch | null {
  const [a, b, c, d] = segments;
  const n = segments.length;
  if (n === 1 && a === 'healthz') return { name: 'healthz' };
  if (n === 1 && a === 'metrics') return { name: 'metrics' };
  if (a !== 'api') return null;
  if (n === 2 && b === 'info') return { name: 'info' };
  if (b !== 'points') return null;
  if (n === 2) return { name: 'points' };
  if (n === 3) return { name: 'point', point: c as string };
  if (n === 4 && d === 'write') return { name: 'write', point: c as string };
  return null;
}
