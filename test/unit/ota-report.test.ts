import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../hal/clock.js';
import { OtaOutcomeReporter, type OtaStatusSummary } from '../../ota/report.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';

/** Timers fire only when the test says so. */
function manualClock(): Clock & { fire(): void; pending(): number } {
  let timers: Array<{ id: number; fn: () => void }> = [];
  let next = 1;
  return {
    now: () => 1_700_000_000_000,
    monotonic: () => 0,
    sleep: async () => undefined,
    setTimeout: (fn: () => void) => {
      const id = next++;
      timers.push({ id, fn });
      return id;
    },
    clearTimeout: (h: unknown) => void (timers = timers.filter((t) => t.id !== h)),
    setInterval: () => 0,
    clearInterval: () => undefined,
    fire() {
      const due = timers;
      timers = [];
      for (const t of due) t.fn();
    },
    pending: () => timers.length,
  };
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function rig(states: Array<Partial<OtaStatusSummary> | Error>) {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-report-'));
  dirs.push(dir);
  const clock = manualClock();
  const reported: Array<{ event: string; data: Record<string, unknown> }> = [];
  let asked = 0;
  let failReport = false;
  const make = () =>
    new OtaOutcomeReporter({
      status: async () => {
        const s = states[Math.min(asked++, states.length - 1)];
        if (s instanceof Error) throw s;
        return { booted: 'A', primary: 'A', state: 'idle', updateId: null, bundleVersion: null, ...s };
      },
      report: async (event, data) => {
        if (failReport) throw new Error('store full');
        reported.push({ event, data });
      },
      marker: join(dir, 'marker.json'),
      clock,
      logger: silentLogger(),
      pollMs: 30_000,
    });
  return { dir, clock, reported, make, asked: () => asked, failReport: (v: boolean) => (failReport = v) };
}

describe('OtaOutcomeReporter', () => {
  it('reports a rollback once, with the update id and version, and not again after a restart', async () => {
    const r = rig([{ state: 'rolled-back', updateId: 'u1', bundleVersion: '2.0.0', booted: 'A', lastError: { code: 'OUTPOST_E_OTA_UNHEALTHY' } }]);
    expect(await r.make().checkOnce()).toBe('reported');
    expect(r.reported).toEqual([{ event: 'ota.rolled-back', data: { updateId: 'u1', state: 'rolled-back', version: '2.0.0', booted: 'A', primary: 'A', reason: 'unhealthy', lastError: { code: 'OUTPOST_E_OTA_UNHEALTHY' } } }]);
    expect(JSON.parse(readFileSync(join(r.dir, 'marker.json'), 'utf8'))).toMatchObject({ updateId: 'u1', state: 'rolled-back' });
    expect(await r.make().checkOnce()).toBe('already-reported');
    expect(r.reported).toHaveLength(1);
  });

  it('polls while an update is in flight and stops polling once the outcome is reported', async () => {
    const r = rig([{ state: 'reboot-pending', updateId: 'u2' }, { state: 'trial-boot', updateId: 'u2' }, { state: 'committed', updateId: 'u2', bundleVersion: '3' }]);
    const rep = r.make();
    rep.start();
    await waitFor(() => r.clock.pending() === 1);
    r.clock.fire();
    await waitFor(() => r.asked() === 2 && r.clock.pending() === 1);
    r.clock.fire();
    await waitFor(() => r.reported.length === 1);
    expect(r.reported[0]?.event).toBe('ota.committed');
    await new Promise((res) => setTimeout(res, 20));
    expect(r.clock.pending()).toBe(0); // steady state: no more questions
    rep.stop();
  });

  it('asks once and never again in the steady state (no update, or nothing new)', async () => {
    const r = rig([{ state: 'idle' }]);
    const rep = r.make();
    rep.start();
    await waitFor(() => r.asked() === 1);
    await new Promise((res) => setTimeout(res, 20));
    expect(r.clock.pending()).toBe(0);
    expect(r.reported).toEqual([]);
  });

  it('keeps the outcome unmarked when the upstream refuses it, and retries at the next poll', async () => {
    const r = rig([new Error('agent down'), { state: 'rolled-back', updateId: 'u3' }]);
    const rep = r.make();
    r.failReport(true);
    rep.start();
    await waitFor(() => r.clock.pending() === 1); // status failed: retry scheduled
    r.clock.fire();
    await waitFor(() => r.asked() === 2 && r.clock.pending() === 1); // report refused: not marked, retry scheduled
    expect(r.reported).toEqual([]);
    r.failReport(false);
    r.clock.fire();
    await waitFor(() => r.reported.length === 1);
    expect(r.reported[0]).toMatchObject({ event: 'ota.rolled-back', data: { updateId: 'u3' } });
    rep.stop();
  });
});
