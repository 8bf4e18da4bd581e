import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import AjvModule from 'ajv';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { OutpostError } from '../errors/outpost-error.js';
import { formatAjvErrors, type ConfigProblem } from './error-format.js';
import { deepFreeze, mergeConfig } from './merge.js';
import { ConfigSchema, type OutpostConfig } from './schema.js';
import { checkSemantics } from './semantic.js';

const Ajv = AjvModule.default;

/** File access used by the loader; injected so tests and tools can load from memory. */
export interface ConfigFiles {
  readFile(file: string): Promise<string>;
  /** Names in a directory; an absent directory yields []. */
  list(dir: string): Promise<string[]>;
}

export const nodeConfigFiles: ConfigFiles = {
  readFile: (f) => readFile(f, 'utf8'),
  list: async (dir) => {
    try {
      return await readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  },
};

/** A validated, frozen configuration and the files it came from. */
export interface LoadedConfig {
  readonly config: Readonly<OutpostConfig>;
  readonly files: readonly string[];
}

const DROP_IN = /\.(ya?ml|json)$/;

/**
 * Validates configuration documents. One instance compiles the schema once; `validate` applies
 * defaults to a copy, checks the schema and the cross-references, and returns the frozen result.
 */
export class ConfigValidator {
  private readonly check = new Ajv({ useDefaults: true, allErrors: true, discriminator: true, strict: false, verbose: true }).compile(ConfigSchema);

  validate(document: unknown, files: readonly string[], baseDir: string): Readonly<OutpostConfig> {
    const doc = structuredClone(document ?? {});
    if (!this.check(doc)) throw invalid(formatAjvErrors(this.check.errors ?? []), files);
    const config = doc as OutpostConfig;
    const problems = checkSemantics(config);
    if (problems.length > 0) throw invalid(problems, files);
    config.gateway.dataDir = path.resolve(baseDir, config.gateway.dataDir);
    return deepFreeze(config);
  }
}

function invalid(problems: readonly ConfigProblem[], files: readonly string[]): OutpostError {
  const lines = problems.map((p) => `${p.path}: ${p.message}`);
  return new OutpostError('OUTPOST_E_CONFIG_INVALID', `invalid configuration:\n  ${lines.join('\n  ')}`, {
    details: { problems, files },
  });
}

async function parseFile(files: ConfigFiles, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await files.readFile(file);
  } catch (e) {
    throw new OutpostError('OUTPOST_E_CONFIG_READ', `cannot read ${file}`, { cause: e, details: { file } });
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) ?? {};
  } catch (e) {
    const where = e instanceof YAMLParseError && e.linePos ? `:${e.linePos[0].line}:${e.linePos[0].col}` : '';
    throw new OutpostError('OUTPOST_E_CONFIG_PARSE', `${file}${where}: not valid YAML or JSON`, { cause: e, details: { file } });
  }
}

/**
 * Loads `main` (YAML or JSON) and the drop-ins of `config.d/` next to it, in name order, merges
 * them (see mergeConfig), validates the result once against the schema and returns it frozen.
 * Throws OutpostError OUTPOST_E_CONFIG_READ / _PARSE / _INVALID naming the file or path at fault.
 */
export async function loadConfig(main: string, files: ConfigFiles = nodeConfigFiles, validator = new ConfigValidator()): Promise<LoadedConfig> {
  const dir = path.dirname(path.resolve(main));
  const dropDir = path.join(dir, 'config.d');
  const dropIns = (await files.list(dropDir)).filter((n) => DROP_IN.test(n)).sort().map((n) => path.join(dropDir, n));
  const used = [path.resolve(main), ...dropIns];
  let merged: unknown = {};
  for (const f of used) {
    const doc = await parseFile(files, f);
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      throw new OutpostError('OUTPOST_E_CONFIG_INVALID', `${f}: the top level must be a mapping of sections`, { details: { file: f } });
    }
    merged = mergeConfig(merged, doc);
  }
  return { config: validator.validate(merged, used, dir), files: used };
}

/** The JSON Schema of the configuration (what `outpost config schema` prints). */
export function configJsonSchema(): unknown {
  return JSON.parse(JSON.stringify(ConfigSchema));
}
