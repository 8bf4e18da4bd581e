import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../hal/clock.js';
import { EnrollmentAuthority } from '../../provisioning/factory/authority.js';
import { FactoryCa } from '../../provisioning/factory/ca.js';
import { EkTrust } from '../../provisioning/factory/ek-trust.js';
import { Ledger } from '../../provisioning/factory/ledger.js';

/** A throw-away factory CA with its ledger, and an authority trusting the given EK roots / allow-list. */
export async function testFactory(trust: { vendorRoots?: string[]; allowList?: string }): Promise<{ dir: string; ca: FactoryCa; ledger: Ledger; authority: EnrollmentAuthority }> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-ca-'));
  const ca = await FactoryCa.init(join(dir, 'ca'), { organization: 'Outpost Test', clock: systemClock });
  const ledger = new Ledger(join(dir, 'ca', 'ledger.jsonl'));
  const authority = new EnrollmentAuthority({ ca, trust: await EkTrust.load(trust), ledger, clock: systemClock, station: 'test' });
  return { dir, ca, ledger, authority };
}
