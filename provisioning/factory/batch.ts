import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import { parseTpmAddress } from '../tpm/open.js';
import { SERIAL_PATTERN } from './authority.js';

/** One unit of a batch file line: `<serial> <tpm-address> [<data-dir>]`. */
export interface BatchUnit {
  readonly line: number;
  readonly serial: string;
  readonly tpm: string;
  readonly dataDir?: string;
}

/** Parses a batch file; every line is checked before any unit is touched. `#` starts a comment. */
export function parseBatch(text: string): BatchUnit[] {
  const units: BatchUnit[] = [];
  const seen = new Map<string, number>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const [serial = '', tpm = '', dataDir, extra] = line.split(/\s+/);
    const bad = (why: string) => new OutpostError('OUTPOST_E_FACTORY_BATCH', `batch line ${i + 1}: ${why}`, { details: { line: i + 1, text: raw } });
    if (extra !== undefined) throw bad('expected "<serial> <tpm> [<data-dir>]"');
    if (!SERIAL_PATTERN.test(serial)) throw bad(`"${serial}" is not a valid serial`);
    if (tpm === '') throw bad('missing TPM address');
    try {
      parseTpmAddress(tpm, () => true);
    } catch {
      throw bad(`"${tpm}" is not a TPM address`);
    }
    const first = seen.get(serial);
    if (first !== undefined) throw bad(`serial ${serial} already appears on line ${first}`);
    seen.set(serial, i + 1);
    units.push({ line: i + 1, serial, tpm, ...(dataDir !== undefined ? { dataDir } : {}) });
  });
  if (units.length === 0) throw new OutpostError('OUTPOST_E_FACTORY_BATCH', 'the batch file lists no unit', {});
  return units;
}

export type UnitOutcome =
  | { readonly serial: string; readonly status: 'provisioned'; readonly ms: number }
  | { readonly serial: string; readonly status: 'skipped'; readonly reason: string; readonly ms: number }
  | { readonly serial: string; readonly status: 'failed'; readonly code: string; readonly reason: string; readonly ms: number };

export interface BatchSummary {
  readonly outcomes: readonly UnitOutcome[];
  readonly provisioned: number;
  readonly skipped: number;
  readonly failed: number;
}

/** Renders progress for a human: a redrawn bar on a terminal, one line per unit otherwise. */
export class ProgressBar {
  private current = '';

  constructor(
    private readonly write: (s: string) => void,
    private readonly tty: boolean,
    private readonly total: number,
    private readonly width = 24,
  ) {}

  update(done: number, counts: { provisioned: number; skipped: number; failed: number }, serial: string, step: string): void {
    if (!this.tty) return;
    const filled = Math.round((done / this.total) * this.width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(this.width - filled)}] ${done}/${this.total}`;
    this.current = `${bar}  ok ${counts.provisioned}  skip ${counts.skipped}  fail ${counts.failed}  ${serial}: ${step}`;
    this.write(`\r\x1b[2K${this.current}`);
  }

  finished(o: UnitOutcome, done: number): void {
    const text =
      o.status === 'provisioned' ? `provisioned ${o.serial} (${o.ms} ms)` : o.status === 'skipped' ? `skipped     ${o.serial}: ${o.reason}` : `FAILED      ${o.serial}: ${o.code}: ${o.reason}`;
    this.write(this.tty ? `\r\x1b[2K${text}\n` : `[${done}/${this.total}] ${text}\n`);
  }

  end(): void {
    if (this.tty) this.write('\r\x1b[2K');
  }
}

/** Runs units one after another (one station, one TPM at a time); a failing unit never stops the batch. */
export async function runBatch(
  units: readonly BatchUnit[],
  provisionOne: (unit: BatchUnit, onStep: (step: string) => void) => Promise<'provisioned' | 'already-provisioned'>,
  progress: ProgressBar,
  now: () => number,
): Promise<BatchSummary> {
  const outcomes: UnitOutcome[] = [];
  const counts = { provisioned: 0, skipped: 0, failed: 0 };
  for (const [i, unit] of units.entries()) {
    const t0 = now();
    progress.update(i, counts, unit.serial, 'starting');
    let outcome: UnitOutcome;
    try {
      const status = await provisionOne(unit, (step) => progress.update(i, counts, unit.serial, step));
      const ms = Math.round(now() - t0);
      outcome = status === 'provisioned' ? { serial: unit.serial, status, ms } : { serial: unit.serial, status: 'skipped', reason: 'already provisioned', ms };
    } catch (e) {
      const c = describeCause(e);
      outcome = { serial: unit.serial, status: 'failed', code: c.code ?? 'ERROR', reason: c.message, ms: Math.round(now() - t0) };
    }
    counts[outcome.status] += 1;
    outcomes.push(outcome);
    progress.finished(outcome, i + 1);
  }
  progress.end();
  return { outcomes, ...counts };
}

export function renderSummary(s: BatchSummary): string {
  const lines = [`summary: ${s.provisioned} provisioned, ${s.skipped} skipped, ${s.failed} failed (${s.outcomes.length} units)`];
  for (const o of s.outcomes.filter((x) => x.status === 'failed')) if (o.status === 'failed') lines.push(`  failed  ${o.serial}: ${o.code}: ${o.reason}`);
  for (const o of s.outcomes.filter((x) => x.status === 'skipped')) if (o.status === 'skipped') lines.push(`  skipped ${o.serial}: ${o.reason}`);
  return lines.join('\n');
}
