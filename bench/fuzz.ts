import fc from 'fast-check';
import { allTargets } from './fuzz/index.js';
import { replayCommand } from './fuzz/target.js';

/**
 * `npm run bench:fuzz`: runs every fuzz target (bench/fuzz/, the same properties `npm test` runs a few
 * hundred times each) for a time budget, prints runs per second per target and every counterexample
 * with its seed, and exits 1 when one is found.
 *
 *   FUZZ_SECONDS=20   budget per target (default 20)
 *   FUZZ_SEED=n       start from this seed (default: random, printed)
 *   arguments         only targets whose name contains one of them, e.g. `npm run bench:fuzz -- routes ota.grub`
 */
const seconds = Number(process.env['FUZZ_SECONDS'] ?? 20);
const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith('--'));

async function main(): Promise<void> {
  if (!(seconds > 0)) throw new Error('FUZZ_SECONDS must be a positive number');
  const targets = allTargets().filter((t) => filters.length === 0 || filters.some((f) => t.name.includes(f)));
  if (targets.length === 0) throw new Error(`no fuzz target matches ${filters.join(', ')}`);
  console.log(`fuzz: ${targets.length} targets, ${seconds} s each`);
  console.log(`${'target'.padEnd(30)} ${'runs'.padStart(9)} ${'runs/s'.padStart(9)}  result`);
  const failures: string[] = [];
  for (const target of targets) {
    const seed = process.env['FUZZ_SEED'] !== undefined ? Number(process.env['FUZZ_SEED']) : (Math.random() * 2 ** 31) | 0;
    const started = performance.now();
    const details = await fc.check(target.property(), {
      seed,
      numRuns: Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: seconds * 1000,
      markInterruptAsFailure: false,
    });
    const elapsed = (performance.now() - started) / 1000;
    const rate = details.numRuns / elapsed;
    const result = details.failed ? `COUNTEREXAMPLE (seed ${seed})` : 'ok';
    console.log(`${target.name.padEnd(30)} ${String(details.numRuns).padStart(9)} ${rate.toFixed(0).padStart(9)}  ${result}`);
    if (details.failed) {
      failures.push(`${target.name} (seed ${seed}):\n${fc.defaultReportMessage(details) ?? ''}\n${replayCommand(target.name, seed, details.counterexamplePath)}`);
    }
  }
  for (const f of failures) console.log(`\n${f}`);
  console.log(`\nfuzz: ${targets.length - failures.length} passed, ${failures.length} failed`);
  if (failures.length > 0) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
