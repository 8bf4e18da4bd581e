import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { systemClock } from '../../hal/clock.js';
import { GOOD, bad, uncertain, type PointValue, type Quality, type Sample } from '../../hal/types.js';
import { ConfigValidator } from '../../src/config/load.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Reading, RuleEvent } from '../../src/model/reading.js';
import { Pipeline, type PointWriter } from '../../src/pipeline/pipeline.js';
import { RuleMachine } from '../../src/pipeline/rule.js';
import { captureLogger, silentLogger } from '../helpers/logger.js';

describe('RuleMachine', () => {
  const above = (threshold: number, hysteresis = 0, failSafe = false) => new RuleMachine({ when: 'above', threshold, hysteresis, failSafe });
  const below = (threshold: number, hysteresis = 0, failSafe = false) => new RuleMachine({ when: 'below', threshold, hysteresis, failSafe });
  const run = (m: RuleMachine, values: Array<PointValue | null>, q: Quality = GOOD) => values.map((v) => m.evaluate(v, q));

  it('starts unknown', () => {
    expect(above(80).state).toBe('unknown');
  });

  it('above: triggers beyond the threshold and releases only below threshold − hysteresis (no chatter)', () => {
    const m = above(80, 5);
    expect(m.evaluate(70, GOOD)).toBe('initial-normal');
    expect(m.state).toBe('normal');
    expect(m.evaluate(80, GOOD)).toBeNull(); // equal is not above
    expect(m.evaluate(81, GOOD)).toBe('trigger');
    expect(m.state).toBe('triggered');
    // Noise around the threshold: nothing happens.
    expect(run(m, [79, 81, 79.5, 80.5, 76, 75])).toEqual([null, null, null, null, null, null]);
    expect(m.state).toBe('triggered');
    expect(m.evaluate(74.9, GOOD)).toBe('release');
    expect(m.state).toBe('normal');
    expect(run(m, [79, 80, 75, 76])).toEqual([null, null, null, null]);
    expect(m.evaluate(80.1, GOOD)).toBe('trigger');
  });

  it('below: mirrors above around threshold + hysteresis', () => {
    const m = below(400, 100);
    expect(m.evaluate(450, GOOD)).toBe('initial-normal');
    expect(m.evaluate(400, GOOD)).toBeNull();
    expect(m.evaluate(399, GOOD)).toBe('trigger');
    expect(run(m, [401, 399, 450, 499, 500])).toEqual([null, null, null, null, null]);
    expect(m.evaluate(501, GOOD)).toBe('release');
    expect(m.evaluate(450, GOOD)).toBeNull();
  });

  it('takes its initial state from the first good sample', () => {
    const hot = above(80, 5);
    expect(hot.evaluate(90, GOOD)).toBe('trigger');
    expect(hot.state).toBe('triggered');
    expect(hot.evaluate(78, GOOD)).toBeNull(); // inside the band: stays triggered
    // A first sample inside the hysteresis band is normal (not above the threshold).
    const band = above(80, 5);
    expect(band.evaluate(78, GOOD)).toBe('initial-normal');
    expect(band.state).toBe('normal');
    expect(band.evaluate(70, GOOD)).toBeNull(); // 'initial-normal' is reported once
  });

  it('ignores bad and uncertain samples without failSafe, in every state', () => {
    const m = above(80, 5);
    expect(m.evaluate(null, bad('timeout'))).toBeNull();
    expect(m.evaluate(95, uncertain('stale'))).toBeNull();
    expect(m.state).toBe('unknown');
    expect(m.evaluate(70, GOOD)).toBe('initial-normal');
    expect(m.evaluate(null, bad('timeout'))).toBeNull();
    expect(m.evaluate(99, uncertain('stale'))).toBeNull();
    expect(m.state).toBe('normal');
    expect(m.evaluate(90, GOOD)).toBe('trigger');
    expect(m.evaluate(null, bad('timeout'))).toBeNull();
    expect(m.evaluate(10, uncertain('stale'))).toBeNull();
    expect(m.state).toBe('triggered');
  });

  it('failSafe: a bad sample triggers (once), release needs a good and cleared value', () => {
    const m = above(80, 5, true);
    expect(m.evaluate(70, GOOD)).toBe('initial-normal');
    expect(m.evaluate(null, bad('timeout'))).toBe('trigger');
    expect(m.evaluate(null, bad('timeout'))).toBeNull();
    expect(m.evaluate(null, bad('not connected'))).toBeNull();
    expect(m.evaluate(70, uncertain('stale'))).toBeNull(); // uncertain is neither trigger nor release
    expect(m.evaluate(78, GOOD)).toBeNull(); // good, but not cleared
    expect(m.state).toBe('triggered');
    expect(m.evaluate(74, GOOD)).toBe('release');
    expect(m.state).toBe('normal');
  });

  it('failSafe: a bad first sample triggers from unknown; uncertain does not', () => {
    const m = below(400, 100, true);
    expect(m.evaluate(450, uncertain('stale'))).toBeNull();
    expect(m.state).toBe('unknown');
    expect(m.evaluate(null, bad('exception 2'))).toBe('trigger');
    expect(m.evaluate(600, GOOD)).toBe('release');
  });

  it('treats booleans as 1/0', () => {
    const m = above(0.5);
    expect(m.evaluate(false, GOOD)).toBe('initial-normal');
    expect(m.evaluate(true, GOOD)).toBe('trigger');
    expect(m.evaluate(true, GOOD)).toBeNull();
    expect(m.evaluate(false, GOOD)).toBe('release');
    const low = below(0.5);
    expect(low.evaluate(false, GOOD)).toBe('trigger');
    expect(low.evaluate(true, GOOD)).toBe('release');
  });

  it('ignores strings, even with failSafe', () => {
    const m = above(10, 0, true);
    expect(m.evaluate('99', GOOD)).toBeNull();
    expect(m.state).toBe('unknown');
    expect(m.evaluate(5, GOOD)).toBe('initial-normal');
    expect(m.evaluate('99', GOOD)).toBeNull();
    expect(m.state).toBe('normal');
  });
});

// ---------------------------------------------------------------------------------------------

const BASE = `
devices:
  - id: plc1
    kind: modbus
    connection: { type: sim }
    points:
      - { id: temp, table: holding, address: 0, type: float32, units: degC, deadband: { absolute: 10 } }
      - { id: pressure, table: holding, address: 2, type: int16, scale: { factor: 0.1 }, units: bar }
      - { id: level, table: input, address: 0, type: uint16, units: mm }
      - { id: setpoint, table: holding, address: 10, type: int16, writable: true, scale: { factor: 0.1 } }
      - { id: relay, table: coil, address: 0, type: bool, writable: true }
      - { id: lamp, table: coil, address: 1, type: bool, writable: true }
`;

const validator = new ConfigValidator();

function config(extra = '') {
  return validator.validate(parseYaml(BASE + extra), [], '/tmp');
}

interface Harness {
  pipeline: Pipeline;
  readings: Reading[];
  events: RuleEvent[];
  writes: Array<{ point: string; value: PointValue; origin: string }>;
  of(point: string): Reading[];
}

function harness(extra = '', opts: { writer?: PointWriter; timeUncertain?: () => boolean; logger?: ReturnType<typeof silentLogger> } = {}): Harness {
  const readings: Reading[] = [];
  const events: RuleEvent[] = [];
  const writes: Harness['writes'] = [];
  const writer: PointWriter = opts.writer ?? {
    write: async (point, value, origin) => {
      writes.push({ point, value, origin });
    },
  };
  const pipeline = new Pipeline(config(extra), {
    clock: systemClock,
    logger: opts.logger ?? silentLogger(),
    bootId: 'boot-1',
    writer,
    outputs: { reading: (r) => readings.push(r), event: (e) => events.push(e) },
    ...(opts.timeUncertain ? { timeUncertain: opts.timeUncertain } : {}),
  });
  return { pipeline, readings, events, writes, of: (p) => readings.filter((r) => r.point === p) };
}

const T0 = Date.UTC(2024, 4, 1, 12, 0, 0);

function s(pointId: string, value: PointValue | null, sourceTime = Date.now(), quality: Quality = GOOD): Sample {
  return { pointId, value, quality, sourceTime };
}

/** Lets the rule action chains run (they are promise chains; no timer is involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('Pipeline', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('turns samples into readings with the bootId and a per-point seq that grows by exactly 1 per reading', () => {
    const h = harness();
    h.pipeline.ingest([s('level', 100, T0), s('temp', 20, T0)]);
    h.pipeline.ingest([s('level', 100, T0 + 1)]); // unchanged: not reported
    h.pipeline.ingest([s('level', 101, T0 + 2), s('temp', 25, T0 + 2)]); // temp within its deadband
    h.pipeline.ingest([s('level', 102, T0 + 3), s('temp', 31, T0 + 3)]);
    h.pipeline.ingest([s('level', null, T0 + 4, bad('timeout'))]);

    expect(h.of('level').map((r) => [r.seq, r.value, r.quality])).toEqual([
      [1, 100, 'good'],
      [2, 101, 'good'],
      [3, 102, 'good'],
      [4, null, 'bad'],
    ]);
    expect(h.of('temp').map((r) => [r.seq, r.value])).toEqual([
      [1, 20],
      [2, 31],
    ]);
    expect(h.readings.every((r) => r.bootId === 'boot-1')).toBe(true);
    expect(h.of('level')[0]).toEqual({ point: 'level', device: 'plc1', value: 100, quality: 'good', sourceTime: T0, seq: 1, bootId: 'boot-1' });
    expect(h.of('level')[3]).toMatchObject({ reason: 'timeout', sourceTime: T0 + 4 });
    expect(h.pipeline.stats).toMatchObject({ samples: 8, readings: 6 });
  });

  it('marks readings timeUncertain while the clock is not synchronised', () => {
    let uncertainClock = true;
    const h = harness('', { timeUncertain: () => uncertainClock });
    h.pipeline.ingest([s('level', 1)]);
    uncertainClock = false;
    h.pipeline.ingest([s('level', 2)]);
    expect(h.of('level')[0]?.timeUncertain).toBe(true);
    expect(h.of('level')[1]).not.toHaveProperty('timeUncertain');
  });

  it('drops samples of unknown points with a warning', () => {
    const { logger, lines } = captureLogger();
    const h = harness('', { logger });
    h.pipeline.ingest([s('nope', 1), s('level', 1)]);
    expect(h.readings.map((r) => r.point)).toEqual(['level']);
    expect(lines.some((l) => l['msg'] === 'sample for an unknown point dropped' && l['point'] === 'nope')).toBe(true);
    expect(h.pipeline.stats.samples).toBe(1);
  });

  it('applies the scale before the report and before rules (a rule on a scaled value)', async () => {
    const h = harness(`
rules:
  - id: overpressure
    point: pressure
    when: above
    threshold: 50
    onTrigger: [{ write: { point: relay, value: false } }]
`);
    h.pipeline.ingest([s('pressure', 490)]); // 49.0 bar: below 50 (raw 490 would be far above)
    await settle();
    expect(h.of('pressure')[0]?.value).toBeCloseTo(49, 9);
    expect(h.events).toEqual([]);
    h.pipeline.ingest([s('pressure', 510)]); // 51.0 bar
    await settle();
    expect(h.events.map((e) => [e.rule, e.state])).toEqual([['overpressure', 'triggered']]);
    expect(h.events[0]?.value).toBeCloseTo(51, 9);
    expect(h.writes).toEqual([{ point: 'relay', value: false, origin: 'rule:overpressure' }]);
  });

  it('a deadband suppresses readings but not rule evaluation: a crossing inside the deadband still triggers', async () => {
    const h = harness(`
rules:
  - id: hot
    point: temp
    when: above
    threshold: 25
    onTrigger: [{ write: { point: lamp, value: true } }]
    onRelease: [{ write: { point: lamp, value: false } }]
`);
    h.pipeline.ingest([s('temp', 20)]);
    h.pipeline.ingest([s('temp', 26)]); // 6 from the report: inside the deadband of 10
    await settle();
    expect(h.of('temp').map((r) => r.value)).toEqual([20]);
    expect(h.events.map((e) => [e.state, e.value])).toEqual([['triggered', 26]]);
    h.pipeline.ingest([s('temp', 24)]);
    await settle();
    expect(h.of('temp').map((r) => r.value)).toEqual([20]);
    expect(h.events.map((e) => [e.state, e.value])).toEqual([
      ['triggered', 26],
      ['released', 24],
    ]);
    expect(h.writes.map((w) => [w.point, w.value])).toEqual([
      ['lamp', true],
      ['lamp', false],
    ]);
  });

  it('executes rule actions in order, one after the other, and reports the event after the last', async () => {
    const log: string[] = [];
    let releaseFirst: () => void = () => undefined;
    const writer: PointWriter = {
      write: (point, value) => {
        log.push(`start ${point}=${String(value)}`);
        if (point === 'relay') return new Promise<void>((resolve) => (releaseFirst = () => (log.push('end relay'), resolve())));
        log.push(`end ${point}`);
        return Promise.resolve();
      },
    };
    const h = harness(
      `
rules:
  - id: hot
    point: level
    when: above
    threshold: 100
    onTrigger:
      - write: { point: relay, value: false }
      - write: { point: lamp, value: true }
      - write: { point: setpoint, value: 60 }
    onRelease:
      - write: { point: lamp, value: false }
`,
      { writer },
    );
    h.pipeline.ingest([s('level', 150)]);
    h.pipeline.ingest([s('level', 50)]); // release while the trigger's actions still run
    await settle();
    expect(log).toEqual(['start relay=false']);
    expect(h.events).toEqual([]);
    releaseFirst();
    await settle();
    expect(log).toEqual(['start relay=false', 'end relay', 'start lamp=true', 'end lamp', 'start setpoint=60', 'end setpoint', 'start lamp=false', 'end lamp']);
    expect(h.events.map((e) => e.state)).toEqual(['triggered', 'released']);
    expect(h.events[0]).toMatchObject({
      rule: 'hot',
      point: 'level',
      value: 150,
      quality: 'good',
      time: T0,
      bootId: 'boot-1',
      actions: [
        { point: 'relay', ok: true },
        { point: 'lamp', ok: true },
        { point: 'setpoint', ok: true },
      ],
    });
    expect(h.pipeline.stats.ruleTransitions).toBe(2);
  });

  it('a failing action is reported in the event (ok:false, error code) and the next actions still run', async () => {
    const { logger, lines } = captureLogger();
    const writes: string[] = [];
    const writer: PointWriter = {
      write: async (point) => {
        writes.push(point);
        if (point === 'lamp') throw new OutpostError('OUTPOST_E_MODBUS_TIMEOUT', 'modbus request timed out');
        if (point === 'setpoint') throw new Error('no code here');
      },
    };
    const h = harness(
      `
rules:
  - id: hot
    point: level
    when: above
    threshold: 100
    onTrigger:
      - write: { point: lamp, value: true }
      - write: { point: setpoint, value: 60 }
      - write: { point: relay, value: false }
`,
      { writer, logger },
    );
    expect(() => h.pipeline.ingest([s('level', 150)])).not.toThrow();
    await settle();
    expect(writes).toEqual(['lamp', 'setpoint', 'relay']);
    expect(h.events).toHaveLength(1);
    expect(h.events[0]?.actions).toEqual([
      { point: 'lamp', ok: false, error: 'OUTPOST_E_MODBUS_TIMEOUT' },
      { point: 'setpoint', ok: false, error: 'error' },
      { point: 'relay', ok: true },
    ]);
    expect(h.pipeline.stats.actionErrors).toBe(2);
    expect(lines.filter((l) => l['msg'] === 'rule action failed').map((l) => l['point'])).toEqual(['lamp', 'setpoint']);
  });

  it('releaseOnStart: runs onRelease for a first reading in the normal range; without it nothing runs', async () => {
    const rule = (releaseOnStart: boolean) => `
rules:
  - id: proximity
    point: level
    when: below
    threshold: 400
    hysteresis: 100
    releaseOnStart: ${String(releaseOnStart)}
    onTrigger: [{ write: { point: relay, value: false } }]
    onRelease: [{ write: { point: relay, value: true } }]
`;
    const on = harness(rule(true));
    on.pipeline.ingest([s('level', 1000)]);
    await settle();
    expect(on.events.map((e) => e.state)).toEqual(['released']);
    expect(on.writes.map((w) => [w.point, w.value])).toEqual([['relay', true]]);
    on.pipeline.ingest([s('level', 900)]);
    await settle();
    expect(on.events).toHaveLength(1); // only the first reading

    const off = harness(rule(false));
    off.pipeline.ingest([s('level', 1000)]);
    await settle();
    expect(off.events).toEqual([]);
    expect(off.writes).toEqual([]);
    expect(off.pipeline.stats.ruleTransitions).toBe(0);

    // A first reading in the trigger range triggers either way.
    for (const h of [harness(rule(true)), harness(rule(false))]) {
      h.pipeline.ingest([s('level', 100)]);
      await settle();
      expect(h.events.map((e) => e.state)).toEqual(['triggered']);
      expect(h.writes.map((w) => w.value)).toEqual([false]);
    }
  });

  it('failSafe: a bad reading triggers with value null and quality bad', async () => {
    const h = harness(`
rules:
  - id: guard
    point: level
    when: below
    threshold: 400
    failSafe: true
    onTrigger: [{ write: { point: relay, value: false } }]
`);
    h.pipeline.ingest([s('level', 1000)]);
    h.pipeline.ingest([s('level', 1234, Date.now(), bad('timeout'))]);
    await settle();
    expect(h.events).toHaveLength(1);
    expect(h.events[0]).toMatchObject({ state: 'triggered', value: null, quality: 'bad' });
    expect(h.of('level').at(-1)).toMatchObject({ value: null, quality: 'bad', reason: 'timeout' });
  });

  it('derived rate: computed from consecutive good samples of the source, on the source device', () => {
    const h = harness(`
derived:
  - { id: level.rate, from: level, compute: { type: rate, perMs: 1000 }, units: mm/s }
`);
    h.pipeline.ingest([s('level', 100, T0)]);
    h.pipeline.ingest([s('level', 150, T0 + 500)]);
    h.pipeline.ingest([s('level', 150, T0 + 1500)]);
    expect(h.of('level.rate').map((r) => [r.value, r.seq, r.sourceTime, r.device])).toEqual([
      [100, 1, T0 + 500, 'plc1'],
      [0, 2, T0 + 1500, 'plc1'],
    ]);
    h.pipeline.ingest([s('level', null, T0 + 2000, bad('timeout'))]);
    expect(h.of('level.rate').at(-1)).toMatchObject({ value: null, quality: 'bad', reason: 'timeout', seq: 3 });
    // After the gap the rate starts again from a fresh first sample.
    h.pipeline.ingest([s('level', 500, T0 + 3000)]);
    expect(h.of('level.rate')).toHaveLength(3);
    h.pipeline.ingest([s('level', 510, T0 + 4000)]);
    expect(h.of('level.rate').at(-1)).toMatchObject({ value: 10, quality: 'good', seq: 4 });
  });

  it('derived rate uses the scaled (engineering) value', () => {
    const h = harness(`
derived:
  - { id: pressure.rate, from: pressure, compute: { type: rate, perMs: 1000 } }
`);
    h.pipeline.ingest([s('pressure', 100, T0)]);
    h.pipeline.ingest([s('pressure', 120, T0 + 1000)]);
    expect(h.of('pressure.rate')[0]?.value).toBeCloseTo(2, 9);
  });

  it('derived window: emits the aggregate of good samples on its timer, bad "no data" for an empty window, stops with stop()', async () => {
    const h = harness(`
derived:
  - { id: level.max, from: level, compute: { type: window, windowMs: 1000, aggregate: max } }
  - { id: level.n, from: level, compute: { type: window, windowMs: 1000, aggregate: count } }
`);
    h.pipeline.start();
    h.pipeline.ingest([s('level', 5), s('level', 9), s('level', 7), s('level', 99, Date.now(), bad('timeout')), s('level', 50, Date.now(), uncertain('stale'))]);
    expect(h.of('level.max')).toEqual([]);
    await vi.advanceTimersByTimeAsync(999);
    expect(h.of('level.max')).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.of('level.max')).toEqual([{ point: 'level.max', device: 'plc1', value: 9, quality: 'good', sourceTime: T0 + 1000, seq: 1, bootId: 'boot-1' }]);
    expect(h.of('level.n').map((r) => r.value)).toEqual([3]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.of('level.max').at(-1)).toMatchObject({ value: null, quality: 'bad', reason: 'no data', seq: 2 });
    expect(h.of('level.n').at(-1)).toMatchObject({ value: 0, quality: 'good', seq: 2 });
    h.pipeline.ingest([s('level', 3)]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.of('level.max').at(-1)).toMatchObject({ value: 3, quality: 'good', seq: 3 });
    h.pipeline.stop();
    const before = h.readings.length;
    await vi.advanceTimersByTimeAsync(5000);
    expect(h.readings.length).toBe(before);
  });

  it('snapshot(): the latest value of every point in declaration order, with units, reported or not', () => {
    const h = harness(`
derived:
  - { id: level.rate, from: level, compute: { type: rate, perMs: 1000 }, units: mm/s }
`);
    const before = h.pipeline.snapshot();
    expect(before.map((p) => p.point)).toEqual(['temp', 'pressure', 'level', 'setpoint', 'relay', 'lamp', 'level.rate']);
    expect(before[0]).toEqual({ point: 'temp', device: 'plc1', value: null, quality: { status: 'uncertain', reason: 'no data yet' }, sourceTime: 0, seq: 0, units: 'degC' });
    expect(before[4]).not.toHaveProperty('units');

    h.pipeline.ingest([s('temp', 20, T0), s('pressure', 123, T0)]);
    h.pipeline.ingest([s('temp', 22, T0 + 10)]); // suppressed by the deadband, still the latest value
    expect(h.pipeline.point('temp')).toEqual({ point: 'temp', device: 'plc1', value: 22, quality: GOOD, sourceTime: T0 + 10, seq: 1, units: 'degC' });
    expect(h.pipeline.point('pressure')?.value).toBeCloseTo(12.3, 9);
    expect(h.pipeline.point('pressure')?.units).toBe('bar');
    expect(h.pipeline.point('level.rate')).toMatchObject({ device: 'plc1', units: 'mm/s', seq: 0 });
    expect(h.pipeline.point('nope')).toBeUndefined();
  });
});
