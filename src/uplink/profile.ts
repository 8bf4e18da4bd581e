import type { IClientPublishOptions, IPublishPacket } from 'mqtt';
import type { Taken } from '../store/durable-store.js';
import type { CommandDispatcher, CommandReply } from './commands.js';

/** One MQTT message to publish (QoS 1). */
export interface OutMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly retain?: boolean;
  readonly properties?: IClientPublishOptions['properties'];
}

/** What a profile may use while connected. */
export interface ProfileSession {
  /** Publishes at QoS 1 outside the store (status, births, replies); resolves on PUBACK. */
  publish(msg: OutMessage): Promise<void>;
  readonly commands: CommandDispatcher | null;
}

/**
 * A payload profile: topic layout and encoding of batches, status/birth/death messages and how
 * commands arrive and are answered. Profiles are pure encoders plus session hooks; the uplink owns
 * the connection and the store.
 */
export interface PayloadProfile {
  readonly name: string;
  readonly clientId: string;
  readonly protocolVersion: 4 | 5;
  readonly defaultUsername?: string;
  /** Runs before each connection attempt (e.g. Sparkplug's bdSeq is advanced and persisted). */
  prepareConnect(): Promise<void>;
  will(): { topic: string; payload: Buffer; retain: boolean; qos: 1 };
  /** After CONNACK, before any stored record is sent: status online, births. */
  onConnected(session: ProfileSession): Promise<void>;
  /** Topic filters to subscribe for commands. */
  subscriptions(): string[];
  /** Encodes one batch (records of one route and priority) into one or more messages. */
  encode(batch: readonly Taken[]): OutMessage[];
  /** An incoming message on a subscribed topic. Must not throw. */
  onMessage(topic: string, payload: Buffer, packet: IPublishPacket, session: ProfileSession): Promise<void>;
  /** Published before a clean disconnect (the Will covers the other cases). */
  goodbye(): OutMessage | null;
}

/** Turns a command reply into a JSON payload. */
export function replyPayload(reply: CommandReply): Buffer {
  return Buffer.from(JSON.stringify(reply));
}

/**
 * The JSON document of a batch, `{v, gateway, bootId, route, priority, sentAt, records[]}`, built from
 * byte pieces: each record embeds the stored message JSON as is, without a UTF-8 decode/encode.
 */
export function batchJson(head: { gateway: string; bootId: string; sentAt: number }, batch: readonly Taken[]): Buffer {
  const first = batch[0] as Taken;
  const parts: Buffer[] = [Buffer.from(`{"v":1,"gateway":${JSON.stringify(head.gateway)},"bootId":${JSON.stringify(head.bootId)},"route":${JSON.stringify(first.fields.route)},"priority":${first.fields.priority},"sentAt":${head.sentAt},"records":[`)];
  batch.forEach((t, i) => {
    parts.push(Buffer.from(`${i === 0 ? '' : ','}{"storeSeq":${t.fields.seq},"enqueuedAt":${t.fields.enqueuedAt},"message":`), t.fields.message, CLOSE);
  });
  parts.push(END);
  return Buffer.concat(parts);
}
const CLOSE = Buffer.from('}');
const END = Buffer.from(']}');
