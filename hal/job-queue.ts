/**
 * Serialises jobs on one transport (an RTU line, a TCP connection, a serial port) with two priorities.
 * Invariants: at most `depth` jobs run at once; a queued high-priority job (a write) starts before
 * any queued normal one (a poll); jobs of one priority start in FIFO order; a failing job never
 * stalls the queue.
 */
export class JobQueue {
  private readonly high: Array<() => void> = [];
  private readonly normal: Array<() => void> = [];
  private running = 0;

  constructor(private readonly depth = 1) {}

  get pending(): number {
    return this.high.length + this.normal.length;
  }

  run<T>(job: () => Promise<T>, priority: 'high' | 'normal' = 'normal'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        job()
          .then(resolve, reject)
          .finally(() => {
            this.running--;
            this.pump();
          });
      };
      (priority === 'high' ? this.high : this.normal).push(start);
      this.pump();
    });
  }

  private pump(): void {
    while (this.running < this.depth) {
      const next = this.high.shift() ?? this.normal.shift();
      if (!next) return;
      next();
    }
  }
}
