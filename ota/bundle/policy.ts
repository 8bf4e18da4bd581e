import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Manifest, ManifestImage } from './manifest.js';
import { compareVersions } from './version.js';

/** What this device accepts; `securityVersion` is the current anti-rollback counter. */
export interface BundlePolicy {
  readonly compatible: string;
  readonly minVersion?: string;
  readonly securityVersion: bigint;
  /** Slot classes the target slot has devices for (`rootfs`, `bootfs`…). */
  readonly slotClasses: readonly string[];
  /** When the request named a version (fleet requests), the manifest must carry exactly it. */
  readonly expectVersion?: string;
}

/** A policy some of whose parts are unknown (`outpost ota info` without a configuration): those are not checked. */
export type PartialBundlePolicy = Omit<BundlePolicy, 'securityVersion' | 'slotClasses'> & {
  readonly securityVersion?: bigint;
  readonly slotClasses?: readonly string[];
};

export type PolicyCheckName = 'compatible' | 'version' | 'min-version' | 'security-version' | 'hooks' | 'images';

/** One policy check: `refusal` is the error install throws for it, null when it passed; `checked: false` when the policy lacked the input. */
export interface PolicyFinding {
  readonly check: PolicyCheckName;
  readonly checked: boolean;
  readonly refusal: OutpostError | null;
  /** What was compared, for people (`2.0.0 ≥ 1.5.0`). */
  readonly detail: string;
}

function finding(check: PolicyCheckName, refusal: OutpostError | null, detail: string, checked = true): PolicyFinding {
  return { check, checked, refusal, detail };
}

/**
 * Every policy check on a verified manifest, in the order install applies them, with the images that would be
 * installed (one per slot class, variants skipped). Pure: reads nothing, throws nothing.
 */
export function evaluateBundlePolicy(m: Manifest, p: PartialBundlePolicy): { images: ManifestImage[]; findings: PolicyFinding[] } {
  const findings: PolicyFinding[] = [];
  findings.push(
    finding(
      'compatible',
      m.compatible === p.compatible
        ? null
        : new OutpostError('OUTPOST_E_OTA_INCOMPATIBLE', `bundle is for "${m.compatible}", this device is "${p.compatible}"`, { details: { bundle: m.compatible, device: p.compatible } }),
      `bundle "${m.compatible}", device "${p.compatible}"`,
    ),
  );
  if (p.expectVersion !== undefined) {
    findings.push(
      finding(
        'version',
        m.version === p.expectVersion
          ? null
          : new OutpostError('OUTPOST_E_OTA_DIGEST', `bundle version is ${m.version}, the request named ${p.expectVersion}`, { details: { bundle: m.version, requested: p.expectVersion } }),
        `bundle ${m.version}, requested ${p.expectVersion}`,
      ),
    );
  }
  if (p.minVersion !== undefined) {
    let refusal: OutpostError | null = null;
    try {
      if (compareVersions(m.version, p.minVersion) < 0) {
        refusal = new OutpostError('OUTPOST_E_OTA_DOWNGRADE', `bundle version ${m.version} is below the minimum ${p.minVersion}`, { details: { version: m.version, minVersion: p.minVersion } });
      }
    } catch (e) {
      // A version that is not SemVer cannot be shown to be above the floor: refused (OUTPOST_E_OTA_DOWNGRADE).
      refusal = e as OutpostError;
    }
    findings.push(finding('min-version', refusal, `bundle ${m.version}, minimum ${p.minVersion}`));
  } else {
    findings.push(finding('min-version', null, 'no ota.minVersion', false));
  }
  if (p.securityVersion !== undefined) {
    const counter = p.securityVersion;
    findings.push(
      finding(
        'security-version',
        m.securityVersion < counter
          ? new OutpostError('OUTPOST_E_OTA_DOWNGRADE', `bundle security version ${m.securityVersion} is below the anti-rollback counter ${counter}`, {
              details: { bundle: m.securityVersion.toString(), counter: counter.toString() },
            })
          : null,
        `bundle ${m.securityVersion}, counter ${counter}`,
      ),
    );
  } else {
    findings.push(finding('security-version', null, `bundle ${m.securityVersion}, counter unknown`, false));
  }
  findings.push(
    finding(
      'hooks',
      m.hooks.length > 0 ? new OutpostError('OUTPOST_E_OTA_BUNDLE_UNSUPPORTED', 'bundle declares RAUC install hooks or a handler, which Outpost does not run', { details: { hooks: m.hooks } }) : null,
      m.hooks.length > 0 ? m.hooks.join(', ') : 'none',
    ),
  );
  const images: ManifestImage[] = [];
  let imageRefusal: OutpostError | null = null;
  for (const img of m.images) {
    if (img.variant !== undefined) continue;
    if (p.slotClasses !== undefined && !p.slotClasses.includes(img.slotClass)) {
      imageRefusal ??= new OutpostError('OUTPOST_E_OTA_CONFIG', `bundle has an image for slot class "${img.slotClass}" but the slots have no such device`, {
        details: { slotClass: img.slotClass, slotClasses: p.slotClasses },
      });
      continue;
    }
    images.push(img);
  }
  if (imageRefusal === null && images.length === 0) imageRefusal = new OutpostError('OUTPOST_E_OTA_BUNDLE_MANIFEST', 'bundle has no image without a variant for this device');
  const classes = m.images.filter((i) => i.variant === undefined).map((i) => i.slotClass);
  findings.push(finding('images', imageRefusal, `${classes.join(', ') || 'none'}${p.slotClasses !== undefined ? ` for slot devices ${p.slotClasses.join(', ')}` : ''}`, p.slotClasses !== undefined || imageRefusal !== null));
  return { images, findings };
}

/**
 * Checks a verified manifest against the device policy and returns the images to install, one per
 * slot class. Throws the first refusal: OUTPOST_E_OTA_INCOMPATIBLE / _DIGEST / _DOWNGRADE / _BUNDLE_UNSUPPORTED / _CONFIG / _BUNDLE_MANIFEST.
 */
export function checkBundlePolicy(m: Manifest, p: BundlePolicy): ManifestImage[] {
  const { images, findings } = evaluateBundlePolicy(m, p);
  const refused = findings.find((f) => f.refusal !== null);
  if (refused?.refusal) throw refused.refusal;
  return images;
}
