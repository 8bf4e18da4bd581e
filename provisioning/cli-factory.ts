import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OutpostError } from '../src/errors/outpost-error.js';
import { EnrollmentAuthority, checkSerial } from './factory/authority.js';
import { parseBatch, ProgressBar, renderSummary, runBatch, type BatchUnit } from './factory/batch.js';
import { FactoryCa } from './factory/ca.js';
import { EkTrust } from './factory/ek-trust.js';
import { Ledger } from './factory/ledger.js';
import { Provisioner, type ProvisionResult } from './identity/provisioner.js';
import { IdentityStore } from './identity/store.js';
import { checkPersistentHandle } from './identity/keys.js';
import { hex32 } from './tpm/constants.js';
import { DEFAULT_DATA_DIR, actionRunner, cliLogger, collect, parseHandle, usage, type ProvisioningCliDeps, type Registrar } from './cli-common.js';

interface ProvisionOpts {
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

/** `outpost factory …`: the factory CA and unit provisioning (single or batch). */
export function factoryCli(deps: ProvisioningCliDeps): Registrar {
  return (program, io, setExit) => {
    const act = actionRunner(io, setExit);
    const factory = program.command('factory').description('factory line: the device CA and TPM provisioning of units');
    const ca = factory.command('ca').description('the factory CA (offline root + issuing CA)');
    ca.command('init')
      .description('create the Device Root CA and the Factory Issuing CA in a new directory')
      .requiredOption('--ca <dir>', 'CA directory to create')
      .requiredOption('--org <name>', 'organization name in every certificate')
      .option('--device-validity-days <n>', 'validity of device certificates (capped by the issuing CA)', '7300')
      .action(act(async (o: { ca: string; org: string; deviceValidityDays: string }) => {
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
      }));

    factory
      .command('provision')
      .description('provision a unit (or a batch): EK check, SRK, device key, credential activation, certificate, ledger')
      .requiredOption('--ca <dir>', 'factory CA directory (outpost factory ca init)')
      .option('--tpm <address>', 'the unit\'s TPM: /dev/tpmrm0, /dev/tpm0 or swtpm:<host>:<port>')
      .option('--serial <sn>', 'serial number of the unit (CN of its certificate)')
      .option('--batch <file>', 'provision every "<serial> <tpm> [<data-dir>]" line of a file')
      .option('--ek-roots <pem>', 'vendor EK CA certificates to trust (repeatable)', collect)
      .option('--ek-allow-list <file>', 'accept TPMs without a valid EK certificate if their EK hash is listed')
      .option('--data-dir <dir>', `data partition of the unit; identity goes to <dir>/identity; {serial} is replaced (default ${DEFAULT_DATA_DIR})`)
      .option('--ledger <file>', 'manufacturing ledger (default <ca>/ledger.jsonl)')
      .option('--srk-handle <handle>', 'persistent handle of the SRK', '0x81000001')
      .option('--key-handle <handle>', 'persistent handle of the device key', '0x81000002')
      .option('--counter-index <index>', 'NV index of the anti-rollback counter', '0x01000100')
      .option('--no-counter', 'do not define the anti-rollback counter')
      .option('--station <name>', 'station name recorded in the ledger (default: host name)')
      .option('--no-shutdown', 'do not send TPM2_Shutdown(STATE) when done')
      .option('--json', 'print JSON')
      .option('--log-level <level>', 'log level on stderr', 'warn')
      .action(act(async (o: ProvisionOpts) => {
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
      }));
  };
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

