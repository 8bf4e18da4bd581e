import path from 'node:path';
import AjvModule, { type ErrorObject } from 'ajv';
import { formatCauseChain } from '../errors/outpost-error.js';
import { inspectDataDir } from './data-dir.js';
import { formatAjvErrors, isNonFiniteProblem, segmentsOf, type ConfigProblem } from './error-format.js';
import { deepFreeze, originAt, type Origin } from './merge.js';
import { configError } from './problems.js';
import { ConfigSchema, type OutpostConfig } from './schema.js';
import { checkSemantics } from './semantic.js';
import { mergeSources, readConfigSources, type SourceLimits } from './sources.js';
import { nodeConfigFiles, type ConfigFiles } from './source-read.js';

export { nodeConfigFiles, type ConfigFiles } from './source-read.js';

const Ajv = AjvModule.default;

/** A validated, frozen configuration and the files it came from. */
export interface LoadedConfig {
  readonly config: Readonly<OutpostConfig>;
  readonly files: readonly string[];
}

/** What ConfigValidator.inspect found: every problem, and the frozen configuration when there is none. */
export interface Inspection {
  readonly config?: Readonly<OutpostConfig>;
  /** gateway.dataDir resolved against the base directory, when the gateway section is valid. */
  readonly dataDir?: string;
  readonly problems: readonly ConfigProblem[];
}

/**
 * The elements an ajv error makes unusable for the semantic checks: `section/element` ('devices/2',
 * 'api/port'), or the section when it is itself malformed. An unknown key or a number that is not
 * finite leaves the element's shape intact, so its cross-references are still checked.
 */
function invalidElements(errors: readonly ErrorObject[]): Set<string> {
  const out = new Set<string>();
  for (const e of errors) {
    if (e.keyword === 'additionalProperties') continue;
    if (typeof e.data === 'number' && !Number.isFinite(e.data)) continue;
    const [section, element] = e.instancePath.split('/').slice(1);
    if (section === undefined) continue;
    out.add(element === undefined ? section : `${section}/${element}`);
  }
  return out;
}

/**
 * Validates configuration documents. One instance compiles the schema once (numbers must be finite:
 * ajv's strictNumbers); `inspect` applies defaults to a copy, checks the schema and the cross-references
 * in one pass and returns every problem; `validate` throws them as one OutpostError.
 */
export class ConfigValidator {
  private readonly check = new Ajv({ useDefaults: true, allErrors: true, discriminator: true, strict: false, verbose: true, strictNumbers: true }).compile(ConfigSchema);

  inspect(document: unknown, baseDir: string): Inspection {
    const doc = structuredClone(document ?? {}) as OutpostConfig;
    const errors = this.check(doc) ? [] : [...(this.check.errors ?? [])];
    const invalid = invalidElements(errors);
    let dataDir: string | undefined;
    if (!invalid.has('gateway') && !invalid.has('gateway/dataDir') && typeof doc.gateway?.dataDir === 'string') {
      dataDir = path.resolve(baseDir, doc.gateway.dataDir);
      doc.gateway.dataDir = dataDir;
    }
    const problems = [...formatAjvErrors(errors), ...checkSemantics(doc, invalid)];
    if (problems.length > 0) return { ...(dataDir !== undefined ? { dataDir } : {}), problems };
    return { config: deepFreeze(doc), dataDir: doc.gateway.dataDir, problems };
  }

  validate(document: unknown, files: readonly string[], baseDir: string): Readonly<OutpostConfig> {
    const r = this.inspect(document, baseDir);
    if (!r.config) throw configError(r.problems, files);
    return r.config;
  }
}

/** Adds the file, line and column a problem's value came from (the deepest origin on its path). */
function locate(p: ConfigProblem, origin: Origin | undefined): ConfigProblem {
  const o = originAt(origin, p.at ?? segmentsOf(p.path));
  if (!o) return p;
  return { ...p, file: o.file, ...(o.line !== undefined ? { line: o.line } : {}), ...(o.col !== undefined ? { col: o.col } : {}) };
}

/**
 * Loads `main` (YAML or JSON) and the drop-ins of `config.d/` next to it (`*.yaml`, `*.yml`,
 * `*.json` not starting with a dot, in name order), merges them (see mergeTracked), validates the
 * result once and returns it frozen. Reports every problem in one OutpostError, each naming its file
 * and line: first the problems of the files themselves (all files are read), then, once every file
 * parsed, the schema, semantic and data-directory problems of the merged document together.
 */
export async function loadConfig(main: string, files: ConfigFiles = nodeConfigFiles, validator = new ConfigValidator(), limits: SourceLimits = {}): Promise<LoadedConfig> {
  const src = await readConfigSources(main, files, limits);
  // A file that could not be read or parsed stops here: without it, every reference to it would look wrong.
  if (src.problems.some((p) => p.code !== undefined && p.code !== 'OUTPOST_E_CONFIG_INVALID')) throw configError(src.problems, src.files);
  const merged = mergeSources(src.documents);
  const result = validator.inspect(merged.value, src.dir);
  // Numbers the parser already refused (.nan, .inf) are reported once, with their own file and line.
  const problems = [...src.problems, ...result.problems.filter((p) => !(src.problems.length > 0 && isNonFiniteProblem(p))).map((p) => locate(p, merged.origin))];
  if (result.dataDir !== undefined) {
    let why: string | null = null;
    let reason: string | undefined;
    try {
      why = await inspectDataDir(result.dataDir, files.kind);
    } catch (e) {
      why = `${result.dataDir} cannot be examined`;
      reason = formatCauseChain(e);
    }
    if (why !== null) {
      problems.push(locate({ code: 'OUTPOST_E_CONFIG_DATA_DIR', path: 'gateway.dataDir', message: why, ...(reason ? { reason } : {}) }, merged.origin));
    }
  }
  if (problems.length > 0 || !result.config) throw configError(problems, src.files);
  return { config: result.config, files: src.files };
}

/** The JSON Schema of the configuration (what `outpost config schema` prints). */
export function configJsonSchema(): unknown {
  return JSON.parse(JSON.stringify(ConfigSchema));
}
