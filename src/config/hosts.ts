import { isIP } from 'node:net';

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** True for an IPv4 or IPv6 address (no brackets) or an RFC 1123 host name (labels of letters, digits and '-', at most 253 characters). */
export function isHostOrIp(host: string): boolean {
  if (isIP(host) !== 0) return true;
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  // A name whose last label is all digits would be a malformed IPv4 address (e.g. 300.1.1.1).
  if (/^\d+$/.test(labels[labels.length - 1] as string)) return false;
  return labels.every((l) => LABEL.test(l));
}
