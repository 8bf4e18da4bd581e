import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import type { PointCommonConfig } from '../../hal/schema-common.js';
import { GOOD, bad, type PointValue, type Quality, type Sample } from '../../hal/types.js';
import type { OutpostConfig, RuleConfig } from '../config/schema.js';
import { describeCause } from '../errors/outpost-error.js';
import type { Reading, RuleEvent } from '../model/reading.js';
import { Interlocks, type Holder } from './interlocks.js';
import { applyScale, type Aggregate, RateOfChange, ReportFilter, TumblingWindow } from './processors.js';
import { RuleMachine } from './rule.js';

/** Writes a point in engineering units, wherever it lives (implemented by the runtime). */
export interface PointWriter {
  write(pointId: string, value: PointValue, origin: string): Promise<void>;
}

export interface PipelineOutputs {
  reading(reading: Reading): void;
  event(event: RuleEvent): void;
}

export interface PipelineDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly bootId: string;
  readonly writer: PointWriter;
  readonly outputs: PipelineOutputs;
  /** True while the system clock is not known to be synchronised. */
  readonly timeUncertain?: () => boolean;
}

/** The latest engineering value of a point, reported or not. */
export interface PointSnapshot {
  readonly point: string;
  readonly device: string;
  readonly value: PointValue | null;
  readonly quality: Quality;
  readonly sourceTime: number;
  /** seq of the last reported reading (0 before the first). */
  readonly seq: number;
  readonly units?: string;
  /** The triggered rules holding this output (interlocks); absent when none does. */
  readonly heldBy?: readonly Holder[];
}

interface PointState {
  readonly id: string;
  readonly device: string;
  readonly config: PointCommonConfig;
  readonly filter: ReportFilter;
  seq: number;
  latest: PointSnapshot | null;
  readonly rules: Array<{ config: RuleConfig; machine: RuleMachine; chain: Promise<void> }>;
  readonly rates: Array<{ target: PointState; rate: RateOfChange }>;
  readonly windows: TumblingWindow[];
}

/**
 * The edge pipeline: samples in, readings and rule events out.
 * For each sample: scale to engineering units → rules (every sample, before any filtering, so a
 * deadband never hides a threshold crossing) → derived points (rates, windows) → report filter
 * (deadband, heartbeat) → a Reading with the point's next `seq`.
 * Invariants: seq of a point increases by exactly 1 per reported reading; a rule's actions run in
 * the order of its transitions (one chain per rule); a failing action is logged and reported in the
 * event, never thrown into the driver.
 */
export class Pipeline {
  private readonly points = new Map<string, PointState>();
  private readonly windowTimers: unknown[] = [];
  private readonly windowDefs: Array<{ target: PointState; window: TumblingWindow; ms: number }> = [];
  readonly stats = { samples: 0, readings: 0, ruleTransitions: 0, actionErrors: 0 };
  /** Which outputs triggered rules hold; `Runtime.write` checks every write against it. */
  readonly interlocks: Interlocks;

  constructor(
    config: Readonly<OutpostConfig>,
    private readonly deps: PipelineDeps,
  ) {
    for (const d of config.devices) for (const p of d.points) this.addPoint(p.id, d.id, p);
    // A derived point belongs to the device of the point it is computed from (through chains of derived points).
    const deviceOf = new Map(config.devices.flatMap((d) => d.points.map((p) => [p.id, d.id] as const)));
    const fromOf = new Map(config.derived.map((d) => [d.id, d.from]));
    const resolve = (id: string): string => deviceOf.get(id) ?? (fromOf.has(id) ? resolve(fromOf.get(id) as string) : 'derived');
    for (const dp of config.derived) this.addPoint(dp.id, resolve(dp.from), dp);
    for (const dp of config.derived) {
      const src = this.points.get(dp.from) as PointState;
      const target = this.points.get(dp.id) as PointState;
      if (dp.compute.type === 'rate') src.rates.push({ target, rate: new RateOfChange(dp.compute.perMs) });
      else {
        const window = new TumblingWindow(dp.compute.aggregate as Aggregate);
        src.windows.push(window);
        this.windowDefs.push({ target, window, ms: dp.compute.windowMs });
      }
    }
    const machines = config.rules.map((r) => ({ config: r, machine: new RuleMachine(r), chain: Promise.resolve() }));
    for (const m of machines) this.points.get(m.config.point)?.rules.push(m);
    this.interlocks = new Interlocks(
      machines.map((m) => ({ id: m.config.id, failSafe: m.config.failSafe, allowOverride: m.config.allowOverride, onTrigger: m.config.onTrigger, state: () => m.machine.state })),
    );
  }

  start(): void {
    for (const w of this.windowDefs) {
      this.windowTimers.push(
        this.deps.clock.setInterval(() => {
          const v = w.window.close();
          this.report(w.target, v, v === null ? bad('no data') : GOOD, this.deps.clock.now());
        }, w.ms),
      );
    }
  }

  stop(): void {
    for (const t of this.windowTimers.splice(0)) this.deps.clock.clearInterval(t);
  }

  /** Latest value of every point, in declaration order. */
  snapshot(): PointSnapshot[] {
    return [...this.points.values()].map((p) => this.snapshotOf(p));
  }

  point(id: string): PointSnapshot | undefined {
    const p = this.points.get(id);
    return p ? this.snapshotOf(p) : undefined;
  }

  private snapshotOf(p: PointState): PointSnapshot {
    const latest = p.latest ?? { point: p.id, device: p.device, value: null, quality: { status: 'uncertain', reason: 'no data yet' }, sourceTime: 0, seq: 0, ...(p.config.units ? { units: p.config.units } : {}) };
    const heldBy = this.interlocks.holders(p.id);
    return heldBy.length > 0 ? { ...latest, heldBy } : latest;
  }

  /** Feeds samples from a driver. Unknown point ids are ignored (and logged once per call). */
  ingest(samples: readonly Sample[]): void {
    const arrived = this.deps.clock.monotonic();
    for (const s of samples) {
      const p = this.points.get(s.pointId);
      if (!p) {
        this.deps.logger.warn({ point: s.pointId }, 'sample for an unknown point dropped');
        continue;
      }
      this.stats.samples++;
      this.process(p, s.value, s.quality, s.sourceTime, arrived);
    }
  }

  private process(p: PointState, raw: PointValue | null, quality: Quality, sourceTime: number, arrived: number): void {
    const value = quality.status === 'bad' ? null : applyScale(raw, p.config.scale);
    for (const r of p.rules) this.evaluateRule(r, p, value, quality, arrived);
    for (const d of p.rates) {
      const rate = quality.status === 'good' ? d.rate.offer(value, sourceTime) : (d.rate.offer(null, sourceTime), null);
      if (rate !== null) this.process(d.target, rate, GOOD, sourceTime, arrived);
      else if (quality.status === 'bad') this.process(d.target, null, quality, sourceTime, arrived);
    }
    if (quality.status === 'good') for (const w of p.windows) w.offer(value);
    this.report(p, value, quality, sourceTime);
  }

  private report(p: PointState, value: PointValue | null, quality: Quality, sourceTime: number): void {
    const reported = p.filter.offer(value, quality, this.deps.clock.monotonic());
    if (reported) p.seq++;
    p.latest = { point: p.id, device: p.device, value, quality, sourceTime, seq: p.seq, ...(p.config.units ? { units: p.config.units } : {}) };
    if (!reported) return;
    this.stats.readings++;
    const reading: Reading = {
      point: p.id,
      device: p.device,
      value,
      quality: quality.status,
      ...(quality.status !== 'good' ? { reason: quality.reason } : {}),
      sourceTime,
      seq: p.seq,
      bootId: this.deps.bootId,
      ...(this.deps.timeUncertain?.() ? { timeUncertain: true as const } : {}),
    };
    this.deps.outputs.reading(reading);
  }

  private evaluateRule(r: PointState['rules'][number], p: PointState, value: PointValue | null, quality: Quality, arrived: number): void {
    const t = r.machine.evaluate(value, quality);
    if (t === null || (t === 'initial-normal' && !r.config.releaseOnStart)) return;
    const triggered = t === 'trigger';
    this.stats.ruleTransitions++;
    const actions = triggered ? r.config.onTrigger : r.config.onRelease;
    const holds = triggered ? [...this.interlocks.outputsOf(r.config.id)] : [];
    const time = this.deps.clock.now();
    r.chain = r.chain.then(async () => {
      const results: Array<{ point: string; ok: boolean; error?: string }> = [];
      for (const a of actions) {
        try {
          await this.deps.writer.write(a.write.point, a.write.value, `rule:${r.config.id}`);
          results.push({ point: a.write.point, ok: true });
        } catch (e) {
          this.stats.actionErrors++;
          const cause = describeCause(e);
          this.deps.logger.error({ rule: r.config.id, point: a.write.point, err: cause }, 'rule action failed');
          results.push({ point: a.write.point, ok: false, error: cause.code ?? 'error' });
        }
      }
      const latencyMs = this.deps.clock.monotonic() - arrived;
      this.deps.logger.info({ rule: r.config.id, state: triggered ? 'triggered' : 'released', latencyMs, value }, 'rule transition');
      this.deps.outputs.event({
        rule: r.config.id,
        state: triggered ? 'triggered' : 'released',
        point: p.id,
        value,
        quality: quality.status,
        time,
        bootId: this.deps.bootId,
        actions: results,
        holds,
        latencyMs,
      });
    });
  }

  private addPoint(id: string, device: string, config: PointCommonConfig): void {
    this.points.set(id, {
      id,
      device,
      config,
      filter: new ReportFilter(config.deadband, config.range, config.heartbeatMs),
      seq: 0,
      latest: null,
      rules: [],
      rates: [],
      windows: [],
    });
  }
}
