import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from '../../hal/clock.js';
import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import type { VerifiedBundle } from '../bundle/bundle.js';
import type { BootSelector } from '../boot/types.js';
import type { HealthCheck } from './health.js';
import type { HookRunner } from './hooks.js';
import type { UpdateLock } from './lock.js';
import type { SecurityVersionStore } from './security-version.js';
import { nextState, type FlowEvent, type FlowState } from './states.js';
import type { FlowRecord, FlowStore } from './store.js';

/** The `ota:` section with paths resolved and defaults applied. */
export interface ResolvedOta {
  readonly compatible: string;
  readonly slots: ReadonlyArray<{ readonly bootname: string; readonly devices: Readonly<Record<string, string>> }>;
  readonly dataDir: string;
  readonly minVersion?: string;
  readonly markGood: {
    readonly committedBoots: 'mark' | 'health';
    readonly trialFailure: 'reboot' | 'wait';
    readonly lateFallbackRecoveries: number;
  };
  readonly maxTransitions: number;
  readonly maxResumes: number;
  readonly retryLaterMs: number;
  readonly download: { readonly maxBytes: number; readonly retries: number; readonly retryDelayMs: number; readonly stallTimeoutMs: number };
}

export interface OtaProgress {
  readonly state: FlowState | 'deferred';
  readonly percent?: number;
  readonly detail?: Record<string, unknown>;
}

export interface UpdaterDeps {
  readonly cfg: ResolvedOta;
  readonly selector: BootSelector;
  readonly store: FlowStore;
  readonly hooks: HookRunner;
  readonly lock: UpdateLock;
  readonly health: HealthCheck;
  readonly security: SecurityVersionStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly fetch: typeof fetch;
  readonly bootId: () => Promise<string>;
  /** Reboots the machine (with a trial argument such as `0 tryboot`); resolves when the command was issued. */
  readonly reboot: (arg: string | null) => Promise<void>;
  readonly keyring: () => Promise<X509Certificate[]>;
  readonly openBundle: (path: string, opts: { keyring: readonly X509Certificate[]; now: Date; signal?: AbortSignal; onHashProgress?: (d: number, t: number) => void }) => Promise<VerifiedBundle>;
}

const FAILURE_EVENTS: readonly FlowEvent[] = ['failed', 'cancelled', 'gave-up', 'booted-other'];

/**
 * Holds the flow record of one process and moves it through the state table. Invariants: the new
 * state is persisted (version + 1) before its entry action runs, so a crash at any point resumes
 * in a state whose entry action is idempotent; leave hooks run before success transitions and error
 * hooks before failure transitions; the loop breaker refuses success transitions beyond
 * `maxTransitions`; every save is a read-modify-write of the record on disk under the OTA state lock:
 * fields another process wrote meanwhile (mark-good's `committed`) are kept, and a record that has moved
 * to another state or update is never written over (OUTPOST_E_OTA_STATE_CONFLICT).
 */
export class FlowContext {
  constructor(
    readonly deps: UpdaterDeps,
    public rec: FlowRecord,
  ) {}

  get log(): Logger {
    return this.deps.logger;
  }

  hookContext(extra: Record<string, string> = {}): Record<string, string> {
    const r = this.rec;
    return {
      update_id: r.updateId ?? '',
      source: r.request?.source ?? '',
      version: r.bundle?.version ?? r.request?.version ?? '',
      target: r.target ?? '',
      booted: r.booted ?? '',
      ...extra,
    };
  }

  /** Persists changes that are not a transition (e.g. `switched`, counters). */
  async patch(p: Partial<FlowRecord>): Promise<FlowRecord> {
    this.rec = await this.deps.store.update((fresh) => ({ ...this.sameUpdate(fresh), ...p }));
    return this.rec;
  }

  /** The record on disk, if it is still in this context's state and update; else a conflict. */
  private sameUpdate(fresh: FlowRecord): FlowRecord {
    if (fresh.state !== this.rec.state || fresh.updateId !== this.rec.updateId) {
      throw new OutpostError('OUTPOST_E_OTA_STATE_CONFLICT', `another OTA process moved the update to state ${fresh.state} meanwhile`, {
        details: { expected: this.rec.state, found: fresh.state, updateId: fresh.updateId },
      });
    }
    return fresh;
  }

  async transition(event: FlowEvent, p: Partial<FlowRecord> = {}): Promise<FlowRecord> {
    const from = this.rec.state;
    const to = nextState(from, event);
    const failure = FAILURE_EVENTS.includes(event);
    const transitions = (p.transitions ?? this.rec.transitions) + 1;
    if (!failure && transitions > this.deps.cfg.maxTransitions) {
      throw new OutpostError('OUTPOST_E_OTA_LOOP', `update made ${this.rec.transitions} transitions, over ota.maxTransitions`, { details: { transitions: this.rec.transitions } });
    }
    if (failure) {
      await this.deps.hooks.run(from, 'error', this.hookContext({ event, error: p.lastError?.code ?? '' }));
    } else {
      const r = await this.deps.hooks.run(from, 'leave', this.hookContext({ event }));
      if (r === 'retry-later') throw deferred(`leave hook of ${from} asked to retry later`);
      if (r === 'failed') throw new OutpostError('OUTPOST_E_OTA_HOOK', `leave hook of ${from} failed`, { details: { state: from } });
    }
    const at = this.deps.clock.now();
    this.rec = await this.deps.store.update((fresh) => {
      const base = this.sameUpdate(fresh);
      return {
        ...base,
        ...p,
        state: to,
        transitions,
        resumes: 0,
        retryAt: null,
        deferred: null,
        history: [...base.history, { from, event, to, at, version: base.version + 1 }],
      };
    });
    this.log.info({ from, event, to, version: this.rec.version, updateId: this.rec.updateId }, 'ota state transition');
    return this.rec;
  }

  /** Runs the enter hook of the current state; throws DEFERRED (state kept) or HOOK. */
  async enter(): Promise<void> {
    const r = await this.deps.hooks.run(this.rec.state, 'enter', this.hookContext());
    if (r === 'retry-later') throw deferred(`enter hook of ${this.rec.state} asked to retry later`);
    if (r === 'failed') throw new OutpostError('OUTPOST_E_OTA_HOOK', `enter hook of ${this.rec.state} failed`, { details: { state: this.rec.state } });
  }

  /** Records a deferral (retry later) without leaving the state. */
  async defer(reason: string): Promise<void> {
    await this.patch({ retryAt: this.deps.clock.now() + this.deps.cfg.retryLaterMs, deferred: reason });
  }

  errorOf(e: unknown): FlowRecord['lastError'] {
    const c = describeCause(e);
    return { code: c.code ?? 'OUTPOST_E_OTA_STATE', message: c.message, state: this.rec.state, at: this.deps.clock.now() };
  }
}

export function deferred(reason: string): OutpostError {
  return new OutpostError('OUTPOST_E_OTA_DEFERRED', `update deferred: ${reason}`, { details: { reason } });
}
