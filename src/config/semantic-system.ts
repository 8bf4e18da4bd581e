import type { OutpostConfig } from './schema.js';
import { isHostOrIp } from './hosts.js';
import { pseudoFsOf } from './data-dir.js';

/**
 * Checks of the gateway's own sections: bind hosts of the API and broker, their ports, and paths
 * of state that must not lie on a kernel pseudo file system. `ok(key)` is false for elements
 * the schema rejected (they are skipped).
 */
export function checkSystemSemantics(config: OutpostConfig, ok: (section: string) => boolean, add: (path: string, message: string) => void): void {
  for (const section of ['api', 'broker'] as const) {
    if (!ok(`${section}/host`)) continue;
    const host = config[section].host;
    if (!isHostOrIp(host)) add(`${section}.host`, `${JSON.stringify(host)} is not an IP address or host name (e.g. 127.0.0.1, ::1, gateway.local)`);
  }
  if (ok('api') && ok('broker') && config.api.enabled && config.broker.enabled && config.api.port !== 0 && config.api.port === config.broker.port) {
    add('broker.port', `port ${config.broker.port} is also api.port`);
  }
  if (ok('gateway/dataDir')) {
    const pseudo = pseudoFsOf(config.gateway.dataDir);
    if (pseudo) add('gateway.dataDir', `${config.gateway.dataDir} is on the kernel's ${pseudo} pseudo file system; use a directory on the data partition`);
  }
  if (ok('upstream') && config.upstream.type === 'file' && config.upstream.path !== undefined) {
    const pseudo = pseudoFsOf(config.upstream.path);
    if (pseudo) add('upstream.path', `${config.upstream.path} is on the kernel's ${pseudo} pseudo file system`);
  }
}
