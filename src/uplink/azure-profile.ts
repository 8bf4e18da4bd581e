import { gzipSync } from 'node:zlib';
import type { IPublishPacket } from 'mqtt';
import type { Taken } from '../store/durable-store.js';
import { isOutpostError } from '../errors/outpost-error.js';
import type { CommandReply } from './commands.js';
import { batchJson, type OutMessage, type PayloadProfile, type ProfileSession } from './profile.js';

export interface AzureProfileOptions {
  readonly deviceId: string;
  readonly hubHostname?: string;
  readonly gatewayId: string;
  readonly bootId: string;
  readonly version: string;
  readonly protocolVersion: 4 | 5;
  readonly compression: 'none' | 'gzip';
  readonly now: () => number;
}

const METHOD = /^\$iothub\/methods\/POST\/([^/]+)\/\?\$rid=(.+)$/;

/**
 * Azure IoT Hub device topics (MQTT 3.1.1 by default, as IoT Hub speaks it):
 * telemetry on `devices/{id}/messages/events/{property bag}` with `route`, `priority` and
 * `type=batch|status|command-progress`; direct methods as commands (`$iothub/methods/POST/{name}/?$rid=`
 * answered on `$iothub/methods/res/{status}/?$rid=`). IoT Hub stores no retained messages, so the
 * online/offline status is a telemetry message (`type=status`) and the offline one is the Will.
 */
export class AzureProfile implements PayloadProfile {
  readonly name = 'azure';
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  readonly defaultUsername?: string;
  private readonly events: string;

  constructor(private readonly o: AzureProfileOptions) {
    this.clientId = o.deviceId;
    this.protocolVersion = o.protocolVersion;
    this.events = `devices/${o.deviceId}/messages/events/`;
    if (o.hubHostname) this.defaultUsername = `${o.hubHostname}/${o.deviceId}/?api-version=2021-04-12`;
  }

  async prepareConnect(): Promise<void> {}

  will() {
    return { topic: this.topic({ type: 'status' }), payload: this.status('offline'), retain: false, qos: 1 as const };
  }

  async onConnected(session: ProfileSession): Promise<void> {
    await session.publish({ topic: this.topic({ type: 'status' }), payload: this.status('online') });
  }

  subscriptions(): string[] {
    return ['$iothub/methods/POST/#'];
  }

  encode(batch: readonly Taken[]): OutMessage[] {
    const first = batch[0] as Taken;
    const json = batchJson({ gateway: this.o.gatewayId, bootId: this.o.bootId, sentAt: this.o.now() }, batch);
    const gz = this.o.compression === 'gzip';
    return [{ topic: this.topic({ type: 'batch', route: first.fields.route, priority: String(first.fields.priority) }, gz), payload: gz ? gzipSync(json) : json }];
  }

  async onMessage(topic: string, payload: Buffer, _packet: IPublishPacket, session: ProfileSession): Promise<void> {
    const m = METHOD.exec(topic);
    if (!m || !session.commands) return;
    let name = m[1] as string;
    try {
      name = decodeURIComponent(name);
    } catch {
      // Left encoded: the envelope check refuses the name and the reply says so.
    }
    const rid = m[2] as string;
    const send = (reply: CommandReply) => {
      if (reply.status === 'accepted' || reply.status === 'progress') {
        void session.publish({ topic: this.topic({ type: 'command-progress', rid }), payload: Buffer.from(JSON.stringify(reply)) }).catch(() => undefined);
        return;
      }
      const status = reply.status === 'ok' ? 200 : methodStatus(reply.error?.code ?? '');
      const body = reply.status === 'ok' ? (reply.result ?? null) : { error: reply.error };
      void session.publish({ topic: `$iothub/methods/res/${status}/?$rid=${rid}`, payload: Buffer.from(JSON.stringify(body)) }).catch(() => undefined);
    };
    let req;
    try {
      req = session.commands.parseMethod(rid, name, payload);
    } catch (e) {
      send({ id: rid, name, status: 'error', error: isOutpostError(e) ? { code: e.code, message: e.message } : { code: 'OUTPOST_E_UPLINK_COMMAND', message: 'method not readable' } });
      return;
    }
    await session.commands.run(req, send);
  }

  goodbye(): OutMessage {
    return { topic: this.topic({ type: 'status' }), payload: this.status('offline') };
  }

  private topic(props: Record<string, string>, gzip = false): string {
    const bag = { '$.ct': 'application/json', '$.ce': gzip ? 'gzip' : 'utf-8', ...props };
    return this.events + Object.entries(bag).map(([k, v]) => `${encodeURIComponent(k).replace(/%24/g, '$')}=${encodeURIComponent(v)}`).join('&');
  }

  private status(state: 'online' | 'offline'): Buffer {
    return Buffer.from(JSON.stringify({ state, gateway: this.o.gatewayId, bootId: this.o.bootId, version: this.o.version, time: this.o.now() }));
  }
}

/** HTTP-like status of a direct method reply for an error code. */
function methodStatus(code: string): number {
  if (code === 'OUTPOST_E_COMMAND_UNKNOWN') return 404;
  if (code === 'OUTPOST_E_UPLINK_COMMAND_BUSY') return 429;
  if (code === 'OUTPOST_E_UPLINK_COMMAND_DUPLICATE') return 409;
  if (code.endsWith('_PARAMS') || code === 'OUTPOST_E_UPLINK_COMMAND') return 400;
  return 500;
}
