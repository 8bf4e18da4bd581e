import { format } from 'node:util';
import type { Logger } from 'pino';
import type * as CM from 'node-opcua-certificate-manager';
import type * as UA from 'node-opcua-client';
import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import type { PointValue } from '../types.js';
import type { MonitorItem, OpcuaDataValue, OpcuaPort, OpcuaSubscriptionHandle } from './port.js';
import type { OpcuaDeviceConfig } from './schema.js';

export type OpcuaRealConnection = Extract<OpcuaDeviceConfig['connection'], { type: 'opcua' }>;

/** node-opcua's client and certificate manager modules, imported lazily (they cost tens of MiB). */
export interface NodeOpcuaModules {
  readonly ua: typeof UA;
  readonly cm: typeof CM;
}

/**
 * Sends node-opcua's own output (warnings, errors, certificate diagnostics it prints with console.log)
 * to `logger` instead of stdout, where it would break journald's JSON lines and a command's output
 * (`outpost opcua browse --emit-config > config.d/x.yaml`). node-opcua-debug keeps these printers as
 * module state: the last logger set wins, which is one per process in practice.
 */
async function routeNodeOpcuaOutput(logger: Logger): Promise<void> {
  const mod = await import('node-opcua-debug');
  const debug = ((mod as { default?: typeof mod }).default ?? mod) as typeof mod;
  const log = logger.child({ library: 'node-opcua' });
  const printer = (level: 'debug' | 'warn' | 'error') => (context?: unknown, ...args: unknown[]) => {
    const at = context as { filename?: string; callerline?: number } | undefined;
    // eslint-disable-next-line no-control-regex -- strip terminal colours from the library's text
    const text = format(...args).replace(/\u001b\[[0-9;]*m/g, '').trim();
    log[level]({ source: at?.filename ? `${at.filename}:${at.callerline ?? 0}` : undefined, text }, 'node-opcua message');
  };
  debug.setWarningLogger(printer('warn'));
  debug.setErrorLogger(printer('error'));
  debug.setDebugLogger(printer('debug'));
  debug.setTraceLogger(printer('debug'));
}

/** Imports node-opcua; with a logger, its console output goes there first (see routeNodeOpcuaOutput). */
export async function loadNodeOpcua(logger?: Logger): Promise<NodeOpcuaModules> {
  if (logger) await routeNodeOpcuaOutput(logger);
  const [ua, cm] = await Promise.all([import('node-opcua-client'), import('node-opcua-certificate-manager')]);
  return { ua: ((ua as { default?: typeof UA }).default ?? ua) as typeof UA, cm: ((cm as { default?: typeof CM }).default ?? cm) as typeof CM };
}

export interface NodeOpcuaPortOptions {
  /** The client's PKI store (own certificate and key, trusted/ and rejected/ server certificates). */
  readonly pkiDir: string;
  readonly logger: Logger;
  /** Upper bound of monitored items per CreateMonitoredItems call (the server's own limit, when it has one, wins if lower). */
  readonly maxItemsPerCall: number;
}

/** A PKI store for an Outpost client: unknown server certificates are rejected (and filed under rejected/). */
export async function createCertificateManager(mods: NodeOpcuaModules, pkiDir: string): Promise<CM.OPCUACertificateManager> {
  const manager = new mods.cm.OPCUACertificateManager({ rootFolder: pkiDir, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: true, name: 'outpost' });
  await manager.initialize();
  return manager;
}

/** Rejects with an Error 'timed out after N ms' when `p` does not settle in time (p keeps running; the caller cleans up). */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

function settle<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([p.catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref())]);
}

/** Converts a variant's value to a point value: numbers, booleans, strings; 64-bit integers as numbers, dates as ISO strings. */
export function variantToPointValue(mods: NodeOpcuaModules, v: UA.Variant | null | undefined): PointValue | null {
  if (!v || v.value === null || v.value === undefined) return null;
  const { DataType } = mods.ua;
  const x: unknown = v.value;
  if ((v.dataType === DataType.Int64 || v.dataType === DataType.UInt64) && Array.isArray(x) && x.length === 2) {
    const [hi, lo] = x as [number, number];
    return hi * 2 ** 32 + (lo >>> 0);
  }
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'string') return x;
  if (x instanceof Date) return x.toISOString();
  if (typeof x === 'object' && x !== null && 'text' in x) return String((x as { text: unknown }).text ?? '');
  return JSON.stringify(x);
}

/**
 * OpcuaPort over node-opcua: one client and one session per `connect()`.
 * Invariants: a fresh client per connect (node-opcua's own reconnection is not used: the driver
 * owns retries and backoff, so a server restart always ends in a new session with new
 * subscriptions); the client certificate is created once in `pkiDir/own` and reused; a server
 * certificate that is not in `pkiDir/trusted` fails the connect with OUTPOST_E_OPCUA_UNTRUSTED and
 * is filed under `pkiDir/rejected`; disconnect listeners fire once per lost session, never for
 * our own `close()`; monitored items are created in chunks no larger than the server accepts.
 */
export class NodeOpcuaPort implements OpcuaPort {
  private client: UA.OPCUAClient | null = null;
  private session: UA.ClientSession | null = null;
  private open = false;
  private readonly listeners: Array<() => void> = [];
  private readonly dataTypes = new Map<string, UA.DataType>();
  private perCall = 0;
  /** CreateMonitoredItems calls made by the last `subscribe` (diagnostics, tests). */
  lastSubscribeCalls = 0;

  constructor(
    private readonly connection: OpcuaRealConnection,
    private readonly options: NodeOpcuaPortOptions,
    private readonly mods: NodeOpcuaModules,
  ) {}

  async connect(): Promise<void> {
    await this.close();
    const { ua } = this.mods;
    const c = this.connection;
    const manager = await createCertificateManager(this.mods, this.options.pkiDir);
    const client = ua.OPCUAClient.create({
      applicationName: 'Outpost',
      clientName: 'outpost',
      securityMode: ua.MessageSecurityMode[c.securityMode],
      securityPolicy: ua.SecurityPolicy[c.securityPolicy],
      endpointMustExist: false,
      connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
      clientCertificateManager: manager,
      keepSessionAlive: true,
      transportTimeout: c.timeoutMs,
      requestedSessionTimeout: 60_000,
    });
    let lost = false;
    const onLost = () => {
      if (this.client !== client || lost) return;
      lost = true;
      this.open = false;
      this.options.logger.warn({ endpoint: c.endpoint }, 'opc ua connection lost');
      for (const l of this.listeners) l();
    };
    client.on('connection_lost', onLost);
    client.on('start_reconnection', onLost);
    client.on('close', onLost);
    try {
      // node-opcua can wait forever (a server that drops the channel mid-handshake, a stuck PKI lock): bound it.
      await withDeadline(client.connect(c.endpoint), c.timeoutMs * 3 + 10_000);
    } catch (e) {
      await settle(client.disconnect(), 2000);
      await settle(manager.dispose(), 1000);
      if (/certificate verification failed/i.test((e as Error)?.message ?? '')) {
        throw new OutpostError('OUTPOST_E_OPCUA_UNTRUSTED', 'the server certificate is not trusted (see `outpost opcua certs list`)', {
          cause: e,
          details: { endpoint: c.endpoint, pki: this.options.pkiDir },
        });
      }
      const status = /(Bad[A-Za-z]+)/.exec((e as Error)?.message ?? '')?.[1];
      throw new OutpostError('OUTPOST_E_OPCUA_CONNECT', `cannot connect to ${c.endpoint} (securityMode ${c.securityMode}, securityPolicy ${c.securityPolicy})`, {
        cause: e,
        details: { endpoint: c.endpoint, securityMode: c.securityMode, securityPolicy: c.securityPolicy, ...(status ? { status } : {}) },
      });
    }
    let session: UA.ClientSession;
    try {
      const identity: UA.UserIdentityInfo =
        c.auth.type === 'userpass'
          ? { type: ua.UserTokenType.UserName, userName: c.auth.username, password: c.auth.password }
          : { type: ua.UserTokenType.Anonymous };
      session = await withDeadline(client.createSession(identity), c.timeoutMs * 2);
    } catch (e) {
      await settle(client.disconnect(), 2000);
      await settle(manager.dispose(), 1000);
      const status = /(Bad[A-Za-z]+)/.exec((e as Error)?.message ?? '')?.[1];
      throw new OutpostError('OUTPOST_E_OPCUA_CONNECT', `the opc ua server ${c.endpoint} refused the session`, {
        cause: e,
        details: { endpoint: c.endpoint, auth: c.auth.type, ...(status ? { status } : {}) },
      });
    }
    session.on('session_closed', onLost);
    session.on('keepalive_failure', onLost);
    this.client = client;
    this.session = session;
    this.manager = manager;
    this.open = true;
    this.perCall = await this.serverItemsPerCall(session);
  }

  private manager: CM.OPCUACertificateManager | null = null;

  async close(): Promise<void> {
    const { client, session, manager } = this;
    this.client = null;
    this.session = null;
    this.manager = null;
    this.open = false;
    this.dataTypes.clear();
    if (session) await settle(session.close(true), 2000);
    if (client) await settle(client.disconnect(), 3000);
    if (manager) await settle(manager.dispose(), 1000);
  }

  isOpen(): boolean {
    return this.open && this.session !== null;
  }

  onDisconnect(listener: () => void): void {
    this.listeners.push(listener);
  }

  async read(nodeIds: readonly string[]): Promise<OpcuaDataValue[]> {
    const session = this.requireSession();
    const { AttributeIds } = this.mods.ua;
    try {
      const values = await session.read(nodeIds.map((nodeId) => ({ nodeId, attributeId: AttributeIds.Value })));
      return values.map((dv) => this.toDataValue(dv));
    } catch (e) {
      throw this.failure(e, 'read');
    }
  }

  async write(nodeId: string, value: PointValue): Promise<void> {
    const session = this.requireSession();
    const { ua } = this.mods;
    const dataType = await this.dataTypeOf(session, nodeId);
    const variant = new ua.Variant({ dataType, value: coerce(ua, dataType, value) });
    let status: UA.StatusCode;
    try {
      status = await session.write({ nodeId, attributeId: ua.AttributeIds.Value, value: { value: variant } });
    } catch (e) {
      throw this.failure(e, 'write');
    }
    if (!status.isGood()) throw new OutpostError('OUTPOST_E_OPCUA_STATUS', 'server refused the write', { details: { nodeId, status: status.name } });
  }

  async subscribe(publishingIntervalMs: number, items: readonly MonitorItem[], onChange: (nodeId: string, value: OpcuaDataValue) => void): Promise<OpcuaSubscriptionHandle> {
    const session = this.requireSession();
    const { ua } = this.mods;
    let subscription: UA.ClientSubscription;
    try {
      subscription = await session.createSubscription2({
        requestedPublishingInterval: publishingIntervalMs,
        requestedLifetimeCount: 120,
        requestedMaxKeepAliveCount: 10,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 1,
      });
    } catch (e) {
      throw this.failure(e, 'subscribe');
    }
    // Items that share sampling, queue and filter go into one group; each group in chunks the server accepts.
    const groups = new Map<string, MonitorItem[]>();
    for (const i of items) {
      const key = JSON.stringify([i.samplingIntervalMs, i.queueSize, i.deadband ?? null]);
      groups.set(key, [...(groups.get(key) ?? []), i]);
    }
    this.lastSubscribeCalls = 0;
    try {
      for (const list of groups.values()) {
        const first = list[0] as MonitorItem;
        const filter = first.deadband
          ? new ua.DataChangeFilter({
              trigger: ua.DataChangeTrigger.StatusValue,
              deadbandType: 'absolute' in first.deadband ? ua.DeadbandType.Absolute : ua.DeadbandType.Percent,
              deadbandValue: 'absolute' in first.deadband ? first.deadband.absolute : first.deadband.percent,
            })
          : null;
        for (let at = 0; at < list.length; at += this.perCall) {
          const chunk = list.slice(at, at + this.perCall);
          this.lastSubscribeCalls++;
          const group = await subscription.monitorItems(
            chunk.map((i) => ({ nodeId: i.nodeId, attributeId: ua.AttributeIds.Value })),
            { samplingInterval: first.samplingIntervalMs, queueSize: first.queueSize, discardOldest: true, ...(filter ? { filter } : {}) },
            ua.TimestampsToReturn.Both,
          );
          group.monitoredItems.forEach((mi, idx) => {
            const status = mi.statusCode;
            if (status && !status.isGood()) onChange((chunk[idx] as MonitorItem).nodeId, { value: null, status: status.name });
          });
          group.on('changed', (_mi: unknown, dv: UA.DataValue, index: number) => {
            const item = chunk[index];
            if (item) onChange(item.nodeId, this.toDataValue(dv));
          });
        }
      }
    } catch (e) {
      await settle(subscription.terminate(), 2000);
      throw this.failure(e, 'subscribe');
    }
    return { close: async () => void (await settle(subscription.terminate(), 2000)) };
  }

  /** Browses the references of one node (for `outpost opcua browse`). */
  async browse(nodeId: string): Promise<UA.ReferenceDescription[]> {
    const session = this.requireSession();
    try {
      const result = await session.browse({ nodeId, resultMask: 63, includeSubtypes: true, browseDirection: this.mods.ua.BrowseDirection.Forward, referenceTypeId: 'HierarchicalReferences' });
      if (!result.statusCode.isGood()) throw new OutpostError('OUTPOST_E_OPCUA_BROWSE', 'server refused to browse the node', { details: { nodeId, status: result.statusCode.name } });
      return result.references ?? [];
    } catch (e) {
      if (e instanceof OutpostError) throw e;
      throw new OutpostError('OUTPOST_E_OPCUA_BROWSE', 'browse failed', { cause: e, details: { nodeId } });
    }
  }

  /** The built-in data type of a variable, from its current value (cached per session). */
  async dataTypeOf(session: UA.ClientSession, nodeId: string): Promise<UA.DataType> {
    const cached = this.dataTypes.get(nodeId);
    if (cached !== undefined) return cached;
    let dv: UA.DataValue;
    try {
      dv = await session.read({ nodeId, attributeId: this.mods.ua.AttributeIds.Value });
    } catch (e) {
      throw this.failure(e, 'read');
    }
    if (!dv.statusCode.isGood() || !dv.value) throw new OutpostError('OUTPOST_E_OPCUA_STATUS', 'server refused the write', { details: { nodeId, status: dv.statusCode.name } });
    this.dataTypes.set(nodeId, dv.value.dataType);
    return dv.value.dataType;
  }

  private toDataValue(dv: UA.DataValue): OpcuaDataValue {
    const t = dv.sourceTimestamp ?? dv.serverTimestamp;
    return { value: variantToPointValue(this.mods, dv.value), status: dv.statusCode.name, ...(t ? { sourceTime: t.getTime() } : {}) };
  }

  private async serverItemsPerCall(session: UA.ClientSession): Promise<number> {
    const configured = this.options.maxItemsPerCall;
    try {
      // Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall
      const dv = await session.read({ nodeId: 'ns=0;i=11714', attributeId: this.mods.ua.AttributeIds.Value });
      const n = Number(dv.value?.value ?? 0);
      return dv.statusCode.isGood() && n > 0 ? Math.min(n, configured) : configured;
    } catch (e) {
      this.options.logger.debug({ err: describeCause(e) }, 'server does not tell its monitored item limit');
      return configured;
    }
  }

  private requireSession(): UA.ClientSession {
    if (!this.session || !this.open) throw new OutpostError('OUTPOST_E_HAL_NOT_CONNECTED', 'opc ua session is not open', { details: { endpoint: this.connection.endpoint } });
    return this.session;
  }

  private failure(e: unknown, op: string): OutpostError {
    if (e instanceof OutpostError) return e;
    if (!this.open) return new OutpostError('OUTPOST_E_HAL_NOT_CONNECTED', 'opc ua session is not open', { cause: e, details: { op } });
    const status = /(Bad[A-Za-z]+)/.exec((e as Error)?.message ?? '')?.[1] ?? 'BadCommunicationError';
    return new OutpostError('OUTPOST_E_OPCUA_STATUS', `opc ua ${op} failed`, { cause: e, details: { status, op } });
  }
}

/** Converts a point value for a variable of the given built-in type; throws OUTPOST_E_HAL_VALUE when it does not fit. */
export function coerce(ua: typeof UA, dataType: UA.DataType, value: PointValue): unknown {
  const D = ua.DataType;
  const bad = () => new OutpostError('OUTPOST_E_HAL_VALUE', `value does not fit a ${D[dataType]}`, { details: { value, dataType: D[dataType] } });
  if (dataType === D.Boolean) {
    if (typeof value === 'boolean') return value;
    if (value === 1 || value === '1' || value === 'true') return true;
    if (value === 0 || value === '0' || value === 'false') return false;
    throw bad();
  }
  if (dataType === D.String) return String(value);
  const n = typeof value === 'boolean' ? Number(value) : Number(value);
  if (!Number.isFinite(n)) throw bad();
  const ranges: Partial<Record<number, [number, number]>> = {
    [D.SByte]: [-128, 127],
    [D.Byte]: [0, 255],
    [D.Int16]: [-32768, 32767],
    [D.UInt16]: [0, 65535],
    [D.Int32]: [-2147483648, 2147483647],
    [D.UInt32]: [0, 4294967295],
  };
  const r = ranges[dataType];
  if (r) {
    if (!Number.isInteger(n) || n < r[0] || n > r[1]) throw bad();
    return n;
  }
  if (dataType === D.Int64 || dataType === D.UInt64) {
    if (!Number.isSafeInteger(n) || (dataType === D.UInt64 && n < 0)) throw bad();
    return [Math.floor(n / 2 ** 32), n >>> 0];
  }
  if (dataType === D.Float || dataType === D.Double) return n;
  throw bad();
}
