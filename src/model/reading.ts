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
  /** The outputs the rule holds after this transition (its `onTrigger` points when triggered, none when released): writes to them from elsewhere are refused. */
  readonly holds: readonly string[];
  /** From the sample's arrival to the last action's completion, ms. */
  readonly latencyMs: number;
}

/**
 * Something the gateway itself reports upstream once (e.g. `ota.rolled-back`), outside routes: sent
 * on the reserved upstream route SYSTEM_ROUTE and published on the local broker under `system/<event>`.
 */
export interface SystemEvent {
  /** Dotted name, e.g. `ota.committed`. */
  readonly event: string;
  /** ms since the Unix epoch. */
  readonly time: number;
  readonly bootId: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** The upstream route of system events; route ids in the configuration cannot start with `$`. */
export const SYSTEM_ROUTE = '$system';

/** What flows through routes (readings, rule events) and upstream (also system events), with its source path. */
export type Message =
  | { readonly kind: 'reading'; readonly source: string; readonly body: Reading }
  | { readonly kind: 'event'; readonly source: string; readonly body: RuleEvent }
  | { readonly kind: 'system'; readonly source: string; readonly body: SystemEvent };
