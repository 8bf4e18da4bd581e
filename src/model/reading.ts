import type { PointValue, Quality } from '../../hal/types.js';

/**
 * A reading as it leaves the edge pipeline. `seq` counts the readings of one point within one run
 * (no gaps unless readings were lost); `bootId` changes at every start of the runtime, so a consumer
 * detects both gaps and restarts.
 */
export interface Reading {
  readonly point: string;
  readonly device: string;
  readonly value: PointValue | null;
  readonly quality: Quality['status'];
  /** Present when quality is bad or uncertain. */
  readonly reason?: string;
  /** ms since the Unix epoch. */
  readonly sourceTime: number;
  readonly seq: number;
  readonly bootId: string;
  /** Set when the system clock was not known to be synchronised when the sample was taken. */
  readonly timeUncertain?: true;
}

/** A rule transition, published as an event. */
export interface RuleEvent {
  readonly rule: string;
  readonly state: 'triggered' | 'released';
  readonly point: string;
  readonly value: PointValue | null;
  readonly quality: Quality['status'];
  readonly time: number;
  readonly bootId: string;
  /** Outcome of each action, in order. */
  readonly actions: ReadonlyArray<{ readonly point: string; readonly ok: boolean; readonly error?: string }>;
  /** From the sample's arrival to the last action's completion, ms. */
  readonly latencyMs: number;
}

/** What flows through routes: a reading or a rule event, with the route source path it is matched against. */
export type Message =
  | { readonly kind: 'reading'; readonly source: string; readonly body: Reading }
  | { readonly kind: 'event'; readonly source: string; readonly body: RuleEvent };
