import type { DeadbandConfig, RangeConfig, ScaleConfig } from '../../hal/schema-common.js';
import type { PointValue, Quality } from '../../hal/types.js';

/** Applies `raw × factor + offset` to numbers; other values pass unchanged. */
export function applyScale(value: PointValue | null, scale: ScaleConfig | undefined): PointValue | null {
  if (scale === undefined || typeof value !== 'number') return value;
  return value * scale.factor + scale.offset;
}

/**
 * Inverse of applyScale for writes given in engineering units. A result within 1e-6 of an integer
 * is rounded, so `60` with factor 0.1 writes register value 600, not 599.9999999999999.
 */
export function unapplyScale(value: PointValue, scale: ScaleConfig | undefined): PointValue {
  if (scale === undefined || typeof value !== 'number') return value;
  const raw = (value - scale.offset) / scale.factor;
  const nearest = Math.round(raw);
  return Math.abs(raw - nearest) < 1e-6 ? nearest : raw;
}

function sameQuality(a: Quality, b: Quality): boolean {
  return a.status === b.status && (a.status === 'good' || (b.status !== 'good' && a.reason === b.reason));
}

/**
 * Decides which samples of one point are reported (report by exception).
 * Invariants: the first sample is always reported; a change of quality is always reported;
 * a numeric value is reported when it moved beyond the deadband from the last *reported* value
 * (so slow drifts are not lost); without a deadband any change is reported; with `heartbeatMs`,
 * an unchanged value is reported again once that long has passed since the last report.
 */
export class ReportFilter {
  private last: { value: PointValue | null; quality: Quality; at: number } | null = null;

  constructor(
    private readonly deadband: DeadbandConfig | undefined,
    private readonly range: RangeConfig | undefined,
    private readonly heartbeatMs: number | undefined,
  ) {}

  /** Returns true when the sample should be reported, and then remembers it as the last report. */
  offer(value: PointValue | null, quality: Quality, monotonicMs: number): boolean {
    const report = this.shouldReport(value, quality, monotonicMs);
    if (report) this.last = { value, quality, at: monotonicMs };
    return report;
  }

  private shouldReport(value: PointValue | null, quality: Quality, now: number): boolean {
    const last = this.last;
    if (last === null || !sameQuality(last.quality, quality)) return true;
    if (this.heartbeatMs !== undefined && now - last.at >= this.heartbeatMs) return true;
    if (typeof value === 'number' && typeof last.value === 'number') {
      if (Number.isNaN(value) || Number.isNaN(last.value)) return Number.isNaN(value) !== Number.isNaN(last.value);
      return this.moved(last.value, value);
    }
    return value !== last.value;
  }

  private moved(last: number, value: number): boolean {
    const delta = Math.abs(value - last);
    const db = this.deadband;
    if (db === undefined) return delta > 0;
    if ('absolute' in db) return delta > db.absolute;
    const span = this.range ? Math.abs(this.range.max - this.range.min) : Math.abs(last);
    return span === 0 ? delta > 0 : delta > (db.percent / 100) * span;
  }
}

/** Rate of change between consecutive good samples, in units per `perMs`. */
export class RateOfChange {
  private prev: { value: number; time: number } | null = null;

  constructor(private readonly perMs: number) {}

  /** Returns the rate, or null for the first sample, a non-increasing time or a non-number. */
  offer(value: PointValue | null, time: number): number | null {
    if (typeof value !== 'number') {
      this.prev = null;
      return null;
    }
    const prev = this.prev;
    this.prev = { value, time };
    if (prev === null || time <= prev.time) return null;
    return ((value - prev.value) / (time - prev.time)) * this.perMs;
  }
}

export type Aggregate = 'min' | 'max' | 'mean' | 'count' | 'sum';

/**
 * Accumulates one tumbling window. Invariant: `close()` returns the aggregate of the values offered
 * since the previous close and starts a new, empty window.
 */
export class TumblingWindow {
  private count = 0;
  private sum = 0;
  private min = Infinity;
  private max = -Infinity;

  constructor(private readonly aggregate: Aggregate) {}

  offer(value: PointValue | null): void {
    const v = typeof value === 'boolean' ? Number(value) : value;
    if (typeof v !== 'number' || !Number.isFinite(v)) return;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The aggregate, or null when the window held no value (except `count`, which is then 0). */
  close(): number | null {
    const { count, sum, min, max } = this;
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = -Infinity;
    switch (this.aggregate) {
      case 'count':
        return count;
      case 'sum':
        return count === 0 ? null : sum;
      case 'mean':
        return count === 0 ? null : sum / count;
      case 'min':
        return count === 0 ? null : min;
      case 'max':
        return count === 0 ? null : max;
    }
  }
}
