/** Named monotonic counters of one driver, exposed on /metrics. Invariant: values only grow. */
export class Counters {
  private readonly values: Record<string, number> = {};

  constructor(names: readonly string[]) {
    for (const n of names) this.values[n] = 0;
  }

  inc(name: string, by = 1): void {
    this.values[name] = (this.values[name] ?? 0) + by;
  }

  snapshot(): Readonly<Record<string, number>> {
    return { ...this.values };
  }
}
