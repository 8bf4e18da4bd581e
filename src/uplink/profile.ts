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

/** The JSON array of a batch: each element embeds the stored message JSON without re-encoding it. */
export function recordsJson(batch: readonly Taken[]): string {
  const parts = batch.map((t) => `{"storeSeq":${t.fields.seq},"enqueuedAt":${t.fields.enqueuedAt},"message":${t.fields.message.toString('utf8')}}`);
  return `[${parts.join(',')}]`;
}
