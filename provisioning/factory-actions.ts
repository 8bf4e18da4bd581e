import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CliIo } from '../src/cli/program.js';
import { OutpostError } from '../src/errors/outpost-error.js';
import { EnrollmentAuthority, checkSerial } from './factory/authority.js';
import { parseBatch, ProgressBar, renderSummary, runBatch, type BatchUnit } from './factory/batch.js';
import { FactoryCa } from './factory/ca.js';
import { EkTrust } from './factory/ek-trust.js';
import { Ledger } from './factory/ledger.js';
import { Provisioner, type ProvisionResult } from './identity/provisioner.js';
import { IdentityStore } from './identity/store.js';
import { checkPersistentHandle } from './identity/keys.js';
import { DEFAULT_DATA_DIR, cliLogger, parseHandle, usage, type ProvisioningCliDeps } from './cli-common.js';

/** Bodies of `outpost factory …` (loaded only when such a command runs). */

export interface ProvisionOpts {
  ca: string;
  tpm?: string;
  serial?: string;
  batch?: string;
  ekRoots?: string[];
  ekAllowList?: string;
  dataDir?: string;
  ledger?: string;
  srkHandle: string;
  keyHandle: string;
  counterIndex: string;
  counter: boolean;
  station?: string;
  shutdown: boolean;
  json?: boolean;
  logLevel?: string;
}

export async function caInit(o: { ca: string; org: string; deviceValidityDays: string }, deps: ProvisioningCliDeps, io: CliIo): Promise<number> {
  const days = Number(o.deviceValidityDays);
  if (!Number.isInteger(days) || days < 1) throw usage('--device-validity-days must be a positive integer');
  const created = await FactoryCa.init(o.ca, { organization: o.org, clock: deps.clock, deviceValidityDays: days });
  const p = FactoryCa.paths(o.ca);
  io.out(`factory CA created in ${o.ca}`);
  io.out(`  root CA      ${created.rootCert.subject.replace(/\n/g, ', ')} (until ${created.rootCert.validTo})`);
  io.out(`  issuing CA   ${created.issuingCert.subject.replace(/\n/g, ', ')} (until ${created.issuingCert.validTo})`);
  io.out(`  give brokers ${p.rootCert}`);
  io.out(`  move OFFLINE ${p.rootKey} (only needed to issue a new issuing CA)`);
  return 0;
}

export async function provision(o: ProvisionOpts, deps: ProvisioningCliDeps, io: CliIo): Promise<number> {
  const srkHandle = parseHandle(o.srkHandle, 'srk-handle');
  const keyHandle = parseHandle(o.keyHandle, 'key-handle');
  checkPersistentHandle(srkHandle, '--srk-handle');
  checkPersistentHandle(keyHandle, '--key-handle');
  if (srkHandle === keyHandle) throw usage('--srk-handle and --key-handle must differ');
  const counterIndex = o.counter ? parseHandle(o.counterIndex, 'counter-index') : null;
  if (o.batch === undefined && (o.tpm === undefined || o.serial === undefined)) throw usage('give --tpm and --serial, or --batch <file>');
  if (o.batch !== undefined && (o.tpm !== undefined || o.serial !== undefined)) throw usage('--batch cannot be combined with --tpm or --serial');
  if (o.serial !== undefined) checkSerial(o.serial);
  const units: BatchUnit[] = o.batch !== undefined ? parseBatch(await readBatch(o.batch)) : [{ line: 0, serial: o.serial ?? '', tpm: o.tpm ?? '' }];
  const shared = units.filter((u) => u.dataDir === undefined);
  if (shared.length > 1 && !(o.dataDir ?? '').includes('{serial}')) {
    throw usage('in a batch, give each unit its own data directory: a third column, or {serial} in --data-dir', { units: shared.length });
  }

  const logger = await cliLogger(o.logLevel);
  const caObj = await FactoryCa.open(o.ca);
  const trust = await EkTrust.load({ ...(o.ekRoots ? { vendorRoots: o.ekRoots } : {}), ...(o.ekAllowList ? { allowList: o.ekAllowList } : {}) });
  const ledger = new Ledger(o.ledger ?? FactoryCa.paths(o.ca).ledger);
  const authority = new EnrollmentAuthority({ ca: caObj, trust, ledger, clock: deps.clock, station: o.station ?? deps.hostname });
  const dataDirFor = (u: BatchUnit) => (u.dataDir ?? o.dataDir ?? DEFAULT_DATA_DIR).replaceAll('{serial}', u.serial);

  const one = async (u: BatchUnit, onStep: (s: string) => void): Promise<ProvisionResult> => {
    const client = await deps.openTpm(u.tpm, logger);
    let ok = false;
    try {
      const store = new IdentityStore(join(dataDirFor(u), 'identity'));
      const r = await new Provisioner(client, store, authority, { srkHandle, keyHandle, counterIndex, logger, clock: deps.clock, onStep }).provision(u.serial);
      ok = true;
      return r;
    } finally {
      await client.close({ shutdown: ok && o.shutdown }).catch((e: unknown) => logger.warn({ err: String(e) }, 'closing the TPM failed'));
    }
  };

  if (o.batch === undefined) {
    const unit = units[0] as BatchUnit;
    const t0 = deps.clock.monotonic();
    const r = await one(unit, () => undefined);
    const ms = Math.round(deps.clock.monotonic() - t0);
    if (o.json) io.out(JSON.stringify({ status: r.status, ms, dataDir: dataDirFor(unit), record: r.record }, null, 2));
    else printResult(io.out, r, ms, join(dataDirFor(unit), 'identity'));
    return 0;
  }
  const bar = new ProgressBar(deps.writeErr, deps.stderrIsTTY, units.length);
  const summary = await runBatch(units, async (u, onStep) => (await one(u, onStep)).status, bar, () => deps.clock.monotonic());
  io.out(o.json ? JSON.stringify(summary, null, 2) : renderSummary(summary));
  return summary.failed > 0 ? 1 : 0;
}

async function readBatch(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new OutpostError('OUTPOST_E_FACTORY_BATCH', 'cannot read the batch file', { cause: e, details: { file } });
  }
}

function printResult(out: (s: string) => void, r: ProvisionResult, ms: number, dir: string): void {
  const rec = r.record;
  out(`${r.status === 'provisioned' ? 'provisioned' : 'already provisioned'} ${rec.serial}${r.status === 'provisioned' ? ` in ${ms} ms` : ''}`);
  out(`  key        ${rec.keyHandle} under SRK ${rec.srkHandle}${r.status === 'provisioned' ? (r.keyCreated ? ' (new)' : ' (reused from an earlier run)') : ''}`);
  out(`  subject    ${rec.subject}`);
  out(`  expires    ${rec.notAfter}`);
  out(`  EK         sha256:${rec.ekSpkiSha256} (${rec.ekMethod})`);
  if (rec.counter) out(`  counter    ${rec.counter.index} = ${rec.counter.start}`);
  out(`  files      ${dir}`);
}

