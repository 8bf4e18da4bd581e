import path from 'node:path';
import { formatCauseChain } from '../errors/outpost-error.js';
import type { ConfigProblem } from './error-format.js';
import { mergeTracked, type Tracked } from './merge.js';
import { parseSource } from './source-parse.js';
import { DROP_IN_NAME, MAX_CONFIG_FILE_BYTES, MAX_CONFIG_TOTAL_BYTES, MAX_DROP_INS, type ConfigFiles } from './source-read.js';

/** Limits of one load; the defaults are documented in docs/config.md and docs/security-config.md. */
export interface SourceLimits {
  readonly maxFileBytes?: number;
  readonly maxTotalBytes?: number;
  readonly maxDropIns?: number;
}

/** The files of one configuration, each parsed, with the problems of the files themselves. */
export interface ConfigSources {
  /** Directory of the main file (relative paths in the configuration are relative to it). */
  readonly dir: string;
  /** The main file, then the drop-ins in name order. */
  readonly files: readonly string[];
  /** One document per file that parsed, in the order of `files`, with origins. */
  readonly documents: readonly Tracked[];
  /** Problems of every file (unreadable, too large, not UTF-8, not YAML, empty…), all files checked. */
  readonly problems: readonly ConfigProblem[];
}

/**
 * Reads and parses `main` and the drop-ins of `config.d/` next to it (names matching DROP_IN_NAME,
 * in name order). Every file is checked, so one pass reports the problems of all of them.
 */
export async function readConfigSources(main: string, files: ConfigFiles, limits: SourceLimits = {}): Promise<ConfigSources> {
  const maxBytes = limits.maxFileBytes ?? MAX_CONFIG_FILE_BYTES;
  const maxDropIns = limits.maxDropIns ?? MAX_DROP_INS;
  const maxTotal = limits.maxTotalBytes ?? MAX_CONFIG_TOTAL_BYTES;
  let total = 0;
  const mainFile = path.resolve(main);
  const dir = path.dirname(mainFile);
  const dropDir = path.join(dir, 'config.d');
  const problems: ConfigProblem[] = [];
  let names: string[] = [];
  try {
    names = (await files.list(dropDir)).filter((n) => DROP_IN_NAME.test(n)).sort();
  } catch (e) {
    problems.push({ file: dropDir, code: 'OUTPOST_E_CONFIG_READ', path: '', message: 'cannot list the drop-in directory', reason: formatCauseChain(e) });
  }
  if (names.length > maxDropIns) {
    problems.push({ file: dropDir, code: 'OUTPOST_E_CONFIG_TOO_LARGE', path: '', message: `${names.length} drop-ins, more than the limit of ${maxDropIns}` });
    names = [];
  }
  const used = [mainFile, ...names.map((n) => path.join(dropDir, n))];
  const documents: Tracked[] = [];
  for (const file of used) {
    let read;
    try {
      read = await files.read(file, maxBytes);
    } catch (e) {
      problems.push({ file, code: 'OUTPOST_E_CONFIG_READ', path: '', message: 'cannot read the file', reason: formatCauseChain(e) });
      continue;
    }
    if (read.kind === 'not-a-file') {
      problems.push({ file, code: 'OUTPOST_E_CONFIG_READ', path: '', message: `not a regular file (${read.what})` });
      continue;
    }
    if (read.kind === 'too-large') {
      problems.push({ file, code: 'OUTPOST_E_CONFIG_TOO_LARGE', path: '', message: `${read.size} bytes, more than the limit of ${maxBytes} bytes per file` });
      continue;
    }
    total += read.bytes.length;
    if (total > maxTotal) {
      problems.push({ file, code: 'OUTPOST_E_CONFIG_TOO_LARGE', path: '', message: `with this file the configuration holds ${total} bytes, more than the limit of ${maxTotal} bytes for all files together` });
      break;
    }
    const parsed = parseSource(file, read.bytes);
    problems.push(...parsed.problems);
    if (parsed.value !== undefined) documents.push({ value: parsed.value, origin: parsed.origin });
  }
  return { dir, files: used, documents, problems };
}

/** The merge of the documents in order (see mergeTracked), with the origin of every value. */
export function mergeSources(documents: readonly Tracked[]): Tracked {
  let merged: Tracked = { value: {} };
  for (const d of documents) merged = mergeTracked(merged, d);
  return merged;
}
