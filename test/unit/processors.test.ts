import { describe, expect, it } from 'vitest';
import { GOOD, bad, uncertain } from '../../hal/types.js';
import { RateOfChange, ReportFilter, TumblingWindow, applyScale, unapplyScale } from '../../src/pipeline/processors.js';

describe('applyScale / unapplyScale', () => {
  it('applies raw × factor + offset to numbers', () => {
    expect(applyScale(100, { factor: 0.5, offset: -10 })).toBe(40);
    expect(applyScale(-3, { factor: 2, offset: 1 })).toBe(-5);
  });

  it('passes values through without a scale, and non-numbers always', () => {
    expect(applyScale(123, undefined)).toBe(123);
    expect(applyScale(true, { factor: 10, offset: 1 })).toBe(true);
    expect(applyScale('12', { factor: 10, offset: 1 })).toBe('12');
    expect(applyScale(null, { factor: 10, offset: 1 })).toBeNull();
  });

  it('writes 60 with factor 0.1 as exactly 600 (not 599.9999999999999)', () => {
    expect(unapplyScale(60, { factor: 0.1, offset: 0 })).toBe(600);
    expect(Number.isInteger(unapplyScale(60, { factor: 0.1, offset: 0 }))).toBe(true);
    // Where plain division does hit the floating-point trap, the result is still the integer.
    expect(0.7 / 0.1).not.toBe(7);
    expect(unapplyScale(0.7, { factor: 0.1, offset: 0 })).toBe(7);
    expect(0.3 / 0.1).not.toBe(3);
    expect(unapplyScale(0.3, { factor: 0.1, offset: 0 })).toBe(3);
    expect(unapplyScale(25.3, { factor: 0.1, offset: 20 })).toBe(53);
  });

  it('inverts the offset too, and keeps genuine fractions', () => {
    expect(unapplyScale(40, { factor: 0.5, offset: -10 })).toBe(100);
    expect(unapplyScale(1, { factor: 4, offset: 0 })).toBe(0.25);
    expect(unapplyScale(0.35, { factor: 0.1, offset: 0 })).toBeCloseTo(3.5, 12);
    expect(unapplyScale(0.35, { factor: 0.1, offset: 0 })).not.toBe(3);
  });

  it('round-trips with applyScale', () => {
    const scale = { factor: 0.01, offset: 273.15 };
    for (const raw of [0, 1, 599, -2500, 32767]) {
      expect(unapplyScale(applyScale(raw, scale) as number, scale)).toBe(raw);
    }
  });

  it('passes non-numbers and unscaled values through', () => {
    expect(unapplyScale(true, { factor: 0.1, offset: 0 })).toBe(true);
    expect(unapplyScale('on', { factor: 0.1, offset: 0 })).toBe('on');
    expect(unapplyScale(12.5, undefined)).toBe(12.5);
  });
});

describe('ReportFilter', () => {
  it('always reports the first sample', () => {
    expect(new ReportFilter({ absolute: 100 }, undefined, undefined).offer(5, GOOD, 0)).toBe(true);
    expect(new ReportFilter(undefined, undefined, undefined).offer(null, bad('timeout'), 0)).toBe(true);
  });

  it('without a deadband reports every change and no repeat', () => {
    const f = new ReportFilter(undefined, undefined, undefined);
    expect([f.offer(1, GOOD, 0), f.offer(1, GOOD, 1), f.offer(1.0001, GOOD, 2), f.offer(1.0001, GOOD, 3)]).toEqual([true, false, true, false]);
  });

  it('absolute deadband: reports only moves strictly beyond it', () => {
    const f = new ReportFilter({ absolute: 0.5 }, undefined, undefined);
    expect(f.offer(10, GOOD, 0)).toBe(true);
    expect(f.offer(10.3, GOOD, 1)).toBe(false);
    expect(f.offer(10.5, GOOD, 2)).toBe(false); // exactly the deadband is not beyond it
    expect(f.offer(9.6, GOOD, 3)).toBe(false);
    expect(f.offer(9.4, GOOD, 4)).toBe(true); // falling moves count too
  });

  it('absolute deadband is measured from the last REPORTED value, so a slow drift is eventually reported', () => {
    const f = new ReportFilter({ absolute: 0.5 }, undefined, undefined);
    expect(f.offer(10, GOOD, 0)).toBe(true);
    // Each step is 0.2: never beyond the deadband from the previous sample, but 0.6 from the last report.
    expect(f.offer(10.2, GOOD, 1)).toBe(false);
    expect(f.offer(10.4, GOOD, 2)).toBe(false);
    expect(f.offer(10.6, GOOD, 3)).toBe(true);
    // The reference is now 10.6.
    expect(f.offer(10.8, GOOD, 4)).toBe(false);
    expect(f.offer(11.0, GOOD, 5)).toBe(false);
    expect(f.offer(11.2, GOOD, 6)).toBe(true);
  });

  it('percent deadband with a range uses the span of the range', () => {
    const f = new ReportFilter({ percent: 5 }, { min: -100, max: 100 }, undefined); // 5 % of 200 = 10
    expect(f.offer(1, GOOD, 0)).toBe(true);
    expect(f.offer(10.5, GOOD, 1)).toBe(false); // 9.5 from the report
    expect(f.offer(11.5, GOOD, 2)).toBe(true); // 10.5 from the report
    expect(f.offer(2, GOOD, 3)).toBe(false); // 9.5 back down: within 10
  });

  it('percent deadband without a range uses the last reported value', () => {
    const f = new ReportFilter({ percent: 10 }, undefined, undefined);
    expect(f.offer(200, GOOD, 0)).toBe(true);
    expect(f.offer(219, GOOD, 1)).toBe(false); // 10 % of 200 = 20
    expect(f.offer(221, GOOD, 2)).toBe(true);
    expect(f.offer(242, GOOD, 3)).toBe(false); // now 10 % of 221 = 22.1
    expect(f.offer(243.2, GOOD, 4)).toBe(true);
    const neg = new ReportFilter({ percent: 10 }, undefined, undefined);
    neg.offer(-200, GOOD, 0);
    expect(neg.offer(-181, GOOD, 1)).toBe(false); // 10 % of |−200|
    expect(neg.offer(-179, GOOD, 2)).toBe(true);
  });

  it('percent deadband from a last value of 0 reports any change', () => {
    const f = new ReportFilter({ percent: 50 }, undefined, undefined);
    f.offer(0, GOOD, 0);
    expect(f.offer(0, GOOD, 1)).toBe(false);
    expect(f.offer(0.001, GOOD, 2)).toBe(true);
  });

  it('always reports a change of quality, whatever the deadband', () => {
    const f = new ReportFilter({ absolute: 1000 }, undefined, undefined);
    expect(f.offer(10, GOOD, 0)).toBe(true);
    expect(f.offer(10, uncertain('stale'), 1)).toBe(true);
    expect(f.offer(10, uncertain('stale'), 2)).toBe(false);
    expect(f.offer(null, bad('timeout'), 3)).toBe(true);
    expect(f.offer(null, bad('timeout'), 4)).toBe(false);
    expect(f.offer(null, bad('exception 2'), 5)).toBe(true); // another reason is another quality
    expect(f.offer(10, GOOD, 6)).toBe(true); // back to good with the same value as before
    expect(f.offer(10.5, GOOD, 7)).toBe(false);
  });

  it('heartbeat re-reports an unchanged value once heartbeatMs passed since the last report', () => {
    const f = new ReportFilter({ absolute: 1 }, undefined, 1000);
    expect(f.offer(5, GOOD, 0)).toBe(true);
    expect(f.offer(5, GOOD, 999)).toBe(false);
    expect(f.offer(5, GOOD, 1000)).toBe(true);
    expect(f.offer(5, GOOD, 1500)).toBe(false); // measured from the report at 1000
    expect(f.offer(5.5, GOOD, 2000)).toBe(true); // a change inside the deadband rides the heartbeat
    expect(f.offer(5.9, GOOD, 2100)).toBe(false); // reference is now 5.5
    expect(f.offer(6.6, GOOD, 2200)).toBe(true);
  });

  it('without heartbeat an unchanged value is never re-reported', () => {
    const f = new ReportFilter(undefined, undefined, undefined);
    f.offer(5, GOOD, 0);
    expect(f.offer(5, GOOD, 10_000_000)).toBe(false);
  });

  it('non-numbers are reported on change only', () => {
    const f = new ReportFilter({ absolute: 10 }, undefined, undefined);
    expect(f.offer('idle', GOOD, 0)).toBe(true);
    expect(f.offer('idle', GOOD, 1)).toBe(false);
    expect(f.offer('run', GOOD, 2)).toBe(true);
    expect(f.offer(true, GOOD, 3)).toBe(true);
    expect(f.offer(true, GOOD, 4)).toBe(false);
    expect(f.offer(false, GOOD, 5)).toBe(true);
    expect(f.offer(0, GOOD, 6)).toBe(true); // a number after a boolean is a change
    expect(f.offer('0', GOOD, 7)).toBe(true); // and a string after a number
  });
});

describe('RateOfChange', () => {
  it('returns null for the first sample, then the rate in units per perMs', () => {
    const perSecond = new RateOfChange(1000);
    expect(perSecond.offer(10, 0)).toBeNull();
    expect(perSecond.offer(20, 500)).toBe(20); // 10 in 0.5 s
    expect(perSecond.offer(15, 1500)).toBe(-5);
    const perMinute = new RateOfChange(60_000);
    perMinute.offer(100, 1_000_000);
    expect(perMinute.offer(101, 1_030_000)).toBe(2); // 1 in 30 s = 2 per minute
    const perMs = new RateOfChange(1);
    perMs.offer(0, 0);
    expect(perMs.offer(8, 4)).toBe(2);
  });

  it('returns null for a non-increasing time', () => {
    const r = new RateOfChange(1000);
    r.offer(10, 1000);
    expect(r.offer(11, 1000)).toBeNull();
    expect(r.offer(12, 900)).toBeNull();
    expect(r.offer(13, 1900)).toBe(1); // the newest sample is the reference
  });

  it('resets on a non-number: the next number is a first sample again', () => {
    const r = new RateOfChange(1000);
    r.offer(10, 0);
    expect(r.offer(null, 1000)).toBeNull();
    expect(r.offer(20, 2000)).toBeNull();
    expect(r.offer(30, 3000)).toBe(10);
    expect(r.offer('x', 4000)).toBeNull();
    expect(r.offer(40, 5000)).toBeNull();
    expect(r.offer(true, 6000)).toBeNull();
    expect(r.offer(50, 7000)).toBeNull();
    expect(r.offer(52, 8000)).toBe(2);
  });
});

describe('TumblingWindow', () => {
  const feed = (w: TumblingWindow) => {
    for (const v of [4, -2, 10, 3]) w.offer(v);
    return w.close();
  };

  it('computes min, max, mean, count and sum of the window', () => {
    expect(feed(new TumblingWindow('min'))).toBe(-2);
    expect(feed(new TumblingWindow('max'))).toBe(10);
    expect(feed(new TumblingWindow('mean'))).toBe(3.75);
    expect(feed(new TumblingWindow('count'))).toBe(4);
    expect(feed(new TumblingWindow('sum'))).toBe(15);
  });

  it('counts booleans as 1/0 and ignores strings, null and non-finite numbers', () => {
    const w = new TumblingWindow('sum');
    for (const v of [true, false, true, 'nine', null, Number.NaN, Infinity, 2]) w.offer(v);
    expect(w.close()).toBe(4);
    const c = new TumblingWindow('count');
    for (const v of [true, 'x', null, Number.NaN, 1]) c.offer(v);
    expect(c.close()).toBe(2);
  });

  it('an empty window yields null, except count (0)', () => {
    expect(new TumblingWindow('min').close()).toBeNull();
    expect(new TumblingWindow('max').close()).toBeNull();
    expect(new TumblingWindow('mean').close()).toBeNull();
    expect(new TumblingWindow('count').close()).toBe(0);
    expect(new TumblingWindow('sum').close()).toBeNull(); // "no data", not a good 0
  });

  it('close() starts a new, empty window', () => {
    const max = new TumblingWindow('max');
    max.offer(100);
    expect(max.close()).toBe(100);
    expect(max.close()).toBeNull();
    max.offer(-5);
    expect(max.close()).toBe(-5); // not 100: the old maximum is gone

    const min = new TumblingWindow('min');
    min.offer(-100);
    min.close();
    min.offer(7);
    expect(min.close()).toBe(7);

    const mean = new TumblingWindow('mean');
    mean.offer(10);
    mean.offer(20);
    expect(mean.close()).toBe(15);
    mean.offer(1);
    expect(mean.close()).toBe(1);

    const count = new TumblingWindow('count');
    count.offer(1);
    count.offer(1);
    expect(count.close()).toBe(2);
    expect(count.close()).toBe(0);
  });
});

describe('ReportFilter with NaN', () => {
  it('reports a change to and from NaN (a float sensor fault), but not NaN repeated', async () => {
    const { ReportFilter } = await import('../../src/pipeline/processors.js');
    const { GOOD } = await import('../../hal/types.js');
    const f = new ReportFilter({ absolute: 1 }, undefined, undefined);
    expect(f.offer(5, GOOD, 0)).toBe(true);
    expect(f.offer(Number.NaN, GOOD, 1)).toBe(true);
    expect(f.offer(Number.NaN, GOOD, 2)).toBe(false);
    expect(f.offer(5, GOOD, 3)).toBe(true);
  });
});
