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

/**
 * Checks a verified manifest against the device policy and returns the images to install, one per
 * slot class. Throws OUTPOST_E_OTA_INCOMPATIBLE / _DOWNGRADE / _BUNDLE_UNSUPPORTED / _DIGEST.
 */
export function checkBundlePolicy(m: Manifest, p: BundlePolicy): ManifestImage[] {
  if (m.compatible !== p.compatible) {
    throw new OutpostError('OUTPOST_E_OTA_INCOMPATIBLE', `bundle is for "${m.compatible}", this device is "${p.compatible}"`, {
      details: { bundle: m.compatible, device: p.compatible },
    });
  }
  if (p.expectVersion !== undefined && m.version !== p.expectVersion) {
    throw new OutpostError('OUTPOST_E_OTA_DIGEST', `bundle version is ${m.version}, the request named ${p.expectVersion}`, { details: { bundle: m.version, requested: p.expectVersion } });
  }
  if (p.minVersion !== undefined && compareVersions(m.version, p.minVersion) < 0) {
    throw new OutpostError('OUTPOST_E_OTA_DOWNGRADE', `bundle version ${m.version} is below the minimum ${p.minVersion}`, { details: { version: m.version, minVersion: p.minVersion } });
  }
  if (m.securityVersion < p.securityVersion) {
    throw new OutpostError(
      'OUTPOST_E_OTA_DOWNGRADE',
      `bundle security version ${m.securityVersion} is below the anti-rollback counter ${p.securityVersion}`,
      { details: { bundle: m.securityVersion.toString(), counter: p.securityVersion.toString() } },
    );
  }
  if (m.hooks.length > 0) {
    throw new OutpostError('OUTPOST_E_OTA_BUNDLE_UNSUPPORTED', 'bundle declares RAUC install hooks or a handler, which Outpost does not run', { details: { hooks: m.hooks } });
  }
  const images: ManifestImage[] = [];
  for (const img of m.images) {
    if (img.variant !== undefined) continue;
    if (!p.slotClasses.includes(img.slotClass)) {
      throw new OutpostError('OUTPOST_E_OTA_CONFIG', `bundle has an image for slot class "${img.slotClass}" but the slots have no such device`, {
        details: { slotClass: img.slotClass, slotClasses: p.slotClasses },
      });
    }
    images.push(img);
  }
  if (images.length === 0) throw new OutpostError('OUTPOST_E_OTA_BUNDLE_MANIFEST', 'bundle has no image without a variant for this device');
  return images;
}
