import type { ErrorCode } from '../errors/catalog.js';
import { OutpostError } from '../errors/outpost-error.js';
import type { ConfigProblem } from './error-format.js';

/** Problems shown per file before "… and N more" (a file of garbage can make a parser report thousands). */
export const MAX_PROBLEMS_PER_FILE = 20;

const DEFAULT_CODE: ErrorCode = 'OUTPOST_E_CONFIG_INVALID';

/**
 * One line per problem: `file:line:col: [CODE: ]path: message ← reason`. The code is shown when it
 * differs from the code of the whole error (several kinds of problem in one report).
 */
export function problemLine(p: ConfigProblem, top: ErrorCode): string {
  const pos = p.line === undefined ? '' : p.col === undefined ? `:${p.line}` : `:${p.line}:${p.col}`;
  const where = p.file === undefined ? '' : `${p.file}${pos}: `;
  const code = (p.code ?? DEFAULT_CODE) === top ? '' : `${p.code ?? DEFAULT_CODE}: `;
  const at = p.path === '' ? '' : `${p.path}: `;
  const reason = p.reason === undefined ? '' : ` ← ${p.reason}`;
  return `${where}${code}${at}${p.message}${reason}`;
}

/** The code of a report: the problems' own code when they all share one, OUTPOST_E_CONFIG_INVALID otherwise. */
export function reportCode(problems: readonly ConfigProblem[]): ErrorCode {
  const codes = new Set(problems.map((p) => p.code ?? DEFAULT_CODE));
  return codes.size === 1 ? ([...codes][0] as ErrorCode) : DEFAULT_CODE;
}

/** Keeps the first MAX_PROBLEMS_PER_FILE problems of each file and says how many were left out. */
export function capPerFile(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const count = new Map<string, number>();
  const out: ConfigProblem[] = [];
  for (const p of problems) {
    const key = p.file ?? '';
    const n = (count.get(key) ?? 0) + 1;
    count.set(key, n);
    if (n <= MAX_PROBLEMS_PER_FILE) out.push(p);
  }
  for (const [file, n] of count) {
    if (n > MAX_PROBLEMS_PER_FILE) out.push({ ...(file === '' ? {} : { file }), path: '', message: `… and ${n - MAX_PROBLEMS_PER_FILE} more problem(s) in this file` });
  }
  return out;
}

/**
 * The one error a configuration load throws: every problem found, one line each, in file order.
 * Invariant: `details.problems` holds the same problems as the message (structured), `details.files` the files read.
 */
export function configError(problems: readonly ConfigProblem[], files: readonly string[]): OutpostError {
  const shown = capPerFile(problems);
  const code = reportCode(problems);
  const title = code === 'OUTPOST_E_CONFIG_INVALID' ? 'invalid configuration' : 'configuration refused';
  const count = problems.length === 1 ? '' : ` (${problems.length} problems)`;
  return new OutpostError(code, `${title}${count}:\n  ${shown.map((p) => problemLine(p, code)).join('\n  ')}`, {
    details: { problems: shown, files: [...files] },
  });
}
