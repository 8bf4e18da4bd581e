import { systemClock } from '../../hal/clock.js';
import { CommandRegistry } from '../../src/commands/command.js';
import { ConfigValidator } from '../../src/config/load.js';
import type { Message } from '../../src/model/reading.js';
import type { Upstream, UpstreamRecord } from '../../src/upstream/upstream.js';
import { createUplinkFactory } from '../../src/uplink/factory.js';
import type { Logger } from 'pino';

/** Builds an MQTT upstream in-process from an `upstream` config section (validated, defaults applied). */
export async function buildUplink(upstream: Record<string, unknown>, o: { dataDir: string; logger: Logger; gatewayId?: string; commands?: CommandRegistry }): Promise<{ uplink: Upstream; commands: CommandRegistry }> {
  const config = new ConfigValidator().validate({ gateway: { id: o.gatewayId ?? 'gw1', dataDir: o.dataDir }, upstream }, ['test'], o.dataDir);
  const commands = o.commands ?? new CommandRegistry();
  const uplink = await createUplinkFactory({ version: 'test' })(config.upstream, {
    clock: systemClock,
    logger: o.logger,
    gatewayId: config.gateway.id,
    dataDir: o.dataDir,
    commands,
    bootId: 'boot-1',
  });
  return { uplink, commands };
}

/** A reading record for route/priority with value n (the reading's seq is n too). */
export function readingRecord(n: number, route: string, priority: number, point = 'p1', device = 'dev1'): UpstreamRecord {
  const message: Message = { kind: 'reading', source: `/readings/${device}/${point}`, body: { point, device, value: n, quality: 'good', sourceTime: Date.now(), seq: n, bootId: 'boot-1' } };
  return { route, priority, ttlSeconds: 3600, enqueuedAt: Date.now(), message };
}

/** Parsed JSON-profile batch. */
export interface JsonBatch {
  readonly v: number;
  readonly gateway: string;
  readonly route: string;
  readonly priority: number;
  readonly records: Array<{ storeSeq: number; enqueuedAt: number; message: Message }>;
}
