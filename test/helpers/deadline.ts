/**
 * Deadlines of the waits in tests. A deadline only bounds how long a failing wait takes: a passing test
 * ends when its event comes, whatever the deadline. So waits get at least FLOOR_MS, enough for a loaded
 * CI machine (load ≈ 8 on 2 cores runs processes, timers and I/O several times slower than a quiet one).
 */
export const FLOOR_MS = 30_000;

export function generous(timeoutMs: number): number {
  return Math.max(timeoutMs, FLOOR_MS);
}
