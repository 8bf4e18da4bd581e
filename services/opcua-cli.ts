import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { pino } from 'pino';
import { stringify } from 'yaml';
import type { OpcuaRealConnection } from '../hal/opcua/node-opcua-port.js';
import { ID_PATTERN } from '../hal/schema-common.js';
import type { CliIo } from '../src/cli/program.js';
import { loadConfig } from '../src/config/load.js';
import { OutpostError } from '../src/errors/outpost-error.js';
import { opcuaPkiDir } from './driver-registry.js';

/** One certificate of the client's PKI store, as `outpost opcua certs list` shows it. */
export interface CertEntry {
  readonly status: 'trusted' | 'rejected';
  readonly thumbprint: string;
  readonly subject: string;
  readonly applicationUri: string;
  readonly notAfter: string;
  readonly file: string;
}

const DEFAULT_DATA_DIR = '/var/lib/outpost';

async function pkiFrom(opts: { pki?: string; config?: string }): Promise<string> {
  if (opts.pki) return path.resolve(opts.pki);
  if (opts.config) return opcuaPkiDir((await loadConfig(opts.config)).config.gateway.dataDir);
  return opcuaPkiDir(DEFAULT_DATA_DIR);
}

const folders = (pki: string) => ({ trusted: path.join(pki, 'trusted', 'certs'), rejected: path.join(pki, 'rejected') });

/** Lists the trusted and rejected certificates of a PKI store. */
export async function listCertificates(pki: string): Promise<CertEntry[]> {
  const crypto = await import('node-opcua-crypto');
  const out: CertEntry[] = [];
  for (const [status, dir] of Object.entries(folders(pki)) as Array<['trusted' | 'rejected', string]>) {
    const names = existsSync(dir) ? (await readdir(dir)).filter((n) => /\.(pem|der)$/i.test(n)).sort() : [];
    for (const name of names) {
      const file = path.join(dir, name);
      const raw = await readFile(file);
      const der = name.toLowerCase().endsWith('.pem') ? crypto.convertPEMtoDER(raw.toString('latin1')) : raw;
      const first = crypto.split_der(der)[0] ?? der;
      const info = crypto.exploreCertificate(first);
      const tbs = info.tbsCertificate;
      const uri = tbs.extensions?.subjectAltName?.uniformResourceIdentifier?.[0] ?? '';
      out.push({
        status,
        thumbprint: crypto.makeSHA1Thumbprint(first).toString('hex'),
        subject: tbs.subject.commonName ?? '',
        applicationUri: String(uri),
        notAfter: tbs.validity.notAfter.toISOString(),
        file,
      });
    }
  }
  return out;
}

/** Finds one certificate by thumbprint (or a prefix of at least 8 hex digits) or by file name. */
export function findCertificate(entries: readonly CertEntry[], id: string): CertEntry {
  const key = id.toLowerCase();
  const hits = entries.filter((e) => path.basename(e.file) === id || (key.length >= 8 && /^[0-9a-f]+$/.test(key) && e.thumbprint.startsWith(key)));
  if (hits.length === 1) return hits[0] as CertEntry;
  if (hits.length > 1) throw new OutpostError('OUTPOST_E_OPCUA_CERT_UNKNOWN', `'${id}' matches ${hits.length} certificates; give more of the thumbprint`, { details: { id } });
  throw new OutpostError('OUTPOST_E_OPCUA_CERT_UNKNOWN', `no certificate '${id}' in the trusted or rejected folder (see \`outpost opcua certs list\`)`, { details: { id } });
}

/** Moves a certificate to trusted/ (`trust`) or rejected/ (`reject`); returns the entry and whether it moved. */
export async function moveCertificate(pki: string, id: string, to: 'trusted' | 'rejected'): Promise<{ entry: CertEntry; moved: boolean }> {
  const entry = findCertificate(await listCertificates(pki), id);
  if (entry.status === to) return { entry, moved: false };
  const dir = folders(pki)[to];
  await mkdir(dir, { recursive: true });
  await rename(entry.file, path.join(dir, path.basename(entry.file)));
  return { entry, moved: true };
}

function pointId(prefix: string, browsePath: string[]): string {
  const raw = [prefix, ...browsePath].join('.').replace(/[^A-Za-z0-9_.:-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  const id = raw.slice(0, 64);
  if (!new RegExp(ID_PATTERN).test(id)) throw new OutpostError('OUTPOST_E_OPCUA_BROWSE', 'cannot derive a point id from the browse path', { details: { browsePath } });
  return id;
}

interface BrowseOptions {
  node: string;
  depth: string;
  securityMode: 'None' | 'Sign' | 'SignAndEncrypt';
  securityPolicy: 'None' | 'Basic256Sha256' | 'Aes128_Sha256_RsaOaep' | 'Aes256_Sha256_RsaPss';
  user?: string;
  password?: string;
  pki?: string;
  config?: string;
  emitConfig?: boolean;
  match?: string;
  device: string;
  timeout: string;
}

async function browse(endpoint: string, opts: BrowseOptions, io: CliIo): Promise<number> {
  if (!/^opc\.tcp:\/\//.test(endpoint)) throw new OutpostError('OUTPOST_E_CLI_USAGE', 'the endpoint must start with opc.tcp://', { details: { endpoint } });
  const depth = Number(opts.depth);
  if (!Number.isInteger(depth) || depth < 1 || depth > 10) throw new OutpostError('OUTPOST_E_CLI_USAGE', '--depth must be an integer from 1 to 10', { details: { depth: opts.depth } });
  if (!new RegExp(ID_PATTERN).test(opts.device)) throw new OutpostError('OUTPOST_E_CLI_USAGE', '--device is not a valid id', { details: { device: opts.device } });
  let match: RegExp | null = null;
  try {
    match = opts.match ? new RegExp(opts.match) : null;
  } catch (e) {
    throw new OutpostError('OUTPOST_E_CLI_USAGE', '--match is not a valid regular expression', { cause: e });
  }
  const connection: OpcuaRealConnection = {
    type: 'opcua',
    endpoint,
    securityMode: opts.securityMode,
    securityPolicy: opts.securityPolicy,
    auth: opts.user ? { type: 'userpass', username: opts.user, password: opts.password ?? '' } : { type: 'anonymous' },
    timeoutMs: Number(opts.timeout),
  };
  const { NodeOpcuaPort, loadNodeOpcua } = await import('../hal/opcua/node-opcua-port.js');
  // stdout carries only the tree or the YAML (it is redirected into config.d/); node-opcua's own
  // warnings and certificate messages go to this logger on stderr.
  const logger = pino({ level: io.env['OUTPOST_LOG_LEVEL'] ?? 'warn', base: { service: 'outpost' } }, pino.destination({ fd: 2, sync: true }));
  const mods = await loadNodeOpcua(logger);
  const port = new NodeOpcuaPort(connection, { pkiDir: await pkiFrom(opts), logger, maxItemsPerCall: 500 }, mods);
  await port.connect();
  const points: Array<{ id: string; nodeId: string; description?: string }> = [];
  const lines: string[] = [];
  try {
    const walk = async (nodeId: string, at: number, trail: string[]): Promise<void> => {
      for (const ref of await port.browse(nodeId)) {
        const id = ref.nodeId.toString();
        const name = ref.browseName.name ?? id;
        const cls = mods.ua.NodeClass[ref.nodeClass] ?? String(ref.nodeClass);
        const browsePath = [...trail, name];
        let detail = '';
        if (ref.nodeClass === mods.ua.NodeClass.Variable) {
          const [dv] = await port.read([id]);
          detail = dv && dv.status.startsWith('Good') ? ` = ${JSON.stringify(dv.value)}` : ` (${dv?.status ?? 'unreadable'})`;
          if (!match || match.test(browsePath.join('/'))) points.push({ id: pointId(opts.device, browsePath), nodeId: id, description: browsePath.join('/') });
        }
        lines.push(`${'  '.repeat(at)}${name}  ${id}  ${cls}${detail}`);
        if (at + 1 < depth && (ref.nodeClass === mods.ua.NodeClass.Object || ref.nodeClass === mods.ua.NodeClass.Variable)) await walk(id, at + 1, browsePath);
      }
    };
    await walk(opts.node, 0, []);
  } finally {
    await port.close();
  }
  if (!opts.emitConfig) {
    io.out(lines.join('\n'));
    return 0;
  }
  const seen = new Set<string>();
  const unique = points.filter((p) => (seen.has(p.id) ? false : (seen.add(p.id), true)));
  io.out(
    stringify({
      devices: [
        {
          id: opts.device,
          kind: 'opcua',
          connection: { type: 'opcua', endpoint, securityMode: opts.securityMode, securityPolicy: opts.securityPolicy, auth: opts.user ? { type: 'userpass', username: opts.user, password: '<set me>' } : { type: 'anonymous' } },
          points: unique,
        },
      ],
    }).trimEnd(),
  );
  return 0;
}

/** `outpost opcua …`: the OPC UA client's trust store and a browser that can emit point config. */
export function opcuaCli(program: Command, io: CliIo): void {
  // Errors propagate to runCli, which prints them and returns exit code 2 (bad input) or 1.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander passes untyped action arguments
  const act = <A extends any[]>(fn: (...args: A) => Promise<number>) => async (...args: A): Promise<void> => {
    await fn(...args);
  };
  const ua = program.command('opcua').description('OPC UA client: trust store and address-space browser');
  const pkiOptions = (c: Command) =>
    c
      .option('-c, --config <file>', 'gateway configuration (its gateway.dataDir holds opcua/pki)')
      .option('--pki <dir>', `PKI folder (default ${opcuaPkiDir(DEFAULT_DATA_DIR)})`);
  const certs = ua.command('certs').description('server certificates the OPC UA client trusts or rejected');
  pkiOptions(certs.command('list').description('list trusted and rejected server certificates'))
    .option('--json', 'print JSON')
    .action(act(async (opts: { pki?: string; config?: string; json?: boolean }) => {
      const entries = await listCertificates(await pkiFrom(opts));
      if (opts.json) io.out(JSON.stringify(entries, null, 2));
      else if (entries.length === 0) io.out('no server certificates yet (a rejected one appears here after a first connection attempt)');
      else for (const e of entries) io.out(`${e.status.padEnd(8)}  ${e.thumbprint}  ${e.subject}  ${e.applicationUri}  valid until ${e.notAfter.slice(0, 10)}`);
      return 0;
    }));
  for (const [verb, to] of [['trust', 'trusted'], ['reject', 'rejected']] as const) {
    pkiOptions(certs.command(verb).description(`${verb} a server certificate (thumbprint, a prefix of ≥ 8 hex digits, or file name)`))
      .argument('<id>', 'certificate thumbprint or file name')
      .action(act(async (id: string, opts: { pki?: string; config?: string }) => {
        const { entry, moved } = await moveCertificate(await pkiFrom(opts), id, to);
        io.out(`${moved ? `${to}` : `already ${to}`}: ${entry.thumbprint} ${entry.subject}`);
        return 0;
      }));
  }
  pkiOptions(ua.command('browse').description('print the address space of a server, or point config for its variables'))
    .argument('<endpoint>', 'e.g. opc.tcp://plc.local:4840')
    .option('--node <nodeId>', 'start node', 'i=85')
    .option('--depth <n>', 'levels to browse', '3')
    .addOption(new Option('--security-mode <mode>').choices(['None', 'Sign', 'SignAndEncrypt']).default('None'))
    .addOption(new Option('--security-policy <policy>').choices(['None', 'Basic256Sha256', 'Aes128_Sha256_RsaOaep', 'Aes256_Sha256_RsaPss']).default('None'))
    .option('--user <name>', 'user name (password from --password or $OUTPOST_OPCUA_PASSWORD)')
    .option('--password <password>', 'password')
    .option('--emit-config', 'print a device with one point per variable (YAML) instead of the tree')
    .option('--match <regex>', 'with --emit-config: only variables whose browse path (A/B/C) matches')
    .option('--device <id>', 'with --emit-config: device id and point id prefix', 'opcua1')
    .option('--timeout <ms>', 'transport timeout', '10000')
    .action(act(async (endpoint: string, opts: BrowseOptions) => browse(endpoint, { ...opts, password: opts.password ?? io.env['OUTPOST_OPCUA_PASSWORD'] }, io)));
}
