import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitForPort } from './net.js';
import { startProcess, type TestProcess } from './process.js';

/** Options of a test broker. `tls` makes the listener TLS (with `requireCertificate` for mTLS). */
export interface BrokerOptions {
  readonly dir: string;
  readonly port?: number;
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string; readonly requireCertificate: boolean };
  readonly aclFile?: string;
  readonly passwordFile?: string;
  readonly extra?: readonly string[];
  /** Keep sessions and queued messages across a restart (a file under `dir`). */
  readonly persistence?: boolean;
}

/**
 * A real mosquitto (Debian's) on 127.0.0.1, started and stopped by a test. `restart` reuses the
 * same port, so clients reconnect to the same URL.
 */
export class TestBroker {
  private proc: TestProcess | null = null;
  port = 0;

  constructor(private readonly o: BrokerOptions) {}

  async start(): Promise<this> {
    if (spawnSync('mosquitto', ['-h'], { stdio: 'ignore' }).error) {
      throw new Error('mosquitto is not installed: apt-get install -y mosquitto (see scripts/apt-packages.txt)');
    }
    this.port ||= this.o.port ?? (await freePort());
    mkdirSync(this.o.dir, { recursive: true });
    const conf = path.join(this.o.dir, 'mosquitto.conf');
    const lines = [
      `listener ${this.port} 127.0.0.1`,
      this.o.passwordFile ? `password_file ${this.o.passwordFile}` : 'allow_anonymous true',
      ...(this.o.passwordFile ? ['allow_anonymous false'] : []),
      // Started as root, mosquitto would drop to its own user and could not read the test's files.
      'user root',
      ...(this.o.persistence ? ['persistence true', `persistence_location ${this.o.dir}/`, 'autosave_interval 0'] : ['persistence false']),
      'max_queued_messages 100000',
      ...(this.o.aclFile ? [`acl_file ${this.o.aclFile}`] : []),
      ...(this.o.tls ? [`cafile ${this.o.tls.ca}`, `certfile ${this.o.tls.cert}`, `keyfile ${this.o.tls.key}`, `require_certificate ${this.o.tls.requireCertificate}`] : []),
      ...(this.o.extra ?? []),
    ];
    writeFileSync(conf, `${lines.join('\n')}\n`);
    this.proc = startProcess('mosquitto', ['-c', conf]);
    await waitForPort(this.port, '127.0.0.1', 10_000);
    return this;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    await p?.stop('SIGTERM');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  output(): string {
    return this.proc?.output() ?? '';
  }

  url(scheme: 'mqtt' | 'mqtts' = this.o.tls ? 'mqtts' : 'mqtt'): string {
    return `${scheme}://127.0.0.1:${this.port}`;
  }
}

/** A test CA, a server certificate for 127.0.0.1/localhost and a client certificate, made with openssl. */
export function makeTestPki(dir: string): { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string } {
  mkdirSync(dir, { recursive: true });
  const f = (n: string) => path.join(dir, n);
  const ssl = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  };
  writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Outpost Test CA']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
  ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=gw-test']);
  ssl(['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2']);
  ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.pem', '-days', '2', '-subj', '/CN=Some Other CA']);
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key'), otherCa: f('other.pem') };
}
