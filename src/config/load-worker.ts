import { isOutpostError } from '../errors/outpost-error.js';
import { loadConfig } from './load.js';

/** Child-process side of loadConfigIsolated: loads and validates, sends the plain result or the error fields, exits. */
const file = process.argv[2] as string;
let reply: unknown;
try {
  const loaded = await loadConfig(file);
  reply = { ok: true, config: loaded.config, files: loaded.files };
} catch (e) {
  reply = isOutpostError(e)
    ? { ok: false, code: e.code, message: e.message, details: e.details }
    : { ok: false, code: 'OUTPOST_E_CONFIG_READ', message: 'configuration could not be loaded', details: { reason: String(e) } };
}
process.send?.(reply, () => process.disconnect());
