/**
 * Bookkeeping of the retained messages clients store on the local broker (the gateway's own retained
 * readings and status are not counted). Invariants: `count` ≤ maxMessages and `bytes` ≤ maxBytes at all
 * times; an empty payload clears a topic and frees its share; replacing a retained message charges only
 * the difference; a refused message changes nothing.
 */
export class RetainedBudget {
  private readonly sizes = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  get count(): number {
    return this.sizes.size;
  }

  get bytes(): number {
    return this.total;
  }

  /** Charges a retained publish on `topic`; false (and nothing charged) when it does not fit. */
  admit(topic: string, payload: Buffer | string): boolean {
    const previous = this.sizes.get(topic);
    const length = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
    if (length === 0) {
      if (previous !== undefined) {
        this.sizes.delete(topic);
        this.total -= previous;
      }
      return true;
    }
    const size = Buffer.byteLength(topic) + length;
    const count = this.sizes.size + (previous === undefined ? 1 : 0);
    const bytes = this.total - (previous ?? 0) + size;
    if (count > this.maxMessages || bytes > this.maxBytes) return false;
    this.sizes.set(topic, size);
    this.total = bytes;
    return true;
  }
}
