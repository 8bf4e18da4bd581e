import { existsSync } from 'node:fs';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { TpmClient, type TpmClientOptions } from './client.js';
import { DeviceTransport } from './transport-device.js';
import { SwtpmTransport } from './transport-swtpm.js';
import type { TpmTransport } from './transport.js';

/** A parsed TPM address: a character device, or swtpm's TCP data port. */
export type TpmAddress = { readonly kind: 'device'; readonly path: string } | { readonly kind: 'swtpm'; readonly host: string; readonly port: number };

/**
 * Parses `--tpm`: `/dev/tpmrm0`, `/dev/tpm0`, `device:<path>`, `swtpm:<host>:<port>`, `swtpm:<port>`,
 * or `auto` (/dev/tpmrm0, else /dev/tpm0).
 */
export function parseTpmAddress(spec: string, exists: (p: string) => boolean = existsSync): TpmAddress {
  const s = spec.trim();
  if (s === 'auto' || s === '') {
    if (exists('/dev/tpmrm0')) return { kind: 'device', path: '/dev/tpmrm0' };
    if (exists('/dev/tpm0')) return { kind: 'device', path: '/dev/tpm0' };
    throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'no TPM device found (/dev/tpmrm0, /dev/tpm0)', { details: { spec } });
  }
  if (s.startsWith('/')) return { kind: 'device', path: s };
  if (s.startsWith('device:/')) return { kind: 'device', path: s.slice('device:'.length) };
  const m = /^swtpm:(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(s);
  if (m) {
    const port = Number(m[2]);
    if (port > 0 && port < 65536) return { kind: 'swtpm', host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
  }
  throw new OutpostError('OUTPOST_E_TPM_SPEC', `cannot parse TPM address "${spec}"`, { details: { spec } });
}

export async function openTransport(address: TpmAddress): Promise<TpmTransport> {
  return address.kind === 'device' ? DeviceTransport.open(address.path) : new SwtpmTransport(address.host, address.port);
}

/** Opens a TPM client on an address (Startup, strict flushing without a resource manager). */
export async function openTpm(spec: string, options: TpmClientOptions = {}): Promise<TpmClient> {
  return TpmClient.open(await openTransport(parseTpmAddress(spec)), options);
}
