import { OutpostError, describeCause } from '../src/errors/outpost-error.js';
import type { VerifiedBundle } from './bundle/bundle.js';
import { evaluateBundlePolicy, type PartialBundlePolicy } from './bundle/policy.js';
import { deviceSize } from './install/slot-writer.js';
import type { OtaSystem } from './system.js';

/** One line of `outpost ota info`: `refused` means `outpost ota install` would refuse the bundle for this reason. */
export interface InfoCheck {
  readonly check: string;
  readonly result: 'ok' | 'refused' | 'unchecked';
  readonly detail: string;
  readonly code?: string;
}

export interface BundleVerdict {
  readonly checks: readonly InfoCheck[];
  /** Why install would refuse the bundle, in the order install checks; empty when nothing refuses it. */
  readonly refusals: ReadonlyArray<{ readonly code: string; readonly message: string }>;
}

/** What `ota info` knows about the device the bundle is meant for. */
export interface DeviceView {
  readonly policy: PartialBundlePolicy;
  /** Why a check's input is missing (the security version could not be read…), by check name. */
  readonly unknown: Readonly<Record<string, string>>;
  /** The slot an install would write, with each device's size in bytes or why it is unknown; null with the reason when the booted slot is unknown. */
  readonly target: { readonly bootname: string; readonly sizes: Readonly<Record<string, number | string>> } | { readonly unknown: string };
}

const refused = (check: string, e: OutpostError): InfoCheck => ({ check, result: 'refused', detail: e.message, code: e.code });

/**
 * The checks `outpost ota install` makes before writing anything, made on an opened (signature-verified) bundle
 * without writing anything: the payload against the signed hashes, then the device policy and the target slot's
 * size when a device view is given. Invariants: a refusal carries the code install would throw; an error that is
 * not bad input (an I/O error reading the bundle) is thrown, never reported as a refusal.
 */
export async function inspectBundle(b: VerifiedBundle, device: DeviceView | null, o: { signal?: AbortSignal } = {}): Promise<BundleVerdict> {
  const checks: InfoCheck[] = [{ check: 'signature', result: 'ok', detail: `chain ${b.info.chain.join(' <- ')}` }];
  try {
    await b.verifyPayload(o.signal ? { signal: o.signal } : {});
    checks.push({ check: 'payload', result: 'ok', detail: b.info.format === 'verity' ? 'every block matches the signed verity root hash' : 'the whole payload matches the signature' });
  } catch (e) {
    if (!(e instanceof OutpostError) || e.exitCode !== 2) throw e;
    checks.push(refused('payload', e));
  }
  if (device === null) {
    checks.push({ check: 'device', result: 'unchecked', detail: 'no configuration: give -c <config> (or --compatible) to check what install would refuse' });
  } else {
    const { images, findings } = evaluateBundlePolicy(b.manifest, device.policy);
    for (const f of findings) {
      if (f.refusal !== null) checks.push(refused(f.check, f.refusal));
      else checks.push({ check: f.check, result: f.checked ? 'ok' : 'unchecked', detail: device.unknown[f.check] ?? f.detail });
    }
    checks.push(...slotSizeChecks(images, device.target));
  }
  return { checks, refusals: checks.filter((c) => c.result === 'refused').map((c) => ({ code: c.code as string, message: c.detail })) };
}

function slotSizeChecks(images: ReadonlyArray<{ slotClass: string; filename: string; size: number }>, target: DeviceView['target']): InfoCheck[] {
  if ('unknown' in target) return [{ check: 'slot-size', result: 'unchecked', detail: target.unknown }];
  return images.map((img) => {
    const size = target.sizes[img.slotClass];
    if (typeof size === 'string') return { check: 'slot-size', result: 'unchecked' as const, detail: size };
    if (size === undefined) return { check: 'slot-size', result: 'unchecked' as const, detail: `slot ${target.bootname} has no ${img.slotClass} device` };
    if (img.size > size) {
      return refused(
        'slot-size',
        new OutpostError('OUTPOST_E_OTA_SLOT_TOO_SMALL', `image ${img.filename} (${img.size} bytes) is larger than slot ${target.bootname} ${img.slotClass} (${size} bytes)`, {
          details: { image: img.size, slot: size },
        }),
      );
    }
    return { check: 'slot-size', result: 'ok' as const, detail: `${img.slotClass} ${img.size} bytes fit slot ${target.bootname} (${size} bytes)` };
  });
}

/** Why something could not be read, without pasting another error's message: its code (EACCES, OUTPOST_E_…). */
function reason(e: unknown): string {
  const c = describeCause(e);
  return c.code ?? 'unreadable';
}

/** The device as the configuration describes it; `compatible`/`minVersion` flags override the configured ones. */
export async function deviceViewFromSystem(sys: OtaSystem, flags: { compatible?: string; minVersion?: string }): Promise<DeviceView> {
  const unknown: Record<string, string> = {};
  let securityVersion: bigint | undefined;
  try {
    securityVersion = await sys.deps.security.read();
  } catch (e) {
    unknown['security-version'] = `the anti-rollback counter cannot be read here (${reason(e)})`;
  }
  const minVersion = flags.minVersion ?? sys.cfg.minVersion;
  const slots = sys.cfg.slots;
  let target: DeviceView['target'];
  let slotClasses: string[];
  const booted = await sys.selector.getCurrent().catch((e: unknown) => new Error(reason(e)));
  const slot = booted instanceof Error ? undefined : slots.find((s) => s.bootname !== booted);
  if (booted instanceof Error || slot === undefined || !slots.some((s) => s.bootname === booted)) {
    target = { unknown: booted instanceof Error ? `the booted slot is unknown here (${booted.message})` : `booted slot ${booted} is not one of the configured slots` };
    // Not knowing which slot install would write, check the slot classes both slots have.
    slotClasses = Object.keys(slots[0]?.devices ?? {}).filter((c) => slots.every((s) => c in s.devices));
  } else {
    const sizes: Record<string, number | string> = {};
    for (const [cls, dev] of Object.entries(slot.devices)) sizes[cls] = await deviceSize(dev).catch((e: unknown) => `the size of ${dev} cannot be read here (${reason(e)})`);
    target = { bootname: slot.bootname, sizes };
    slotClasses = Object.keys(slot.devices);
  }
  return {
    policy: {
      compatible: flags.compatible ?? sys.cfg.compatible,
      ...(minVersion !== undefined ? { minVersion } : {}),
      ...(securityVersion !== undefined ? { securityVersion } : {}),
      slotClasses,
    },
    unknown,
    target,
  };
}

/** The device as command-line flags describe it (no configuration): compatible and version floor only. */
export function deviceViewFromFlags(flags: { compatible: string; minVersion?: string }): DeviceView {
  return {
    policy: { compatible: flags.compatible, ...(flags.minVersion !== undefined ? { minVersion: flags.minVersion } : {}) },
    unknown: { 'security-version': 'no configuration: the anti-rollback counter is not known', images: 'no configuration: the slot devices are not known' },
    target: { unknown: 'no configuration: the slots are not known' },
  };
}
