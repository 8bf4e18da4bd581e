import { ERROR_CATALOG, type ErrorCode } from '../../src/errors/catalog.js';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ConfigValidator, configJsonSchema, loadConfig, type ConfigFiles } from '../../src/config/load.js';
import { mergeConfig } from '../../src/config/merge.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { HOSTILE_KEYS, anyText, check, deeplyFrozen, expectOutpostError, mutateText, tokenSoup, type FuzzTarget } from './target.js';


/** Every configuration error a user can cause with a file (parse, encoding, empty, size, invalid). */
const CONFIG_INPUT_CODES = (Object.keys(ERROR_CATALOG) as ErrorCode[]).filter((c) => ERROR_CATALOG[c].area === 'config' && ERROR_CATALOG[c].input);
/**
 * Fuzz targets of the configuration loader (src/config): YAML/JSON text → merge → schema → semantic
 * checks. Invariant under test: the loader returns a deeply frozen configuration or throws an
 * OutpostError with one of the configuration's input codes (OUTPOST_E_CONFIG_*) naming the problem; nothing else.
 */

/** The repository root: bench/fuzz/ in the sources (vitest) or dist/bench/fuzz/ when compiled. */
const ROOT = [2, 3].map((up) => path.resolve(import.meta.dirname, ...Array<string>(up).fill('..'))).find((d) => existsSync(path.join(d, 'config', 'demo.yaml'))) ?? process.cwd();
const MAIN = '/fuzz/outpost.yaml';
const DROP_DIR = '/fuzz/config.d';

/** The shipped configurations: valid starting points for mutations. */
function shippedConfigs(): Array<{ name: string; text: string }> {
  const dir = path.join(ROOT, 'config');
  return [
    { name: 'demo.yaml', text: readFileSync(path.join(dir, 'demo.yaml'), 'utf8') },
    ...['modbus-tcp-plant.yaml', 'safety-interlock.yaml', 'uplink-mqtt.yaml'].map((n) => ({ name: n, text: readFileSync(path.join(dir, 'examples', n), 'utf8') })),
  ];
}

/** Every property name and string constant of the schema: the words a near-valid document is made of. */
function schemaVocabulary(): { keys: string[]; words: string[] } {
  const keys = new Set<string>();
  const words = new Set<string>();
  const walk = (s: unknown): void => {
    if (Array.isArray(s)) return s.forEach(walk);
    if (typeof s !== 'object' || s === null) return;
    const o = s as Record<string, unknown>;
    if (typeof o['properties'] === 'object' && o['properties'] !== null) Object.keys(o['properties']).forEach((k) => keys.add(k));
    if (typeof o['const'] === 'string') words.add(o['const']);
    Object.values(o).forEach(walk);
  };
  walk(configJsonSchema());
  return { keys: [...keys].sort(), words: [...words].sort() };
}

function memoryFiles(main: string, dropIns: readonly string[]): ConfigFiles {
  const files = new Map<string, string>([[MAIN, main], ...dropIns.map((t, i) => [path.join(DROP_DIR, `${String(i).padStart(2, '0')}.yaml`), t] as [string, string])]);
  return {
    read: async (f, limit) => {
      const t = files.get(f);
      if (t === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      const bytes = new TextEncoder().encode(t);
      return bytes.length > limit ? { kind: 'too-large', size: bytes.length } : { kind: 'bytes', bytes };
    },
    list: async (dir) => (dir === DROP_DIR ? [...files.keys()].filter((f) => f.startsWith(`${DROP_DIR}/`)).map((f) => path.basename(f)) : []),
    kind: async (p) => (files.has(p) ? 'file' : p === DROP_DIR || p === path.dirname(MAIN) || DROP_DIR.startsWith(`${p}/`) || p === '/' ? 'dir' : null),
  };
}

/**
 * Runs `fn` with process warnings muted: the yaml library reports unknown directives, unresolved tags
 * and the like through process.emitWarning (they are not errors), and thousands of fuzzed documents
 * would flood the output.
 */
async function withoutYamlWarnings<T>(fn: () => Promise<T>): Promise<T> {
  const emit = process.emitWarning;
  process.emitWarning = (() => undefined) as typeof process.emitWarning;
  try {
    return await fn();
  } finally {
    process.emitWarning = emit;
  }
}

/** Loads text through the real loader and checks the loader's contract on the outcome. */
async function loadChecked(validator: ConfigValidator, main: string, dropIns: readonly string[] = []): Promise<void> {
  let loaded;
  try {
    loaded = await withoutYamlWarnings(() => loadConfig(MAIN, memoryFiles(main, dropIns), validator));
  } catch (e) {
    const err = expectOutpostError(e, CONFIG_INPUT_CODES);
    if (err.code === 'OUTPOST_E_CONFIG_INVALID' && Array.isArray(err.details['problems'])) checkProblems(err);
    return;
  }
  check(deeplyFrozen(loaded.config), 'the loaded configuration is not deeply frozen');
  check(path.isAbsolute(loaded.config.gateway.dataDir), 'gateway.dataDir is not absolute');
}

function checkProblems(err: OutpostError): void {
  const problems = err.details['problems'] as Array<{ path?: unknown; file?: unknown; message?: unknown }>;
  check(problems.length > 0, 'OUTPOST_E_CONFIG_INVALID without a problem');
  for (const p of problems) {
    // A problem names where it is: a path in the document, or (for a whole-file problem) the file.
    check((typeof p.path === 'string' && p.path.length > 0) || (typeof p.file === 'string' && p.file.length > 0), 'a problem without a path or a file');
    check(typeof p.message === 'string' && p.message.length > 0 && !p.message.includes('undefined'), `a problem without a clear message: ${String(p.message)}`);
  }
}

/** A JSON-like document whose keys are mostly schema words, prototype names and the odd random key. */
function documentArb(keys: readonly string[], words: readonly string[]): fc.Arbitrary<unknown> {
  const key = fc.oneof({ weight: 10, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.constantFrom(...HOSTILE_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });
  const leaf = fc.oneof(
    fc.constantFrom(...words),
    fc.constantFrom(0, 1, -1, 502, 65535, 65536, 1e21, 0.5, -0.0),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.string({ maxLength: 12 }),
  );
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('value'), { maxLength: 4 }), fc.dictionary(key, tie('value'), { maxKeys: 5 })),
  }));
  return fc.dictionary(key, value, { maxKeys: 6 });
}

/** A path into a document and one edit there: set a value, delete, add a key, duplicate a list item. */
type Edit = { readonly picks: readonly number[]; readonly op: 'set' | 'delete' | 'add' | 'dup'; readonly key: string; readonly value: unknown };

function applyEdit(doc: unknown, edit: Edit): void {
  let node = doc;
  for (const pick of edit.picks) {
    const children = childKeys(node);
    if (children.length === 0) break;
    const k = children[pick % children.length] as string | number;
    const next = (node as Record<string | number, unknown>)[k];
    if (typeof next !== 'object' || next === null) {
      editAt(node as Record<string | number, unknown>, k, edit);
      return;
    }
    node = next;
  }
  const children = childKeys(node);
  if (edit.op === 'add' && !Array.isArray(node) && typeof node === 'object' && node !== null) {
    Object.defineProperty(node, edit.key, { value: structuredClone(edit.value), enumerable: true, writable: true, configurable: true });
  } else if (children.length > 0) {
    editAt(node as Record<string | number, unknown>, children[(edit.picks.at(-1) ?? 0) % children.length] as string | number, edit);
  }
}

function childKeys(node: unknown): Array<string | number> {
  if (Array.isArray(node)) return node.map((_, i) => i);
  if (typeof node === 'object' && node !== null) return Object.keys(node);
  return [];
}

function editAt(parent: Record<string | number, unknown>, k: string | number, edit: Edit): void {
  if (edit.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(k), 1);
    else delete parent[k];
  } else if (edit.op === 'dup' && Array.isArray(parent)) {
    parent.push(structuredClone(parent[Number(k)]));
  } else {
    // A copy: the generated value may be shared between runs (fast-check reuses values), and later edits change it.
    parent[k] = structuredClone(edit.value);
  }
}

export function configTargets(): FuzzTarget[] {
  const shipped = shippedConfigs();
  const vocabulary = schemaVocabulary();
  const yamlTokens = [...vocabulary.keys.map((k) => `${k}: `), ...vocabulary.words, '\n', '  ', '- ', '{', '}', '[', ']', ',', ':', '"', "'", '&a ', '*a', '!!str ', '!!binary ', '<<: ', '#', '---\n', '...\n', '? ', '|\n', '>\n', '~', 'null', 'true', '0x1F', '.inf', '1e400', '__proto__: '];
  const editArb = (keys: readonly string[], words: readonly string[]): fc.Arbitrary<Edit> =>
    fc.record({
      picks: fc.array(fc.nat(), { maxLength: 8 }),
      op: fc.constantFrom('set', 'delete', 'add', 'dup'),
      key: fc.oneof(fc.constantFrom(...keys), fc.constantFrom(...HOSTILE_KEYS)),
      value: fc.oneof(fc.constantFrom(...words), fc.integer({ min: -70000, max: 70000 }), fc.double(), fc.boolean(), fc.constant(null), fc.string({ maxLength: 8 }), fc.constant(null).map(() => []), fc.constant(null).map(() => ({}))),
    });

  return [
    {
      name: 'config.arbitrary-text',
      runs: 300,
      property: () => {
        const validator = new ConfigValidator();
        return fc.asyncProperty(fc.oneof(anyText(300), tokenSoup(yamlTokens, 60)), fc.array(fc.oneof(anyText(100), tokenSoup(yamlTokens, 30)), { maxLength: 2 }), (main, dropIns) =>
          loadChecked(validator, main, dropIns),
        );
      },
    },
    {
      name: 'config.near-valid-text',
      runs: 150,
      property: () => {
        const validator = new ConfigValidator();
        const alphabet = ['\n', ' ', ':', '-', '{', '}', '[', ']', ',', '"', "'", '#', '0', 'a', '&', '*', '\t', '\\', '\u0000', '\u00e9', '\ud800'];
        return fc.asyncProperty(mutateText(fc.constantFrom(...shipped.map((s) => s.text)), alphabet), (text) => loadChecked(validator, text));
      },
    },
    {
      name: 'config.documents',
      runs: 200,
      property: () => {
        const validator = new ConfigValidator();
        return fc.asyncProperty(documentArb(vocabulary.keys, vocabulary.words), fc.boolean(), (doc, asJson) => loadChecked(validator, asJson ? JSON.stringify(doc) : stringifyYaml(doc)));
      },
    },
    {
      name: 'config.mutated-documents',
      runs: 200,
      property: () => {
        const validator = new ConfigValidator();
        const bases = shipped.map((s) => parseYaml(s.text) as unknown);
        return fc.property(fc.nat({ max: bases.length - 1 }), fc.array(editArb(vocabulary.keys, vocabulary.words), { minLength: 1, maxLength: 4 }), (which, edits) => {
          const doc = structuredClone(bases[which]);
          for (const e of edits) applyEdit(doc, e);
          let config;
          try {
            config = validator.validate(doc, ['fuzz.yaml'], '/fuzz');
          } catch (e) {
            checkProblems(expectOutpostError(e, CONFIG_INPUT_CODES));
            return;
          }
          check(deeplyFrozen(config), 'the validated configuration is not deeply frozen');
          // Validating what validation produced changes nothing (defaults applied once, paths resolved once).
          const again = validator.validate(config, ['fuzz.yaml'], '/fuzz');
          check(JSON.stringify(again) === JSON.stringify(config), 'validating a validated configuration changed it');
        });
      },
    },
    {
      name: 'config.merge-identity',
      runs: 300,
      property: () =>
        // A single file is the merge of itself into nothing: every key of the document reaches the validator.
        fc.property(documentArb(vocabulary.keys, vocabulary.words), (doc) => {
          const merged = mergeConfig({}, doc);
          // A null at the top removes the key (there is nothing under it to remove); everything else arrives as written.
          const expected = Object.fromEntries(Object.entries(doc as Record<string, unknown>).filter(([, v]) => v !== null));
          check(JSON.stringify(merged) === JSON.stringify(expected), 'mergeConfig({}, doc) lost or changed a key of doc');
        }),
    },
  ];
}
