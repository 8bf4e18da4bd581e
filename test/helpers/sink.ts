import type { Sample, SampleSink } from '../../hal/types.js';
import { waitFor } from './net.js';

/** A SampleSink that keeps every sample, with helpers to wait for what a test expects. */
export class CollectingSink implements SampleSink {
  readonly samples: Sample[] = [];

  onSamples(samples: readonly Sample[]): void {
    this.samples.push(...samples);
  }

  latest(pointId: string): Sample | undefined {
    for (let i = this.samples.length - 1; i >= 0; i--) if (this.samples[i]?.pointId === pointId) return this.samples[i];
    return undefined;
  }

  of(pointId: string): Sample[] {
    return this.samples.filter((s) => s.pointId === pointId);
  }

  /** Waits until the latest sample of `pointId` satisfies `check` (bounded by timeoutMs). */
  waitLatest(pointId: string, check: (s: Sample) => boolean, timeoutMs = 15_000): Promise<Sample> {
    return waitFor(() => {
      const s = this.latest(pointId);
      return s && check(s) ? s : undefined;
    }, timeoutMs);
  }

  /** Waits for a sample of `pointId` arriving after index `from` that satisfies `check`. */
  waitNext(pointId: string, check: (s: Sample) => boolean, from = this.samples.length, timeoutMs = 15_000): Promise<Sample> {
    return waitFor(() => this.samples.slice(from).find((s) => s.pointId === pointId && check(s)), timeoutMs);
  }
}
