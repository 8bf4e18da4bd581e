/** Default share weight of each priority class (index = priority, 0 the highest). */
export const DEFAULT_WEIGHTS: readonly number[] = Object.freeze([10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);

/**
 * Weighted share between priority classes (stride scheduling), instead of edgeHub's strict priority.
 * A class with weight w that is always busy gets w / Σw of the records sent among the busy classes,
 * so the lowest class still moves.
 * Invariants: `pick` returns only a class reported busy; a class that was idle does not bank credit
 * (its pass is raised to the smallest busy pass when it becomes busy again); ties go to the higher priority.
 */
export class PriorityScheduler {
  private readonly pass: number[];
  private readonly wasBusy: boolean[];

  constructor(private readonly weights: readonly number[] = DEFAULT_WEIGHTS) {
    if (weights.length !== 10 || weights.some((w) => !(w > 0))) throw new RangeError('weights must be 10 positive numbers');
    this.pass = new Array<number>(10).fill(0);
    this.wasBusy = new Array<boolean>(10).fill(false);
  }

  /** The class to serve next among `busy` (priorities with records ready), or null. */
  pick(busy: ReadonlySet<number>): number | null {
    let min = Infinity;
    for (const p of busy) if (this.wasBusy[p]) min = Math.min(min, this.pass[p] as number);
    for (let p = 0; p < 10; p++) {
      const now = busy.has(p);
      if (now && !this.wasBusy[p] && Number.isFinite(min)) this.pass[p] = Math.max(this.pass[p] as number, min);
      this.wasBusy[p] = now;
    }
    let best: number | null = null;
    for (const p of busy) {
      if (best === null || (this.pass[p] as number) < (this.pass[best] as number) || ((this.pass[p] as number) === (this.pass[best] as number) && p < best)) best = p;
    }
    return best;
  }

  /** Charges class `p` for `records` sent. */
  charge(p: number, records: number): void {
    this.pass[p] = (this.pass[p] as number) + records / (this.weights[p] as number);
  }
}
