import fc from 'fast-check';
import { ERROR_CATALOG, type ErrorCode } from '../../src/errors/catalog.js';
import { OutpostError } from '../../src/errors/outpost-error.js';

/**
 * One fuzz target: a fast-check property over one parser of hostile input. The same targets run
 * briefly inside `npm test` (test/fuzz/, `runs` runs each) and for a time budget in `npm run bench:fuzz`.
 * Invariant: `property()` builds a fresh property with no state shared between two calls, so a
 * target can be run again (other seed, other budget) in the same process.
 */
export interface FuzzTarget {
  /** `<area>.<what>`, e.g. `routes.arbitrary-text`. */
  readonly name: string;
  /** Runs inside `npm test`; sized so the whole test/fuzz folder stays well under 30 s on a quiet 2-core machine. */
  readonly runs: number;
  property(): fc.IRawProperty<any, boolean>;
}

/** The command that replays one counterexample in vitest (FUZZ_PATH makes fast-check run exactly that case). */
export function replayCommand(name: string, seed: number, path: string | null): string {
  return `replay: FUZZ_SEED=${seed}${path ? ` FUZZ_PATH='${path}'` : ''} npx vitest run test/fuzz -t '${name}'`;
}

/** Thrown by a property when a check fails (fast-check reports it with the counterexample and the seed). */
export class PropertyViolation extends Error {
  override readonly name = 'PropertyViolation';
}

export function check(condition: unknown, what: string): asserts condition {
  if (!condition) throw new PropertyViolation(what);
}

/** Passes when `e` is an OutpostError with one of `codes`; any other thrown value violates the property. */
export function expectOutpostError(e: unknown, codes: readonly ErrorCode[]): OutpostError {
  if (!(e instanceof OutpostError)) {
    throw new PropertyViolation(`threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)} instead of an OutpostError (${codes.join(', ')})`, { cause: e });
  }
  check(codes.includes(e.code), `threw ${e.code} instead of one of ${codes.join(', ')}`);
  check(Object.hasOwn(ERROR_CATALOG, e.code), `code ${e.code} is not in the catalog`);
  check(typeof e.message === 'string' && e.message.length > 0, 'the error has no message');
  return e;
}

/** True when the value and everything reachable from it is frozen. */
export function deeplyFrozen(value: unknown, seen = new Set<unknown>()): boolean {
  if (typeof value !== 'object' || value === null || seen.has(value)) return true;
  seen.add(value);
  if (!Object.isFrozen(value)) return false;
  return Object.values(value).every((v) => deeplyFrozen(v, seen));
}

/** Names that have tripped JavaScript parsers before: prototype keys and lookalikes. */
export const HOSTILE_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'] as const;

/** Text of every kind: ASCII, any UTF-16 unit (lone surrogates included), whole code points. */
export function anyText(maxLength = 200): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ maxLength }),
    fc.string({ unit: 'binary', maxLength }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength }),
  );
}

/** Text built from the given tokens (and a few arbitrary characters), for near-valid input. */
export function tokenSoup(tokens: readonly string[], maxTokens = 40): fc.Arbitrary<string> {
  return fc
    .array(fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...tokens) }, { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 2 }) }), { maxLength: maxTokens })
    .map((parts) => parts.join(''));
}

/** Applies one random edit (insert, delete, replace, duplicate a slice) at a random place in `text`. */
export function mutateText(text: fc.Arbitrary<string>, alphabet: readonly string[]): fc.Arbitrary<string> {
  return fc
    .tuple(text, fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.constantFrom(...alphabet), fc.nat({ max: 8 })), { minLength: 1, maxLength: 3 }))
    .map(([t, edits]) => {
      let out = t;
      for (const [at, kind, ch, len] of edits) {
        const i = out.length === 0 ? 0 : at % (out.length + 1);
        if (kind === 0) out = out.slice(0, i) + ch + out.slice(i);
        else if (kind === 1) out = out.slice(0, i) + out.slice(i + 1 + len);
        else if (kind === 2) out = out.slice(0, i) + ch + out.slice(i + 1);
        else out = out.slice(0, i) + out.slice(i, i + len) + out.slice(i);
      }
      return out;
    });
}
