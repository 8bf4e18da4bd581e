import path from 'node:path';
import type { UpstreamConfig } from '../config/schema.js';
import { OutpostError } from '../errors/outpost-error.js';
import type { UpstreamFactory } from '../runtime/runtime.js';
import { DurableStore } from '../store/durable-store.js';
import { AzureProfile } from './azure-profile.js';
import { CommandDispatcher } from './commands.js';
import { FileCredentialSource, type CredentialSource } from './credentials.js';
import { JsonProfile } from './json-profile.js';
import { MqttUplink } from './mqtt-uplink.js';
import type { PayloadProfile } from './profile.js';
import type { MqttUpstreamConfig } from './schema.js';

export interface UplinkFactoryOptions {
  readonly version: string;
  /** Replaces the file-based credentials (e.g. a TPM-backed source). */
  readonly credentials?: (config: MqttUpstreamConfig) => CredentialSource;
}

/**
 * The UpstreamFactory for `upstream.type: mqtt` (wired in services/outpost.ts): a DurableStore under
 * `<dataDir>/store` (or `store.dir`), the configured payload profile and the command dispatcher.
 * The Sparkplug codec (protobufjs) is loaded only for the sparkplug profile.
 */
export function createUplinkFactory(options: UplinkFactoryOptions): UpstreamFactory {
  return async (config: UpstreamConfig, deps) => {
    if (config.type !== 'mqtt') throw new OutpostError('OUTPOST_E_RUNTIME_START', 'no upstream implementation for this type', { details: { type: config.type } });
    const c = config as MqttUpstreamConfig;
    const now = () => deps.clock.now();
    const s = c.store;
    const store = new DurableStore(
      {
        dir: s.dir ? path.resolve(deps.dataDir, s.dir) : path.join(deps.dataDir, 'store'),
        maxBytes: s.maxBytes,
        segmentBytes: s.segmentBytes,
        minFreeBytes: s.minFreeBytes,
        fsyncIntervalMs: s.fsyncIntervalMs,
        onFull: s.onFull,
        maxRecordBytes: s.maxRecordBytes,
        routes: s.routes,
        quarantineMaxBytes: s.quarantineMaxBytes,
        checkpointIntervalMs: s.checkpointIntervalMs,
        ...(s.weights ? { weights: s.weights } : {}),
      },
      { clock: deps.clock, logger: deps.logger.child({ component: 'store' }) },
    );
    let profile: PayloadProfile;
    const p = c.profile;
    if (p.type === 'json') {
      profile = new JsonProfile({ topicPrefix: p.topicPrefix, gatewayId: deps.gatewayId, bootId: deps.bootId, version: options.version, clientId: c.clientId ?? deps.gatewayId, protocolVersion: c.protocolVersion ?? 5, compression: c.compression, now });
    } else if (p.type === 'azure') {
      const deviceId = p.deviceId ?? deps.gatewayId;
      profile = new AzureProfile({ deviceId, ...(p.hubHostname ? { hubHostname: p.hubHostname } : {}), gatewayId: deps.gatewayId, bootId: deps.bootId, version: options.version, protocolVersion: c.protocolVersion ?? 4, compression: c.compression, now });
    } else {
      const { SparkplugProfile } = await import('./sparkplug-profile.js');
      profile = new SparkplugProfile(
        { groupId: p.groupId, edgeNodeId: p.edgeNodeId ?? deps.gatewayId, stateFile: path.join(deps.dataDir, 'uplink', 'sparkplug.json'), bootId: deps.bootId, version: options.version, now, logger: deps.logger.child({ component: 'sparkplug' }) },
        c.clientId ?? deps.gatewayId,
      );
    }
    const credentials = options.credentials?.(c) ?? new FileCredentialSource(c, profile.defaultUsername);
    const commands = c.commands ? new CommandDispatcher(deps.commands, deps.logger.child({ component: 'commands' }), c.commandLimits, deps.clock) : null;
    return new MqttUplink(c, { clock: deps.clock, logger: deps.logger, store, profile, credentials, commands });
  };
}
