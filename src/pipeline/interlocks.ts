import type { ActionConfig } from '../config/schema.js';
import { OutpostError } from '../errors/outpost-error.js';
import type { RuleState } from './rule.js';

/** A rule holding an output, as `/api/points` shows it. */
export interface Holder {
  readonly rule: string;
  readonly allowOverride: boolean;
}

export interface InterlockRule {
  readonly id: string;
  readonly failSafe: boolean;
  readonly allowOverride: boolean;
  readonly onTrigger: readonly ActionConfig[];
  /** The rule's current state (read at every check, never cached). */
  readonly state: () => RuleState;
}

/**
 * Interlocks: a rule in its triggered state owns the outputs its `onTrigger` actions write, like a
 * safety interlock in a PLC program. A fail-safe rule also holds them before its first good reading
 * (state `unknown`): an unproven sensor is not a reason to run. While held, a write from anyone else
 * (the API, the local broker, cloud commands, other rules) is refused with
 * OUTPOST_E_RUNTIME_INTERLOCKED naming the rule, unless the rule has `allowOverride`.
 * Invariants: pure (state is read from the rules' machines at each call); a rule that holds a point
 * may write it (two triggered rules holding one output both own it; the configuration check makes
 * them agree on the value); any other write is refused while a holder refuses overrides.
 */
export class Interlocks {
  private readonly byPoint = new Map<string, InterlockRule[]>();
  private readonly outputs = new Map<string, readonly string[]>();

  constructor(rules: readonly InterlockRule[]) {
    for (const r of rules) {
      const points = [...new Set(r.onTrigger.map((a) => a.write.point))];
      this.outputs.set(r.id, points);
      for (const p of points) {
        const list = this.byPoint.get(p) ?? [];
        list.push(r);
        this.byPoint.set(p, list);
      }
    }
  }

  /** Whether a rule in `state` holds its outputs. */
  static holding(state: RuleState, failSafe: boolean): boolean {
    return state === 'triggered' || (state === 'unknown' && failSafe);
  }

  /** The outputs a rule holds while triggered (its `onTrigger` points), whether or not it holds them now. */
  outputsOf(rule: string): readonly string[] {
    return this.outputs.get(rule) ?? [];
  }

  /** The rules holding `point` right now, in configuration order. */
  holders(point: string): Holder[] {
    return (this.byPoint.get(point) ?? [])
      .filter((r) => Interlocks.holding(r.state(), r.failSafe))
      .map((r) => ({ rule: r.id, allowOverride: r.allowOverride }));
  }

  /**
   * Checks a write to `point` by `writer` (a rule id, or null for every other path). Throws
   * OUTPOST_E_RUNTIME_INTERLOCKED when a holder other than the writer refuses overrides; otherwise
   * returns the holders the write overrides (to be logged), empty when the point is free.
   */
  check(point: string, writer: string | null): Holder[] {
    const holders = this.holders(point);
    const others = holders.filter((h) => h.rule !== writer);
    if (others.length < holders.length) return [];
    const refusing = others.filter((h) => !h.allowOverride);
    if (refusing.length > 0) {
      const rule = (refusing[0] as Holder).rule;
      throw new OutpostError('OUTPOST_E_RUNTIME_INTERLOCKED', `point ${point} is held by rule ${rule} (triggered); writes are refused until it releases`, {
        details: { point, rule, heldBy: refusing.map((h) => h.rule), ...(writer !== null ? { writer: `rule:${writer}` } : {}) },
      });
    }
    return others;
  }
}
