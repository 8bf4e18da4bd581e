import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

/**
 * Pure checks of the local API's request headers: who may call it (Host, Origin, bearer token) and
 * how (Content-Type). No I/O; the server decides what to answer.
 */

/**
 * Canonical form of an IP address for comparisons: IPv6 compressed and lower-case (the WHATWG URL
 * serialisation), IPv4-mapped IPv6 as dotted IPv4; null when not an IP address.
 */
export function canonicalAddress(address: string): string | null {
  const a = address.replace(/^\[|\]$/g, '');
  const kind = isIP(a);
  if (kind === 4) return a;
  if (kind !== 6) return null;
  const v6 = new URL(`http://[${a}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
  if (!mapped) return v6;
  const hi = parseInt(mapped[1] as string, 16);
  const lo = parseInt(mapped[2] as string, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for an IPv4 loopback (127/8), ::1, or an IPv4-mapped loopback. */
export function isLoopbackAddress(address: string): boolean {
  const a = canonicalAddress(address);
  return a !== null && (a === '::1' || (isIP(a) === 4 && a.startsWith('127.')));
}

/** True when a configured bind address (`api.host`) only accepts local connections. */
export function isLoopbackHost(host: string): boolean {
  return host.toLowerCase() === 'localhost' || isLoopbackAddress(host);
}

/** The host name of a Host header (`name`, `name:port`, `1.2.3.4:80`, `[::1]:80`), lower-case; null when malformed. */
export function hostOfHeader(value: string | undefined): string | null {
  if (value === undefined || value.length === 0 || value.length > 260) return null;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/.exec(value);
  if (!m) return null;
  if (m[3] !== undefined && Number(m[3]) > 65535) return null;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? m[1].toLowerCase() : null;
  const name = (m[2] as string).toLowerCase().replace(/\.$/, '');
  return name.length > 0 ? name : null;
}

/**
 * Whether a Host header names this gateway: the address the connection arrived on, a name in
 * `allowedHosts`, or `localhost` / a loopback address for a loopback connection. Any other name is
 * refused: a DNS-rebinding page reaches the API under its own name.
 */
export function hostAllowed(header: string | undefined, localAddress: string | undefined, allowedHosts: readonly string[]): boolean {
  const host = hostOfHeader(header);
  if (host === null) return false;
  if (allowedHosts.some((h) => h.toLowerCase() === host)) return true;
  if (isIP(host) !== 0) {
    if (localAddress !== undefined && canonicalAddress(host) === canonicalAddress(localAddress)) return true;
    return localAddress !== undefined && isLoopbackAddress(localAddress) && isLoopbackAddress(host);
  }
  return host === 'localhost' && localAddress !== undefined && isLoopbackAddress(localAddress);
}

/** Whether an Origin header may call the API: absent (not a browser, or same-origin GET), or listed exactly. */
export function originAllowed(origin: string | undefined, allowedOrigins: readonly string[]): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase();
  return allowedOrigins.some((a) => a.toLowerCase() === o);
}

/** `application/json`, optionally with `charset=utf-8`: what a browser cannot send cross-origin without a preflight. */
export function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const [type, ...params] = value.split(';').map((s) => s.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => p === '' || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

/**
 * Whether an /api request needs the bearer token: writes unless `requireToken` is off (allowed on a
 * loopback bind only), and every request when the API is bound to a non-loopback address.
 */
export function tokenRequired(kind: 'read' | 'write', o: { requireToken: boolean; loopbackBind: boolean }): boolean {
  if (!o.loopbackBind) return true;
  return kind === 'write' && o.requireToken;
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
  return m ? (m[1] as string) : null;
}

/**
 * Compares a presented token with the expected one in time independent of where they differ and of
 * the presented length: both are hashed to 32 bytes first, then compared with timingSafeEqual.
 */
export function tokensEqual(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}
