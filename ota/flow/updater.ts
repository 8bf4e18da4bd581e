import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { OutpostError, isOutpostError } from '../../src/errors/outpost-error.js';
import type { VerifiedBundle } from '../bundle/bundle.js';
import { checkBundlePolicy } from '../bundle/policy.js';
import { download } from '../install/download.js';
import { deviceIdentity, deviceSize, sameDevice, writeSlot } from '../install/slot-writer.js';
import { DriverLock } from './driver-lock.js';
import { FlowContext, type OtaProgress, type UpdaterDeps } from './engine.js';
import { PRE_SWITCH, PROGRESS_SPAN, RESTING, type FlowEvent, type FlowState } from './states.js';
import type { FlowRecord } from './store.js';

export interface UpdateRequest {
  /** A local bundle path or an http(s) URL. */
  readonly source: string;
  readonly sha256?: string;
  readonly version?: string;
  readonly origin: string;
}

export interface RunOptions {
  readonly onProgress?: (p: OtaProgress) => void;
  readonly signal?: AbortSignal;
  /** Reboot into the trial once reboot-pending is reached. */
  readonly reboot?: boolean;
}

type Action = (ctx: FlowContext, o: RunOptions) => Promise<{ event: FlowEvent; patch?: Partial<FlowRecord> }>;

const isUrl = (s: string) => /^https?:\/\//i.test(s);

function pct(state: FlowState, fraction: number): number {
  const span = PROGRESS_SPAN[state];
  if (!span) return 0;
  return Math.round(span[0] + (span[1] - span[0]) * Math.min(1, Math.max(0, fraction)));
}

/**
 * The install side of the update flow: request → download → verify → install → reboot pending.
 * Invariants: nothing is written before the bundle is verified and checked against the policy and
 * the slot sizes; the target is never the booted slot (checked by name and by device identity
 * right before writing) and is marked bad before its first byte is written; the bootloader is
 * switched only after every image was written and read back.
 */
export class Updater {
  private open: { updateId: string; bundle: VerifiedBundle } | null = null;
  private readonly driver: DriverLock;
  private driving = 0;

  constructor(private readonly deps: UpdaterDeps) {
    this.driver = new DriverLock(path.join(path.dirname(deps.store.file), 'driver.lock'), { bootId: deps.bootId, now: () => deps.clock.now() });
  }

  /**
   * Runs `fn` holding the driver lock (re-entrant within this object). When another live process of this
   * boot drives the update, `held` decides: refuse (install, cancel) or leave it to that process (resume).
   */
  private async exclusive<T>(fn: () => Promise<T>, held: (pid: number) => Promise<T>): Promise<T> {
    if (this.driving > 0) return fn();
    const got = await this.driver.acquire();
    if (!got.acquired) return held(got.holder.pid);
    this.driving++;
    try {
      return await fn();
    } finally {
      this.driving--;
      await this.driver.release();
    }
  }

  private busy(pid: number): never {
    throw new OutpostError('OUTPOST_E_OTA_BUSY', `another process (pid ${pid}) is driving the update`, { details: { pid } });
  }

  async install(req: UpdateRequest, o: RunOptions = {}): Promise<FlowRecord> {
    return this.exclusive(() => this.installLocked(req, o), async (pid) => this.busy(pid));
  }

  private async installLocked(req: UpdateRequest, o: RunOptions): Promise<FlowRecord> {
    const rec = await this.deps.store.load();
    if (!RESTING.includes(rec.state)) {
      if (PRE_SWITCH.includes(rec.state) && rec.request?.source === req.source) return this.resume(o);
      throw new OutpostError('OUTPOST_E_OTA_BUSY', `an update is in state ${rec.state}; run \`outpost ota resume\` or \`outpost ota cancel\` first`, {
        details: { state: rec.state, source: rec.request?.source ?? null },
      });
    }
    const ctx = new FlowContext(this.deps, rec);
    const source = isUrl(req.source) ? req.source : path.resolve(req.source);
    await ctx.transition(isUrl(source) ? 'request' : 'request-local', {
      updateId: randomUUID(),
      request: { ...req, source, ...(o.reboot ? { reboot: true } : {}) },
      bundlePath: isUrl(source) ? null : source,
      booted: null,
      target: null,
      bundle: null,
      bootId: null,
      switched: false,
      transitions: 0,
      trialBoots: 0,
      lastError: null,
    });
    return this.drive(ctx, o);
  }

  /**
   * Continues an interrupted install (after a crash, power cut or deferral). When another process drives
   * the update right now (e.g. the OTA agent started it while this boot's resume unit was starting), there is
   * nothing to resume: the current record is returned untouched.
   */
  async resume(o: RunOptions = {}): Promise<FlowRecord> {
    return this.exclusive(
      () => this.resumeLocked(o),
      async (pid) => {
        this.deps.logger.info({ pid }, 'ota resume: another process drives the update; nothing to do');
        return this.deps.store.load();
      },
    );
  }

  private async resumeLocked(o: RunOptions): Promise<FlowRecord> {
    const rec = await this.deps.store.load();
    const ctx = new FlowContext(this.deps, rec);
    // A deferred update (lock held, hook exit 75) retrying is not a crash: only crashes count.
    if (PRE_SWITCH.includes(rec.state) && rec.deferred === null) {
      await ctx.patch({ resumes: rec.resumes + 1 });
      if (ctx.rec.resumes > this.deps.cfg.maxResumes) {
        const e = new OutpostError('OUTPOST_E_OTA_LOOP', `state ${rec.state} was resumed ${ctx.rec.resumes} times, over ota.maxResumes`, { details: { state: rec.state } });
        await this.fail(ctx, e);
        throw e;
      }
    }
    return this.drive(ctx, o);
  }

  /** Abandons an update that has not booted yet; the boot side returns to the booted slot. */
  async cancel(): Promise<FlowRecord> {
    return this.exclusive(() => this.cancelLocked(), async (pid) => this.busy(pid));
  }

  private async cancelLocked(): Promise<FlowRecord> {
    const rec = await this.deps.store.load();
    const ctx = new FlowContext(this.deps, rec);
    if (RESTING.includes(rec.state)) return rec;
    if (rec.state === 'trial-boot') throw new OutpostError('OUTPOST_E_OTA_BUSY', 'the running slot is on trial; mark-good commits it or the bootloader falls back');
    if (rec.state === 'reboot-pending' && rec.switched && rec.target) {
      const current = await this.deps.selector.getCurrent();
      await this.deps.selector.setPrimary(current);
      if (rec.target !== current) await this.deps.selector.setState(rec.target, 'bad');
    }
    await this.closeBundle();
    return ctx.transition('cancelled', { lastError: null });
  }

  private async drive(ctx: FlowContext, o: RunOptions): Promise<FlowRecord> {
    for (let guard = 0; guard < 16; guard++) {
      const state = ctx.rec.state;
      if (state === 'reboot-pending') return this.switchAndReboot(ctx, o);
      const action: Action | null =
        state === 'downloading' ? this.downloading : state === 'verifying' ? this.verifying : state === 'installing' ? this.installing : null;
      if (!action) return ctx.rec;
      try {
        if (o.signal?.aborted) throw o.signal.reason;
        await ctx.enter();
        const { event, patch } = await action.call(this, ctx, o);
        await ctx.transition(event, patch ?? {});
      } catch (e) {
        if (isOutpostError(e, 'OUTPOST_E_OTA_DEFERRED')) {
          await ctx.defer(String(e.details['reason'] ?? 'retry later'));
          o.onProgress?.({ state: 'deferred', detail: { reason: e.details['reason'] } });
          throw e;
        }
        if (o.signal?.aborted) throw e; // interrupted: the state stays for `resume`
        await this.fail(ctx, e);
        throw e;
      }
    }
    return ctx.rec;
  }

  private async fail(ctx: FlowContext, e: unknown): Promise<void> {
    const state = ctx.rec.state;
    ctx.log.warn({ state, err: ctx.errorOf(e) }, 'ota update failed');
    await this.closeBundle();
    const rejected = isOutpostError(e) && e.exitCode === 2;
    if (rejected && ctx.rec.bundlePath && isUrl(ctx.rec.request?.source ?? '')) await rm(ctx.rec.bundlePath, { force: true });
    await ctx.transition('failed', { lastError: ctx.errorOf(e) });
  }

  private async switchAndReboot(ctx: FlowContext, o: RunOptions): Promise<FlowRecord> {
    const { target } = ctx.rec;
    if (!target) throw new OutpostError('OUTPOST_E_OTA_STATE', 'reboot-pending without a target slot');
    if (!ctx.rec.switched) {
      await ctx.enter(); // a hook asking to retry later keeps the state for `outpost ota resume`
      try {
        await this.switchTo(ctx, target);
      } catch (e) {
        // Cleanly refused: the target is taken out of the boot order again and the update ends here.
        ctx.log.error({ target, err: ctx.errorOf(e) }, 'ota switch failed; the booted slot stays');
        await this.deps.selector.setState(target, 'bad').catch(() => undefined);
        await this.closeBundle();
        await ctx.transition('cancelled', { lastError: ctx.errorOf(e) });
        throw e;
      }
    }
    o.onProgress?.({ state: 'reboot-pending', percent: 100, detail: { target, switchVerified: true } });
    if (o.reboot ?? ctx.rec.request?.reboot ?? false) await this.deps.reboot(await this.deps.selector.trialRebootArg());
    return ctx.rec;
  }

  /** Makes the target primary; recorded as switched only once the bootloader's view of the environment says so. */
  private async switchTo(ctx: FlowContext, target: string): Promise<void> {
    // setPrimary reads its write back as the bootloader will (OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED otherwise);
    // the selector must then also name the target primary.
    await this.deps.selector.setPrimary(target);
    const primary = await this.deps.selector.getPrimary();
    if (primary !== target) {
      throw new OutpostError('OUTPOST_E_OTA_BOOT_ENV_UNVERIFIED', `after switching to ${target} the boot environment names ${primary} primary`, { details: { target, primary } });
    }
    await ctx.patch({ switched: true, bootId: await this.deps.bootId() });
    this.deps.logger.info({ target, env: await this.deps.selector.describe().catch(() => ({})) }, 'ota switch written and verified');
  }

  private async closeBundle(): Promise<void> {
    const b = this.open;
    this.open = null;
    await b?.bundle.close();
  }

  private async downloading(ctx: FlowContext, o: RunOptions): Promise<{ event: FlowEvent; patch: Partial<FlowRecord> }> {
    const req = ctx.rec.request as NonNullable<FlowRecord['request']>;
    const dir = path.join(this.deps.cfg.dataDir, 'downloads');
    await mkdir(dir, { recursive: true });
    const name = `${createHash('sha256').update(req.source).digest('hex').slice(0, 16)}.raucb`;
    // Only the current download is kept: old bundles and parts are removed to free the data partition.
    for (const f of await readdir(dir)) if (!f.startsWith(name)) await rm(path.join(dir, f), { force: true });
    const dest = path.join(dir, name);
    const complete = await stat(dest).then(() => true, () => false);
    if (!complete) {
      const d = this.deps.cfg.download;
      await download({
        url: req.source,
        dest,
        ...(req.sha256 !== undefined ? { sha256: req.sha256 } : {}),
        maxBytes: d.maxBytes,
        retries: d.retries,
        retryDelayMs: d.retryDelayMs,
        stallTimeoutMs: d.stallTimeoutMs,
        fetch: this.deps.fetch,
        clock: this.deps.clock,
        onProgress: (done, total) => o.onProgress?.({ state: 'downloading', percent: pct('downloading', total ? done / total : 0), detail: { done, total } }),
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } else if (req.sha256 !== undefined) {
      await checkFileSha(dest, req.sha256);
    }
    return { event: 'downloaded', patch: { bundlePath: dest } };
  }

  private async verifying(ctx: FlowContext, o: RunOptions): Promise<{ event: FlowEvent; patch: Partial<FlowRecord> }> {
    const { cfg, selector } = this.deps;
    const file = ctx.rec.bundlePath as string;
    const req = ctx.rec.request as NonNullable<FlowRecord['request']>;
    if (!isUrl(req.source) && req.sha256 !== undefined) await checkFileSha(file, req.sha256);
    await this.closeBundle();
    const bundle = await this.deps.openBundle(file, {
      keyring: await this.deps.keyring(),
      now: new Date(this.deps.clock.now()),
      ...(o.signal ? { signal: o.signal } : {}),
      onHashProgress: (d, t) => o.onProgress?.({ state: 'verifying', percent: pct('verifying', d / t), detail: { done: d, total: t } }),
    });
    try {
      const booted = await selector.getCurrent();
      const target = cfg.slots.find((s) => s.bootname !== booted);
      if (!target || !cfg.slots.some((s) => s.bootname === booted)) throw new OutpostError('OUTPOST_E_OTA_SLOT', `booted slot ${booted} is not one of the configured slots`);
      const images = checkBundlePolicy(bundle.manifest, {
        compatible: cfg.compatible,
        ...(cfg.minVersion !== undefined ? { minVersion: cfg.minVersion } : {}),
        securityVersion: await this.deps.security.read(),
        slotClasses: Object.keys(target.devices),
        ...(req.version !== undefined ? { expectVersion: req.version } : {}),
      });
      for (const img of images) {
        const dev = target.devices[img.slotClass] as string;
        const size = await deviceSize(dev).catch((e: unknown) => {
          throw new OutpostError('OUTPOST_E_OTA_SLOT', `slot device ${dev} is not accessible`, { cause: e, details: { device: dev } });
        });
        if (img.size > size) {
          throw new OutpostError('OUTPOST_E_OTA_SLOT_TOO_SMALL', `image ${img.filename} (${img.size} bytes) is larger than slot ${target.bootname} ${dev} (${size} bytes)`, {
            details: { image: img.size, slot: size, device: dev },
          });
        }
      }
      // Cheap checks first; then every verity block, so a tampered payload is refused before any write.
      await bundle.verifyPayload({ ...(o.signal ? { signal: o.signal } : {}), onProgress: (d, t) => o.onProgress?.({ state: 'verifying', percent: pct('verifying', d / t), detail: { phase: 'verity', done: d, total: t } }) });
      const m = bundle.manifest;
      this.open = { updateId: ctx.rec.updateId ?? '', bundle };
      o.onProgress?.({ state: 'verifying', percent: pct('verifying', 1), detail: { version: m.version, format: bundle.info.format } });
      return {
        event: 'verified',
        patch: {
          booted,
          target: target.bootname,
          bundle: {
            version: m.version,
            compatible: m.compatible,
            securityVersion: m.securityVersion.toString(),
            format: bundle.info.format,
            signer: bundle.info.signer,
            images: images.map((i) => ({ slotClass: i.slotClass, filename: i.filename, sha256: i.sha256, size: i.size })),
          },
        },
      };
    } catch (e) {
      await bundle.close();
      throw e;
    }
  }

  private async installing(ctx: FlowContext, o: RunOptions): Promise<{ event: FlowEvent; patch: Partial<FlowRecord> }> {
    const { cfg, selector } = this.deps;
    const holders = await this.deps.lock.holders();
    if (holders.length > 0) {
      await this.closeBundle();
      throw new OutpostError('OUTPOST_E_OTA_DEFERRED', `update deferred: update lock held by ${holders.map((h) => `${h.name} (pid ${h.pid})`).join(', ')}`, {
        details: { reason: `update lock held by ${holders.map((h) => h.name).join(', ')}`, holders },
      });
    }
    const targetName = ctx.rec.target as string;
    const current = await selector.getCurrent();
    const target = cfg.slots.find((s) => s.bootname === targetName);
    const booted = cfg.slots.find((s) => s.bootname === current);
    if (!target || !booted || targetName === current) throw new OutpostError('OUTPOST_E_OTA_SLOT', `refusing to write slot ${targetName}: it is the booted slot`, { details: { target: targetName, booted: current } });
    const bootedIds = await Promise.all(Object.values(booted.devices).map((d) => deviceIdentity(d).catch(() => null)));
    for (const dev of Object.values(target.devices)) {
      const id = await deviceIdentity(dev);
      if (bootedIds.some((b) => b !== null && sameDevice(b, id))) {
        throw new OutpostError('OUTPOST_E_OTA_SLOT', `refusing to write ${dev}: it is the same device as the booted slot`, { details: { device: dev } });
      }
    }
    // Marking the target bad must leave a good slot: the running one has to be marked good already.
    if ((await selector.getState(current)) !== 'good') {
      throw new OutpostError('OUTPOST_E_OTA_SLOT', `the booted slot ${current} is not marked good yet; run \`outpost ota mark-good\` first`, { details: { booted: current } });
    }
    // A power cut from here on leaves the target marked bad: the bootloader never picks a half-written slot.
    await selector.setState(targetName, 'bad');
    let bundle = this.open?.updateId === ctx.rec.updateId ? this.open.bundle : null;
    if (!bundle) {
      bundle = await this.deps.openBundle(ctx.rec.bundlePath as string, { keyring: await this.deps.keyring(), now: new Date(this.deps.clock.now()), ...(o.signal ? { signal: o.signal } : {}) });
      this.open = { updateId: ctx.rec.updateId ?? '', bundle };
    }
    const images = (ctx.rec.bundle?.images ?? []).map((i) => bundle.image(i.slotClass)).filter((i) => i !== null);
    const total = images.reduce((n, i) => n + i.size, 0);
    let before = 0;
    const started = this.deps.clock.monotonic();
    try {
      for (const img of images) {
        const device = target.devices[img.slotClass] as string;
        await writeSlot({
          device,
          size: img.size,
          sha256: img.sha256,
          produce: (sink) => (bundle as VerifiedBundle).streamImage(img, sink, o.signal ? { signal: o.signal } : {}),
          onProgress: (p) => {
            const done = before + p.written;
            const secs = (this.deps.clock.monotonic() - started) / 1000;
            o.onProgress?.({
              state: 'installing',
              percent: pct('installing', (2 * before + p.written + p.verified) / (2 * total)),
              detail: { phase: p.verified < p.written ? 'write' : 'verify', image: img.slotClass, done, verified: before + p.verified, total, bytesPerSec: secs > 0 ? done / secs : 0 },
            });
          },
          ...(o.signal ? { signal: o.signal } : {}),
        });
        before += img.size;
      }
    } finally {
      await this.closeBundle();
    }
    return {
      event: 'installed',
      patch: { switched: false, bootId: await this.deps.bootId(), slots: { ...ctx.rec.slots, [targetName]: { version: ctx.rec.bundle?.version ?? '?', installedAt: this.deps.clock.now() } } },
    };
  }
}

async function checkFileSha(file: string, expected: string): Promise<void> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })) h.update(c as Buffer);
  const actual = h.digest('hex');
  if (actual !== expected.toLowerCase()) {
    throw new OutpostError('OUTPOST_E_OTA_DIGEST', `bundle sha256 ${actual} differs from the requested ${expected}`, { details: { file, expected, actual } });
  }
}
