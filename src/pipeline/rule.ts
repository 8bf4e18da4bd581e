import type { PointValue, Quality } from '../../hal/types.js';
import type { RuleConfig } from '../config/schema.js';

export type RuleState = 'unknown' | 'normal' | 'triggered';

/**
 * The threshold-with-hysteresis state machine of one rule (pure: no I/O).
 * Invariants: `above` triggers when value > threshold and releases only when value < threshold −
 * hysteresis (`below` mirrors this); a bad or uncertain sample changes nothing unless `failSafe`,
 * in which case a bad sample triggers; the first good sample leaves `unknown` for `normal` or
 * `triggered`. `evaluate` returns the transition to act on, or null.
 */
export class RuleMachine {
  private current: RuleState = 'unknown';

  constructor(private readonly rule: Pick<RuleConfig, 'when' | 'threshold' | 'hysteresis' | 'failSafe'>) {}

  get state(): RuleState {
    return this.current;
  }

  evaluate(value: PointValue | null, quality: Quality): 'trigger' | 'release' | 'initial-normal' | null {
    if (quality.status !== 'good' || value === null || typeof value === 'string') {
      if (this.rule.failSafe && quality.status === 'bad' && this.current !== 'triggered') {
        this.current = 'triggered';
        return 'trigger';
      }
      return null;
    }
    const v = typeof value === 'boolean' ? Number(value) : value;
    const { threshold, hysteresis } = this.rule;
    const crossed = this.rule.when === 'above' ? v > threshold : v < threshold;
    const cleared = this.rule.when === 'above' ? v < threshold - hysteresis : v > threshold + hysteresis;
    switch (this.current) {
      case 'unknown':
        if (crossed) {
          this.current = 'triggered';
          return 'trigger';
        }
        this.current = 'normal';
        return 'initial-normal';
      case 'normal':
        if (crossed) {
          this.current = 'triggered';
          return 'trigger';
        }
        return null;
      case 'triggered':
        if (cleared) {
          this.current = 'normal';
          return 'release';
        }
        return null;
    }
  }
}
