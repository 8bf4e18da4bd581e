import { createServer, isIP, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { OutpostError } from '../../src/errors/outpost-error.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Parses `host:port` or `[v6]:port`; port 0 is allowed only where `allowZero`. */
export function parseHostPort(s: string, what: string, allowZero = false): HostPort {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port <= 65535) || (port === 0 && !allowZero)) {
    throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', `${what} must be host:port, got "${s}"`, { details: { [what]: s } });
  }
  return { host: m[1] ?? m[2] ?? '', port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

export interface TunnelOptions {
  readonly listen: HostPort;
  readonly remote: HostPort;
  /** TSS2 PRIVATE KEY PEM (needs the tpm2 OpenSSL provider in this process) or any PEM key. */
  readonly keyPem: string;
  /** Device certificate followed by its chain. */
  readonly certChainPem: string;
  /** CA certificates that sign the broker's server certificate; Node's defaults when absent. */
  readonly caPem?: string;
  readonly servername?: string;
  readonly logger: Logger;
  readonly maxConnections?: number;
  readonly handshakeTimeoutMs?: number;
}

/**
 * A loopback TCP listener that forwards each connection over mutual TLS to a remote broker,
 * authenticating with the device key held in the TPM. Local clients (the MQTT uplink) speak plain
 * MQTT to it; nothing secret ever leaves the TPM or this process.
 * Invariants: listens on loopback only; the TLS context (and so the TPM key) is loaded once at
 * start, which fails fast on a key the TPM cannot load or a certificate that is not for that key;
 * a local connection is forwarded only after the remote handshake succeeded, and each side is
 * destroyed when the other ends; at most `maxConnections` tunnels at once.
 */
export class IdentityTunnel {
  private server: Server | undefined;
  private context: SecureContext | undefined;
  private readonly open = new Set<Socket>();
  private readonly logger: Logger;

  constructor(private readonly options: TunnelOptions) {
    this.logger = options.logger.child({ component: 'identity-tunnel' });
    if (!isLoopback(options.listen.host)) {
      throw new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', 'the tunnel accepts plain TCP, so it listens on loopback only', { details: { listen: options.listen.host } });
    }
  }

  async start(): Promise<HostPort> {
    try {
      this.context = createSecureContext({
        key: this.options.keyPem,
        cert: this.options.certChainPem,
        ...(this.options.caPem ? { ca: this.options.caPem } : {}),
        minVersion: 'TLSv1.2',
      });
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new OutpostError(
        'OUTPOST_E_IDENTITY_TUNNEL',
        code === 'ERR_OSSL_X509_KEY_VALUES_MISMATCH'
          ? 'the device certificate is not for the key in this TPM'
          : 'cannot load the device key and certificate (is the tpm2 OpenSSL provider loaded, and is the key file from this TPM?)',
        { cause: e, details: { opensslCode: code } },
      );
    }
    const server = createServer({ pauseOnConnect: true }, (s) => this.accept(s));
    server.maxConnections = this.options.maxConnections ?? 16;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e) => reject(new OutpostError('OUTPOST_E_IDENTITY_TUNNEL', 'cannot listen on the tunnel address', { cause: e, details: { ...this.options.listen } })));
      server.listen(this.options.listen.port, this.options.listen.host, () => resolve());
    });
    this.server = server;
    const addr = server.address() as { address: string; port: number };
    this.logger.info({ listen: `${addr.address}:${addr.port}`, remote: `${this.options.remote.host}:${this.options.remote.port}` }, 'tunnel listening');
    return { host: addr.address, port: addr.port };
  }

  private accept(local: Socket): void {
    const started = performance.now();
    this.open.add(local);
    const remote = tlsConnect({
      host: this.options.remote.host,
      port: this.options.remote.port,
      servername: this.options.servername ?? (isIP(this.options.remote.host) ? undefined : this.options.remote.host),
      secureContext: this.context,
      minVersion: 'TLSv1.2',
    });
    this.open.add(remote);
    const timer = setTimeout(() => remote.destroy(new Error('TLS handshake timed out')), this.options.handshakeTimeoutMs ?? 15_000);
    let up = false;
    const close = () => {
      clearTimeout(timer);
      local.destroy();
      remote.destroy();
      this.open.delete(local);
      this.open.delete(remote);
    };
    remote.once('secureConnect', () => {
      clearTimeout(timer);
      up = true;
      this.logger.info({ handshakeMs: Math.round(performance.now() - started), protocol: remote.getProtocol() }, 'tunnel connected');
      local.pipe(remote);
      remote.pipe(local);
      local.resume();
    });
    remote.on('error', (e: NodeJS.ErrnoException) => {
      // with TLS 1.3 the client finishes first: the broker's verdict on our certificate can arrive as an alert after secureConnect
      const refused = !up || /^ERR_SSL_.*ALERT/.test(e.code ?? '');
      this.logger.warn({ code: e.code, reason: e.message, afterHandshake: up }, refused ? 'broker refused the tunnel' : 'tunnel remote side failed');
      close();
    });
    local.on('error', () => close());
    remote.on('close', close);
    local.on('close', () => {
      if (up) this.logger.debug({ bytesIn: remote.bytesRead, bytesOut: remote.bytesWritten }, 'tunnel closed');
      close();
    });
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    this.open.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
