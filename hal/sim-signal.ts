import type { SimModelConfig } from './sim-model.js';

/** A small deterministic PRNG (mulberry32), so simulators are reproducible given a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One simulated signal. Invariant: `valueAt` is called with non-decreasing times; the value only
 * changes as a function of elapsed time (and the PRNG for drift).
 */
export class SimSignal {
  private last: number | boolean | string;
  private lastStep: number;

  constructor(
    private readonly model: SimModelConfig,
    private readonly random: () => number,
    private readonly startTime: number,
    private readonly stepMs = 1000,
  ) {
    this.lastStep = startTime;
    switch (model.model) {
      case 'drift':
      case 'counter':
        this.last = model.start;
        break;
      case 'sine':
        this.last = model.min;
        break;
      case 'toggle':
        this.last = false;
        break;
      case 'constant':
        this.last = model.value;
        break;
    }
  }

  valueAt(now: number): number | boolean | string {
    const m = this.model;
    switch (m.model) {
      case 'sine': {
        const phase = ((now - this.startTime) % m.periodMs) / m.periodMs;
        this.last = m.min + ((m.max - m.min) * (1 - Math.cos(2 * Math.PI * phase))) / 2;
        return this.last;
      }
      case 'toggle':
        this.last = Math.floor((now - this.startTime) / m.periodMs) % 2 === 1;
        return this.last;
      case 'constant':
        return m.value;
      case 'drift':
      case 'counter': {
        while (now - this.lastStep >= this.stepMs) {
          this.lastStep += this.stepMs;
          this.last = m.model === 'drift' ? this.driftStep(this.last as number, m) : this.countStep(this.last as number, m);
        }
        return this.last;
      }
    }
  }

  private driftStep(v: number, m: Extract<SimModelConfig, { model: 'drift' }>): number {
    const next = v + (this.random() * 2 - 1) * m.step;
    return Math.min(m.max, Math.max(m.min, next));
  }

  private countStep(v: number, m: Extract<SimModelConfig, { model: 'counter' }>): number {
    const next = v + m.step;
    return m.wrap !== undefined && next >= m.wrap ? m.start : next;
  }
}
