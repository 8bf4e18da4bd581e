import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { systemClock } from '../../hal/clock.js';
import { GOOD, bad, type PointValue, type Quality, type Sample } from '../../hal/types.js';
import { ConfigValidator } from '../../src/config/load.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import type { RuleEvent } from '../../src/model/reading.js';
import { Interlocks, type InterlockRule } from '../../src/pipeline/interlocks.js';
import { Pipeline } from '../../src/pipeline/pipeline.js';
import type { RuleState } from '../../src/pipeline/rule.js';
import { silentLogger } from '../helpers/logger.js';

/** Interlocks: which outputs a triggered rule holds, and who may write them meanwhile. */

function rule(id: string, points: string[], o: { failSafe?: boolean; allowOverride?: boolean } = {}): InterlockRule & { set(s: RuleState): void } {
  let state: RuleState = 'unknown';
  return {
    id,
    failSafe: o.failSafe ?? false,
    allowOverride: o.allowOverride ?? false,
    onTrigger: points.map((point) => ({ write: { point, value: false } })),
    state: () => state,
    set: (s) => (state = s),
  };
}

function refusal(f: () => unknown): OutpostError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    return e as OutpostError;
  }
  throw new Error('expected the write to be refused');
}

describe('Interlocks', () => {
  it('a triggered rule holds its onTrigger outputs; manual writes are refused naming the rule; release frees them', () => {
    const stop = rule('proximity-stop', ['run', 'lamp', 'run']);
    const locks = new Interlocks([stop]);
    expect(locks.outputsOf('proximity-stop')).toEqual(['run', 'lamp']);
    expect(locks.holders('run')).toEqual([]);
    expect(locks.check('run', null)).toEqual([]);

    stop.set('triggered');
    expect(locks.holders('run')).toEqual([{ rule: 'proximity-stop', allowOverride: false }]);
    const e = refusal(() => locks.check('run', null));
    expect(e.code).toBe('OUTPOST_E_RUNTIME_INTERLOCKED');
    expect(e.message).toContain('proximity-stop');
    expect(e.details).toMatchObject({ point: 'run', rule: 'proximity-stop', heldBy: ['proximity-stop'] });
    expect(refusal(() => locks.check('lamp', null)).code).toBe('OUTPOST_E_RUNTIME_INTERLOCKED');
    // Points the rule does not drive on trigger are free.
    expect(locks.check('setpoint', null)).toEqual([]);
    // The rule's own writes go through.
    expect(locks.check('run', 'proximity-stop')).toEqual([]);

    stop.set('normal');
    expect(locks.holders('run')).toEqual([]);
    expect(locks.check('run', null)).toEqual([]);
  });

  it('a fail-safe rule holds its outputs before its first good reading; a plain rule does not', () => {
    const safe = rule('guard', ['run'], { failSafe: true });
    const plain = rule('info', ['lamp']);
    const locks = new Interlocks([safe, plain]);
    expect(refusal(() => locks.check('run', null)).details['rule']).toBe('guard');
    expect(locks.check('lamp', null)).toEqual([]);
    safe.set('normal');
    expect(locks.check('run', null)).toEqual([]);
  });

  it('allowOverride lets writes through and reports whom they override', () => {
    const soft = rule('soft', ['run'], { allowOverride: true });
    const locks = new Interlocks([soft]);
    soft.set('triggered');
    expect(locks.holders('run')).toEqual([{ rule: 'soft', allowOverride: true }]);
    expect(locks.check('run', null)).toEqual([{ rule: 'soft', allowOverride: true }]);
  });

  it('another rule cannot override a held output (its release writes are refused); both holders may write', () => {
    const a = rule('a', ['run']);
    const b = rule('b', ['run']);
    const soft = rule('soft', ['run'], { allowOverride: true });
    const locks = new Interlocks([a, b, soft]);
    a.set('triggered');
    soft.set('triggered');
    const e = refusal(() => locks.check('run', 'b'));
    expect(e.details).toMatchObject({ rule: 'a', heldBy: ['a'], writer: 'rule:b' });
    b.set('triggered');
    expect(locks.check('run', 'b')).toEqual([]);
    expect(locks.check('run', 'a')).toEqual([]);
    expect(refusal(() => locks.check('run', null)).details['heldBy']).toEqual(['a', 'b']);
    a.set('normal');
    b.set('normal');
    expect(locks.check('run', null)).toEqual([{ rule: 'soft', allowOverride: true }]);
  });
});

const CONFIG = `
devices:
  - id: plc1
    kind: modbus
    connection: { type: sim }
    points:
      - { id: distance, table: input, address: 0, type: uint16 }
      - { id: run, table: coil, address: 0, type: bool, writable: true }
      - { id: lamp, table: coil, address: 1, type: bool, writable: true }
rules:
  - id: proximity-stop
    point: distance
    when: below
    threshold: 400
    hysteresis: 100
    failSafe: true
    onTrigger: [{ write: { point: run, value: false } }, { write: { point: lamp, value: true } }]
    onRelease: [{ write: { point: run, value: true } }, { write: { point: lamp, value: false } }]
`;

describe('Pipeline interlocks', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(Date.UTC(2026, 0, 1));
  });
  afterEach(() => vi.useRealTimers());

  function harness() {
    const events: RuleEvent[] = [];
    const writes: Array<{ point: string; value: PointValue; origin: string }> = [];
    const pipeline = new Pipeline(new ConfigValidator().validate(parseYaml(CONFIG), [], '/tmp'), {
      clock: systemClock,
      logger: silentLogger(),
      bootId: 'b',
      writer: { write: async (point, value, origin) => void writes.push({ point, value, origin }) },
      outputs: { reading: () => undefined, event: (e) => events.push(e) },
    });
    return { pipeline, events, writes };
  }
  const s = (value: number | null, quality: Quality = GOOD): Sample => ({ pointId: 'distance', value, quality, sourceTime: Date.now() });
  const settle = async () => {
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };

  it('shows holders in snapshots and the held outputs in rule events; writes as the rule itself', async () => {
    const h = harness();
    // Fail-safe and no reading yet: held.
    expect(h.pipeline.point('run')?.heldBy).toEqual([{ rule: 'proximity-stop', allowOverride: false }]);
    h.pipeline.ingest([s(1000)]);
    expect(h.pipeline.point('run')).not.toHaveProperty('heldBy');
    h.pipeline.ingest([s(100)]);
    expect(h.pipeline.point('lamp')?.heldBy).toEqual([{ rule: 'proximity-stop', allowOverride: false }]);
    expect(h.pipeline.point('distance')).not.toHaveProperty('heldBy');
    expect(() => h.pipeline.interlocks.check('run', null)).toThrow(/held by rule proximity-stop/);
    h.pipeline.ingest([s(450)]); // inside the hysteresis band: still held
    expect(h.pipeline.point('run')?.heldBy).toHaveLength(1);
    h.pipeline.ingest([s(null, bad('timeout'))]); // a bad reading never releases
    expect(h.pipeline.point('run')?.heldBy).toHaveLength(1);
    h.pipeline.ingest([s(600)]);
    expect(h.pipeline.point('run')).not.toHaveProperty('heldBy');
    await settle();
    expect(h.events.map((e) => [e.state, e.holds])).toEqual([
      ['triggered', ['run', 'lamp']],
      ['released', []],
    ]);
    expect(new Set(h.writes.map((w) => w.origin))).toEqual(new Set(['rule:proximity-stop']));
  });
});
