import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Clock } from '../hal/clock.js';
import { describeCause } from '../src/errors/outpost-error.js';
import { writeFileAtomic } from './atomic-file.js';

/** What `ota.status` answers (the fields the reporter reads). */
export interface OtaStatusSummary {
  readonly booted: string | null;
  readonly primary: string | null;
  readonly state: string;
  readonly updateId: string | null;
  readonly bundleVersion: string | null;
  readonly committed?: unknown;
  readonly lastError?: unknown;
}

export interface OtaOutcomeReporterDeps {
  /** `ota.status`, in process or through the OTA agent. */
  readonly status: () => Promise<OtaStatusSummary>;
  /** Durably hands the event to the upstream (resolves once persisted). */
  readonly report: (event: string, data: Record<string, unknown>) => Promise<void>;
  /** JSON file remembering the last outcome reported (on the data partition). */
  readonly marker: string;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How often to look again while an update is in flight (installing, waiting for its reboot, on trial). */
  readonly pollMs: number;
}

const OUTCOMES: Readonly<Record<string, string>> = { committed: 'ota.committed', 'rolled-back': 'ota.rolled-back' };
const IN_FLIGHT = new Set(['downloading', 'verifying', 'installing', 'reboot-pending', 'trial-boot']);
/** Why an update rolled back, from the code mark-good recorded (docs/ota.md, "Outcomes reported upstream"). */
const ROLLBACK_REASONS: Readonly<Record<string, string>> = {
  OUTPOST_E_OTA_SWITCH_LOST: 'switch-lost',
  OUTPOST_E_OTA_TRIAL_FAILED: 'trial-failed',
  OUTPOST_E_OTA_UNHEALTHY: 'unhealthy',
  OUTPOST_E_OTA_LOOP: 'gave-up',
};

/** The rollback reason for a status, or null when it did not roll back. */
export function rollbackReason(st: Pick<OtaStatusSummary, 'state' | 'lastError'>): string | null {
  if (st.state !== 'rolled-back') return null;
  const code = (st.lastError as { code?: unknown } | null | undefined)?.code;
  return (typeof code === 'string' ? ROLLBACK_REASONS[code] : undefined) ?? 'other';
}

/**
 * Reports how each update ended (committed or rolled back) upstream, once per update. Invariants: the
 * marker is written only after the upstream accepted the event, so an outcome is reported at least once,
 * and (the marker surviving restarts) not again for the same update; `ota.status` is asked at start and
 * then only while an update is in flight, never in the steady state (with the agent, each question may
 * start a process); a failed check is logged and retried at the next poll, never thrown.
 */
export class OtaOutcomeReporter {
  private timer: unknown = null;
  private checking: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly d: OtaOutcomeReporterDeps) {}

  /** Checks now, then every pollMs while an update is in flight. */
  start(): void {
    this.stopped = false;
    this.kick();
  }

  /** Checks again soon (e.g. after an `ota.install` command ended). */
  kick(): void {
    if (this.stopped) return;
    this.d.clock.clearTimeout(this.timer);
    this.timer = null;
    this.checking ??= this.check().finally(() => {
      this.checking = null;
    });
  }

  stop(): void {
    this.stopped = true;
    this.d.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /** One look at the update state; reports a new outcome. Resolves with what it saw. */
  async checkOnce(): Promise<'reported' | 'already-reported' | 'in-flight' | 'nothing'> {
    const st = await this.d.status();
    if (IN_FLIGHT.has(st.state)) return 'in-flight';
    const event = OUTCOMES[st.state];
    if (!event || !st.updateId) return 'nothing';
    const last = await this.readMarker();
    if (last?.updateId === st.updateId && last.state === st.state) return 'already-reported';
    await this.d.report(event, {
      updateId: st.updateId,
      state: st.state,
      version: st.bundleVersion,
      booted: st.booted,
      primary: st.primary,
      ...(st.state === 'rolled-back' ? { reason: rollbackReason(st) } : {}),
      lastError: st.lastError ?? null,
    });
    await writeFileAtomic(this.d.marker, `${JSON.stringify({ updateId: st.updateId, state: st.state, reportedAt: this.d.clock.now() })}\n`);
    this.d.logger.info({ event, updateId: st.updateId, version: st.bundleVersion }, 'update outcome reported upstream');
    return 'reported';
  }

  private async check(): Promise<void> {
    let again = false;
    try {
      again = (await this.checkOnce()) === 'in-flight';
    } catch (e) {
      this.d.logger.warn({ err: describeCause(e) }, 'update outcome check failed; retrying');
      again = true;
    }
    if (again && !this.stopped) this.timer = this.d.clock.setTimeout(() => this.kick(), this.d.pollMs);
  }

  private async readMarker(): Promise<{ updateId?: string; state?: string } | null> {
    try {
      return JSON.parse(await readFile(this.d.marker, 'utf8')) as { updateId?: string; state?: string };
    } catch {
      return null;
    }
  }
}
