import path from 'node:path';
import { Type } from '@sinclair/typebox';
import AjvModule, { type ValidateFunction } from 'ajv';
import { formatAjvErrors } from '../src/config/error-format.js';
import { nodeConfigFiles, type ConfigFiles } from '../src/config/load.js';
import { configError } from '../src/config/problems.js';
import { mergeSources, readConfigSources } from '../src/config/sources.js';
import { OutpostError } from '../src/errors/outpost-error.js';
import { OtaConfig, type OtaConfigT } from './schema.js';

const Ajv = AjvModule.default;

/** The two sections `outpost ota …` reads; the rest of the document is left to `outpost run`. */
const OtaDocument = Type.Object(
  {
    gateway: Type.Object({ dataDir: Type.String({ minLength: 1, default: '/var/lib/outpost' }) }, { default: {} }),
    ota: OtaConfig,
  },
  { additionalProperties: true },
);

export interface LoadedOtaConfig {
  readonly ota: OtaConfigT;
  /** gateway.dataDir resolved against the configuration directory. */
  readonly dataDir: string;
  readonly configDir: string;
  readonly files: readonly string[];
}

/**
 * Loads the main configuration and its config.d/ drop-ins exactly as `loadConfig` merges them, but
 * validates only `gateway` and `ota`: compiling the whole schema costs about a second on a busy
 * machine, which `mark-good` would pay on every boot. Invariants: the same files in the same order,
 * the same merge rules; errors are OUTPOST_E_CONFIG_* naming the path.
 */
export class OtaConfigLoader {
  private readonly check = new Ajv({ useDefaults: true, allErrors: true, discriminator: true, strict: false, verbose: true }).compile(OtaDocument);

  load(main: string, files: ConfigFiles = nodeConfigFiles): Promise<LoadedOtaConfig> {
    return loadWith(this.check, main, files);
  }
}

export function loadOtaConfig(main: string, files: ConfigFiles = nodeConfigFiles): Promise<LoadedOtaConfig> {
  return new OtaConfigLoader().load(main, files);
}

async function loadWith(check: ValidateFunction, main: string, files: ConfigFiles): Promise<LoadedOtaConfig> {
  // The same files, limits and parse checks as loadConfig (src/config/sources.ts).
  const src = await readConfigSources(main, files);
  if (src.problems.length > 0) throw configError(src.problems, src.files);
  const configDir = src.dir;
  const used = src.files;
  const doc = structuredClone(mergeSources(src.documents).value) as { gateway?: unknown; ota?: unknown };
  if (doc.ota === undefined) throw new OutpostError('OUTPOST_E_OTA_CONFIG', `the configuration (${used.join(', ')}) has no \`ota:\` section (see docs/ota.md)`);
  if (!check(doc)) throw configError(formatAjvErrors(check.errors ?? []), used);
  const valid = doc as { gateway: { dataDir: string }; ota: OtaConfigT };
  return { ota: valid.ota, dataDir: path.resolve(configDir, valid.gateway.dataDir), configDir, files: used };
}
