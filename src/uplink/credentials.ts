import { readFile } from 'node:fs/promises';
import { OutpostError } from '../errors/outpost-error.js';
import type { MqttUpstreamConfig } from './schema.js';

/** What the uplink presents to the broker. Buffers hold PEM text. */
export interface MqttCredentials {
  readonly username?: string;
  readonly password?: string;
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/**
 * Where credentials come from, asked again at every connection attempt so rotated files (or a
 * renewed SAS token) are picked up. The file source below covers PEM files and passwords; a TPM
 * identity plugs in as another source, or as a local TLS tunnel the uplink reaches with `mqtt://127.0.0.1`.
 */
export interface CredentialSource {
  load(): Promise<MqttCredentials>;
}

/** Reads the files named in the configuration; every unreadable file is reported by its config path. */
export class FileCredentialSource implements CredentialSource {
  constructor(
    private readonly config: Pick<MqttUpstreamConfig, 'tls' | 'auth'>,
    private readonly defaultUsername?: string,
  ) {}

  async load(): Promise<MqttCredentials> {
    const { tls, auth } = this.config;
    const read = async (field: string, file: string | undefined): Promise<Buffer | undefined> => {
      if (file === undefined) return undefined;
      try {
        return await readFile(file);
      } catch (e) {
        throw new OutpostError('OUTPOST_E_UPLINK_CONFIG', `cannot read upstream.${field}`, { cause: e, details: { field: `upstream.${field}`, file } });
      }
    };
    if ((tls.cert === undefined) !== (tls.key === undefined)) {
      throw new OutpostError('OUTPOST_E_UPLINK_CONFIG', 'upstream.tls.cert and upstream.tls.key go together', { details: { field: 'upstream.tls' } });
    }
    const [ca, cert, key, pw] = await Promise.all([read('tls.ca', tls.ca), read('tls.cert', tls.cert), read('tls.key', tls.key), read('auth.passwordFile', auth.passwordFile)]);
    const password = pw !== undefined ? pw.toString('utf8').trim() : auth.password;
    const username = auth.username ?? (password !== undefined ? this.defaultUsername : undefined) ?? this.defaultUsername;
    return {
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
    };
  }
}
