import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { IPublishPacket } from 'mqtt';
import type { Logger } from 'pino';
import type { Message } from '../model/reading.js';
import type { Taken } from '../store/durable-store.js';
import { DEFAULT_COMMAND_LIMITS } from './commands.js';
import type { OutMessage, PayloadProfile, ProfileSession } from './profile.js';

type TypeStr = 'Double' | 'Boolean' | 'String' | 'UInt64' | 'Int32';
interface Metric {
  name: string;
  type: TypeStr;
  value: number | boolean | string | null;
  timestamp?: number;
  isNull?: boolean;
  properties?: Record<string, { type: TypeStr; value: number | boolean | string }>;
}
interface SpPayload {
  timestamp: number;
  seq?: number;
  metrics: Metric[];
}
interface SpCodec {
  encodePayload(p: SpPayload): Uint8Array;
  decodePayload(b: Uint8Array): { metrics?: Array<{ name?: string | null; value?: unknown; type?: string }> | null };
}

export interface SparkplugOptions {
  readonly groupId: string;
  readonly edgeNodeId: string;
  readonly stateFile: string;
  readonly bootId: string;
  readonly version: string;
  readonly now: () => number;
  readonly logger: Logger;
}

const NS = 'spBv1.0';
/** Sparkplug quality codes as Ignition reads them (property `Quality`). */
const QUALITY: Record<string, number> = { good: 192, uncertain: 64, bad: 0 };

/** Loads the sparkplug-payload codec (CommonJS, protobufjs) only when the profile is configured. */
export function loadSparkplugCodec(): SpCodec {
  const require = createRequire(import.meta.url);
  const mod = require('sparkplug-payload') as { get(ns: string): SpCodec | null };
  return mod.get(NS) as SpCodec;
}

/**
 * Sparkplug B edge node. Topics `spBv1.0/<group>/<TYPE>/<node>[/<device>]`.
 * Invariants: before each connection bdSeq is advanced and persisted, and the Will is an NDEATH
 * carrying it; every session starts with NBIRTH (seq 0, same bdSeq) then a DBIRTH per known
 * device; seq counts every NBIRTH/NDATA/DBIRTH/DDATA modulo 256; a DDATA only carries metrics
 * declared by a DBIRTH of the current session (a new metric first triggers a DBIRTH of its device);
 * NCMD `Node Control/Rebirth` re-runs the births; DCMD metrics become `points.write` commands.
 * Deviation from the spec: data messages use QoS 1, because a record leaves the store only on PUBACK.
 */
export class SparkplugProfile implements PayloadProfile {
  readonly name = 'sparkplug';
  readonly clientId: string;
  readonly protocolVersion = 5 as const;
  private bdSeq = 0;
  private seq = 0;
  /** Makes the ids of DCMD writes unique (a command id is run once). */
  private dcmdSeq = 0;
  private readonly codec: SpCodec;
  /** Last metric of every point, per device, across sessions (DBIRTH contents). */
  private readonly devices = new Map<string, Map<string, Metric>>();
  /** Devices (and their metric names) born in the current session. */
  private born = new Map<string, Set<string>>();
  private readonly nodeMetrics = new Map<string, Metric>();
  private nodeBorn = new Set<string>();

  constructor(
    private readonly o: SparkplugOptions,
    clientId: string,
  ) {
    this.clientId = clientId;
    this.codec = loadSparkplugCodec();
  }

  async prepareConnect(): Promise<void> {
    let last = -1;
    try {
      last = (JSON.parse(await readFile(this.o.stateFile, 'utf8')) as { bdSeq: number }).bdSeq;
    } catch {
      last = -1;
    }
    this.bdSeq = (last + 1) % 256;
    await mkdir(path.dirname(this.o.stateFile), { recursive: true });
    await writeFile(`${this.o.stateFile}.tmp`, JSON.stringify({ bdSeq: this.bdSeq }));
    await rename(`${this.o.stateFile}.tmp`, this.o.stateFile);
  }

  will() {
    const payload = this.codec.encodePayload({ timestamp: this.o.now(), metrics: [{ name: 'bdSeq', type: 'UInt64', value: this.bdSeq }] });
    return { topic: this.topic('NDEATH'), payload: Buffer.from(payload), retain: false, qos: 1 as const };
  }

  async onConnected(session: ProfileSession): Promise<void> {
    this.born = new Map();
    this.nodeBorn = new Set();
    for (const m of this.births()) await session.publish(m);
  }

  subscriptions(): string[] {
    return [this.topic('NCMD'), `${NS}/${this.o.groupId}/DCMD/${this.o.edgeNodeId}/+`];
  }

  encode(batch: readonly Taken[]): OutMessage[] {
    const out: OutMessage[] = [];
    const byDevice = new Map<string, Metric[]>();
    const nodeData: Metric[] = [];
    for (const t of batch) {
      const m = JSON.parse(t.fields.message.toString('utf8')) as Message;
      if (m.kind === 'reading') {
        const r = m.body;
        const metric: Metric = {
          name: r.point,
          type: r.value === null ? (this.devices.get(r.device)?.get(r.point)?.type ?? 'Double') : typeof r.value === 'boolean' ? 'Boolean' : typeof r.value === 'string' ? 'String' : 'Double',
          value: r.value,
          timestamp: r.sourceTime,
          ...(r.value === null ? { isNull: true } : {}),
          properties: {
            Quality: { type: 'Int32', value: QUALITY[r.quality] ?? 0 },
            seq: { type: 'UInt64', value: r.seq },
            bootId: { type: 'String', value: r.bootId },
            ...(r.timeUncertain ? { timeUncertain: { type: 'Boolean', value: true } } : {}),
          },
        };
        const known = this.devices.get(r.device) ?? new Map<string, Metric>();
        known.set(r.point, metric);
        this.devices.set(r.device, known);
        byDevice.set(r.device, [...(byDevice.get(r.device) ?? []), metric]);
      } else if (m.kind === 'system') {
        // A system event (e.g. ota.rolled-back) is a node metric holding the event as JSON.
        const e = m.body;
        const metric: Metric = { name: `System/${e.event}`, type: 'String', value: JSON.stringify(e.data), timestamp: e.time };
        this.nodeMetrics.set(metric.name, metric);
        nodeData.push(metric);
      } else {
        const e = m.body;
        const metric: Metric = { name: `Rules/${e.rule}/state`, type: 'String', value: e.state, timestamp: e.time };
        this.nodeMetrics.set(metric.name, metric);
        nodeData.push(metric);
      }
    }
    if (nodeData.some((x) => !this.nodeBorn.has(x.name))) out.push(...this.births());
    if (nodeData.length > 0) out.push(this.message('NDATA', undefined, nodeData));
    for (const [device, metrics] of byDevice) {
      const born = this.born.get(device);
      if (!born || metrics.some((x) => !born.has(x.name))) out.push(this.dbirth(device));
      out.push(this.message('DDATA', device, metrics));
    }
    return out;
  }

  async onMessage(topic: string, payload: Buffer, _packet: IPublishPacket, session: ProfileSession): Promise<void> {
    const maxBytes = session.commands?.limits.maxBytes ?? DEFAULT_COMMAND_LIMITS.maxBytes;
    if (payload.length > maxBytes) {
      this.o.logger.warn({ topic, bytes: payload.length, limit: maxBytes }, 'sparkplug command larger than commandLimits.maxBytes; ignored');
      return;
    }
    let decoded;
    try {
      decoded = this.codec.decodePayload(payload);
    } catch {
      this.o.logger.warn({ topic }, 'sparkplug command payload not decodable; ignored');
      return;
    }
    const metrics = decoded.metrics ?? [];
    if (topic === this.topic('NCMD')) {
      if (metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)) {
        this.o.logger.info({}, 'sparkplug rebirth requested');
        await this.onConnected(session);
      }
      return;
    }
    if (!session.commands) return;
    for (const m of metrics) {
      const value = typeof m.value === 'object' && m.value !== null && 'toNumber' in m.value ? (m.value as { toNumber(): number }).toNumber() : m.value;
      const id = `dcmd-${this.o.now()}-${++this.dcmdSeq}-${m.name ?? ''}`.slice(0, 128);
      await session.commands.run({ id, name: 'points.write', params: { point: m.name, value } }, (r) => {
        if (r.status === 'error') this.o.logger.warn({ topic, metric: m.name, error: r.error }, 'sparkplug DCMD write failed');
      });
    }
  }

  goodbye(): OutMessage {
    return this.will();
  }

  private births(): OutMessage[] {
    this.seq = 0;
    const node: Metric[] = [
      { name: 'bdSeq', type: 'UInt64', value: this.bdSeq },
      { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
      { name: 'Properties/Outpost Version', type: 'String', value: this.o.version },
      { name: 'Properties/Boot Id', type: 'String', value: this.o.bootId },
      ...this.nodeMetrics.values(),
    ];
    this.nodeBorn = new Set(node.map((m) => m.name));
    const out = [this.message('NBIRTH', undefined, node, 0)];
    for (const d of this.devices.keys()) out.push(this.dbirth(d));
    return out;
  }

  private dbirth(device: string): OutMessage {
    const metrics = [...(this.devices.get(device)?.values() ?? [])];
    this.born.set(device, new Set(metrics.map((m) => m.name)));
    return this.message('DBIRTH', device, metrics);
  }

  private message(type: string, device: string | undefined, metrics: Metric[], seq?: number): OutMessage {
    const s = seq ?? (this.seq = (this.seq + 1) % 256);
    const payload = this.codec.encodePayload({ timestamp: this.o.now(), seq: s, metrics });
    return { topic: this.topic(type, device), payload: Buffer.from(payload) };
  }

  private topic(type: string, device?: string): string {
    return `${NS}/${this.o.groupId}/${type}/${this.o.edgeNodeId}${device ? `/${device}` : ''}`;
  }
}
