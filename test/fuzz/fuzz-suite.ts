import fc from 'fast-check';
import { describe, it } from 'vitest';
import { replayCommand, type FuzzTarget } from '../../bench/fuzz/target.js';

/**
 * Runs fuzz targets as vitest tests: `target.runs` runs each (times FUZZ_RUNS_SCALE, default 1), from
 * a fresh random seed unless FUZZ_SEED is set (FUZZ_PATH with it replays one counterexample). A failure
 * names the counterexample, the seed and the command that replays it.
 */
export function fuzzSuite(title: string, targets: readonly FuzzTarget[]): void {
  const scale = Number(process.env['FUZZ_RUNS_SCALE'] ?? 1);
  describe(title, () => {
    for (const target of targets) {
      it(target.name, async () => {
        const seed = process.env['FUZZ_SEED'] !== undefined ? Number(process.env['FUZZ_SEED']) : (Math.random() * 2 ** 31) | 0;
        const replayPath = process.env['FUZZ_PATH'];
        const details = await fc.check(target.property(), { numRuns: Math.max(1, Math.round(target.runs * scale)), seed, ...(replayPath ? { path: replayPath } : {}) });
        if (details.failed) {
          throw new Error(`${target.name} failed (seed ${seed}).\n${fc.defaultReportMessage(details) ?? ''}\n${replayCommand(target.name, seed, details.counterexamplePath)}`);
        }
      }, 120_000);
    }
  });
}
