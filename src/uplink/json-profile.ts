import { gzipSync } from 'node:zlib';
import type { IPublishPacket } from 'mqtt';
import { SYSTEM_ROUTE } from '../model/reading.js';
import type { Taken } from '../store/durable-store.js';
import type { CommandReply } from './commands.js';
import { batchJson, replyPayload, type OutMessage, type PayloadProfile, type ProfileSession } from './profile.js';

export interface JsonProfileOptions {
  readonly topicPrefix: string;
  readonly gatewayId: string;
  readonly bootId: string;
  readonly version: string;
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  readonly compression: 'none' | 'gzip';
  readonly now: () => number;
}

/**
 * Plain JSON profile. Topics under `<prefix>/<gateway>/`:
 * `data/<route>` (batches), `system` (system events, e.g. ota.rolled-back), `status` (retained online/offline, offline is the Will),
 * `cmd/req` (commands in) and `cmd/res` (replies, unless the MQTT 5 Response Topic says otherwise).
 * Invariant: every batch payload is one JSON document `{v, gateway, bootId, route, priority, sentAt, records[]}`.
 */
export class JsonProfile implements PayloadProfile {
  readonly name = 'json';
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  private readonly base: string;

  constructor(private readonly o: JsonProfileOptions) {
    this.base = `${o.topicPrefix}/${o.gatewayId}`;
    this.clientId = o.clientId;
    this.protocolVersion = o.protocolVersion;
  }

  async prepareConnect(): Promise<void> {}

  will() {
    return { topic: `${this.base}/status`, payload: this.status('offline'), retain: true, qos: 1 as const };
  }

  async onConnected(session: ProfileSession): Promise<void> {
    await session.publish({ topic: `${this.base}/status`, payload: this.status('online'), retain: true });
  }

  subscriptions(): string[] {
    return [`${this.base}/cmd/req`];
  }

  encode(batch: readonly Taken[]): OutMessage[] {
    const first = batch[0] as Taken;
    const route = first.fields.route;
    const json = batchJson({ gateway: this.o.gatewayId, bootId: this.o.bootId, sentAt: this.o.now() }, batch);
    const gz = this.o.compression === 'gzip';
    const payload = gz ? gzipSync(json) : json;
    // No MQTT 5 properties on plain batches: encoding them costs more than the rest of the publish
    // (measured by bench:uplink); the payload is always JSON. gzip is signalled by a user property.
    const properties = this.protocolVersion === 5 && gz ? { userProperties: { 'content-encoding': 'gzip' } } : undefined;
    return [{ topic: route === SYSTEM_ROUTE ? `${this.base}/system` : `${this.base}/data/${route}`, payload, ...(properties ? { properties } : {}) }];
  }

  async onMessage(topic: string, payload: Buffer, packet: IPublishPacket, session: ProfileSession): Promise<void> {
    if (topic !== `${this.base}/cmd/req` || !session.commands) return;
    const responseTopic = packet.properties?.responseTopic ?? `${this.base}/cmd/res`;
    const correlationData = packet.properties?.correlationData;
    const send = (reply: CommandReply) => {
      const properties = this.protocolVersion === 5 ? { contentType: 'application/json', ...(correlationData ? { correlationData } : {}) } : undefined;
      void session.publish({ topic: responseTopic, payload: replyPayload(reply), ...(properties ? { properties } : {}) }).catch(() => undefined);
    };
    await session.commands.handleRaw(payload, send);
  }

  goodbye(): OutMessage {
    return { topic: `${this.base}/status`, payload: this.status('offline'), retain: true };
  }

  private status(state: 'online' | 'offline'): Buffer {
    return Buffer.from(JSON.stringify({ state, gateway: this.o.gatewayId, bootId: this.o.bootId, version: this.o.version, time: this.o.now() }));
  }
}
