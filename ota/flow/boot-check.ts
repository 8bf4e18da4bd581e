import { rm } from 'node:fs/promises';
import { describeCause } from '../../src/errors/outpost-error.js';
import { FlowContext, type UpdaterDeps } from './engine.js';
import { RESTING } from './states.js';
import type { FlowRecord } from './store.js';

export type MarkGoodOutcome =
  | 'marked-good' // a normal boot: the booted slot's attempts were refilled
  | 'committed' // a healthy trial boot: the new slot is committed
  | 'rolled-back' // the bootloader fell back (or the loop breaker gave up)
  | 'reboot-pending' // installed, the switch waits for a reboot
  | 'trial-unhealthy' // a trial boot did not become healthy: not committed
  | 'late-fallback-recovery' // the committed slot was re-armed after a fallback caused by interrupted boots
  | 'unhealthy'; // `committedBoots: health` and the check failed: not marked

export interface MarkGoodResult {
  readonly outcome: MarkGoodOutcome;
  readonly booted: string;
  readonly rebootRequested: boolean;
  readonly detail?: string;
  /** Why a rollback happened: OUTPOST_E_OTA_SWITCH_LOST, OUTPOST_E_OTA_TRIAL_FAILED, … */
  readonly code?: string;
}

/**
 * The boot side of the flow, run by `outpost ota mark-good` on every boot (after the health checks).
 * Invariants: it never marks the booted slot bad while the other slot is not good (never both
 * bad); a trial is committed only when healthy, and the security version advances only after the
 * commit is persisted; a boot that is not the expected slot resolves to a rollback, except after a
 * commit, where interrupted boots (power cuts before mark-good) get the committed slot re-armed a
 * bounded number of times before the fallback is accepted.
 */
export class BootCheck {
  constructor(private readonly deps: UpdaterDeps) {}

  async markGood(o: { reboot: boolean; signal?: AbortSignal }): Promise<MarkGoodResult> {
    const { selector } = this.deps;
    const current = await selector.getCurrent();
    const bootId = await this.deps.bootId();
    let rec: FlowRecord;
    try {
      rec = await this.deps.store.load();
    } catch (e) {
      // A damaged state file must not stop the counter refill: keep the running slot bootable.
      this.deps.logger.error({ err: describeCause(e) }, 'ota state unreadable; marking the booted slot good only');
      await selector.setState(current, 'good');
      return { outcome: 'marked-good', booted: current, rebootRequested: false, detail: 'update state unreadable' };
    }
    const ctx = new FlowContext(this.deps, rec);
    if (rec.state === 'reboot-pending') return this.afterSwitch(ctx, current, bootId, o);
    if (rec.state === 'trial-boot') return this.trial(ctx, current, bootId, o);
    if (RESTING.includes(rec.state) && rec.committed && rec.committed.bootname !== current) return this.lateFallback(ctx, current, o);
    return this.normal(ctx, current, o);
  }

  private async normal(ctx: FlowContext, current: string, o: { signal?: AbortSignal }): Promise<MarkGoodResult> {
    if (this.deps.cfg.markGood.committedBoots === 'health') {
      const v = await this.deps.health.wait(o.signal);
      if (!v.ok) return { outcome: 'unhealthy', booted: current, rebootRequested: false, detail: v.detail };
    }
    await this.deps.selector.setState(current, 'good');
    // The health wait can take minutes, in which a fleet install may have started: read the record again
    // and change only what mark-good owns, never writing back the copy read before the wait.
    await this.deps.store.update((fresh) =>
      !fresh.committed || fresh.lateRecoveries > 0
        ? { ...fresh, committed: fresh.committed ?? { bootname: current, version: fresh.slots[current]?.version ?? null, at: this.deps.clock.now() }, lateRecoveries: 0 }
        : null,
    );
    return { outcome: 'marked-good', booted: current, rebootRequested: false };
  }

  private async afterSwitch(ctx: FlowContext, current: string, bootId: string, o: { reboot: boolean; signal?: AbortSignal }): Promise<MarkGoodResult> {
    const r = ctx.rec;
    if (r.bootId === bootId) {
      // No reboot since the install.
      await this.deps.selector.setState(current, 'good');
      return { outcome: 'reboot-pending', booted: current, rebootRequested: false, detail: r.switched ? 'waiting for the reboot' : 'switch not done yet' };
    }
    if (current === r.target) {
      // Rebooted into the new slot: a trial, even when the switch was not recorded (its verification or the
      // record was cut off after the bootloader had it): never commit without the health checks.
      await ctx.transition('booted-target', { trialBoots: 1, bootId });
      return this.trial(ctx, current, bootId, o);
    }
    if (!r.switched) {
      // Rebooted before the switch was done (a crash or power cut): `outpost ota resume` redoes it.
      await this.deps.selector.setState(current, 'good');
      return { outcome: 'reboot-pending', booted: current, rebootRequested: false, detail: 'switch not done yet' };
    }
    // The reboot meant to start the trial came up on the old slot: tell a lost switch from a failed trial.
    const target = r.target ?? '?';
    const seen = r.target ? await this.deps.selector.attempted(r.target).catch(() => 'unknown' as const) : 'unknown';
    if (seen === 'not-tried') {
      return this.rollback(ctx, current, 'OUTPOST_E_OTA_SWITCH_LOST', `the bootloader never tried ${target}: the switch to it was not in the boot environment it read; ${current} booted`);
    }
    return this.rollback(
      ctx,
      current,
      'OUTPOST_E_OTA_TRIAL_FAILED',
      seen === 'tried' ? `the bootloader tried ${target} and fell back to ${current}` : `the bootloader booted ${current} instead of ${target} (whether it tried ${target} leaves no trace)`,
    );
  }

  private async trial(ctx: FlowContext, current: string, bootId: string, o: { reboot: boolean; signal?: AbortSignal }): Promise<MarkGoodResult> {
    const { selector, cfg } = this.deps;
    if (current !== ctx.rec.target) return this.rollback(ctx, current, 'OUTPOST_E_OTA_TRIAL_FAILED', `the bootloader fell back to ${current} during the trial of ${ctx.rec.target ?? '?'}`);
    if (ctx.rec.bootId !== bootId) await ctx.patch({ trialBoots: ctx.rec.trialBoots + 1, bootId });
    if (ctx.rec.trialBoots > cfg.maxResumes) return this.giveUp(ctx, current, o);
    let verdict = { ok: false, detail: '' };
    try {
      await ctx.enter();
      verdict = await this.deps.health.wait(o.signal);
    } catch (e) {
      verdict = { ok: false, detail: `trial-boot hook: ${describeCause(e).message}` };
    }
    if (!verdict.ok) {
      await ctx.patch({ lastError: { code: 'OUTPOST_E_OTA_UNHEALTHY', message: verdict.detail, state: 'trial-boot', at: this.deps.clock.now() } });
      const reboot = o.reboot && cfg.markGood.trialFailure === 'reboot';
      if (reboot) await this.deps.reboot(null);
      return { outcome: 'trial-unhealthy', booted: current, rebootRequested: reboot, detail: verdict.detail };
    }
    const r = ctx.rec;
    await ctx.transition('healthy', { committed: { bootname: current, version: r.bundle?.version ?? null, at: this.deps.clock.now() }, lateRecoveries: 0, lastError: null });
    await selector.setState(current, 'good');
    await this.deps.security.advanceTo(BigInt(r.bundle?.securityVersion ?? '0'));
    await this.finish(ctx);
    return { outcome: 'committed', booted: current, rebootRequested: false };
  }

  /** The trial slot keeps coming up but never passes: mark it bad and go back to the old slot. */
  private async giveUp(ctx: FlowContext, current: string, o: { reboot: boolean }): Promise<MarkGoodResult> {
    const { selector } = this.deps;
    const old = ctx.rec.booted;
    if (old && old !== current && (await selector.getState(old)) === 'good') {
      await selector.setPrimary(old);
      await selector.setState(current, 'bad');
    }
    await ctx.transition('gave-up', {
      lastError: { code: 'OUTPOST_E_OTA_LOOP', message: `trial slot ${current} booted ${ctx.rec.trialBoots} times without becoming healthy`, state: 'trial-boot', at: this.deps.clock.now() },
      committed: old ? { bootname: old, version: ctx.rec.slots[old]?.version ?? null, at: this.deps.clock.now() } : ctx.rec.committed,
    });
    await this.finish(ctx);
    if (o.reboot) await this.deps.reboot(null);
    return { outcome: 'rolled-back', booted: current, rebootRequested: o.reboot, detail: 'loop breaker: trial never became healthy' };
  }

  private async rollback(ctx: FlowContext, current: string, code: 'OUTPOST_E_OTA_SWITCH_LOST' | 'OUTPOST_E_OTA_TRIAL_FAILED', why: string): Promise<MarkGoodResult> {
    const { selector } = this.deps;
    const target = ctx.rec.target;
    if (code === 'OUTPOST_E_OTA_SWITCH_LOST') ctx.log.error({ target, booted: current, env: await selector.describe().catch(() => ({})) }, 'ota slot switch lost');
    await ctx.transition('booted-other', {
      lastError: { code, message: why, state: ctx.rec.state, at: this.deps.clock.now() },
      committed: { bootname: current, version: ctx.rec.slots[current]?.version ?? ctx.rec.committed?.version ?? null, at: this.deps.clock.now() },
    });
    if (target && target !== current) await selector.setState(target, 'bad');
    await selector.setState(current, 'good');
    await this.finish(ctx);
    return { outcome: 'rolled-back', booted: current, rebootRequested: false, detail: why, code };
  }

  private async lateFallback(ctx: FlowContext, current: string, o: { reboot: boolean }): Promise<MarkGoodResult> {
    const { selector, cfg } = this.deps;
    const committed = (ctx.rec.committed as NonNullable<FlowRecord['committed']>).bootname;
    await selector.setState(current, 'good');
    if (ctx.rec.lateRecoveries < cfg.markGood.lateFallbackRecoveries) {
      await ctx.patch({ lateRecoveries: ctx.rec.lateRecoveries + 1 });
      await selector.setPrimary(committed);
      ctx.log.warn({ booted: current, committed, attempt: ctx.rec.lateRecoveries }, 'ota late fallback: re-arming the committed slot');
      if (o.reboot) await this.deps.reboot(await selector.trialRebootArg());
      return { outcome: 'late-fallback-recovery', booted: current, rebootRequested: o.reboot, detail: `re-armed ${committed}` };
    }
    const why = `committed slot ${committed} did not boot after ${ctx.rec.lateRecoveries} re-arm(s); staying on ${current}`;
    const patch = {
      lastError: { code: 'OUTPOST_E_OTA_UNHEALTHY', message: why, state: ctx.rec.state, at: this.deps.clock.now() },
      committed: { bootname: current, version: ctx.rec.slots[current]?.version ?? null, at: this.deps.clock.now() },
      lateRecoveries: 0,
    } as const;
    if (ctx.rec.state === 'committed') await ctx.transition('booted-other', patch);
    else await ctx.patch(patch);
    await selector.setState(committed, 'bad');
    return { outcome: 'rolled-back', booted: current, rebootRequested: false, detail: why };
  }

  /** Enter hook of the final state (logged only: the outcome stands) and removal of the downloaded bundle. */
  private async finish(ctx: FlowContext): Promise<void> {
    try {
      await ctx.enter();
    } catch (e) {
      ctx.log.warn({ state: ctx.rec.state, err: describeCause(e) }, 'ota hook of a final state failed');
    }
    const p = ctx.rec.bundlePath;
    if (p && /^https?:/i.test(ctx.rec.request?.source ?? '')) await rm(p, { force: true });
  }
}
