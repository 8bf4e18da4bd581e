import { DEFAULT_DATA_DIR, actionRunner, collect, type ProvisioningCliDeps, type Registrar } from './cli-common.js';
import type { ProvisionOpts } from './factory-actions.js';

/** `outpost factory …`: the factory CA and unit provisioning (single or batch). */
export function factoryCli(deps: ProvisioningCliDeps): Registrar {
  return (program, io, setExit) => {
    const act = actionRunner(io, setExit);
    const actions = () => import('./factory-actions.js');
    const factory = program.command('factory').description('factory line: the device CA and TPM provisioning of units');
    const ca = factory.command('ca').description('the factory CA (offline root + issuing CA)');
    ca.command('init')
      .description('create the Device Root CA and the Factory Issuing CA in a new directory')
      .requiredOption('--ca <dir>', 'CA directory to create')
      .requiredOption('--org <name>', 'organization name in every certificate')
      .option('--device-validity-days <n>', 'validity of device certificates (capped by the issuing CA)', '7300')
      .action(act(async (o: { ca: string; org: string; deviceValidityDays: string }) => (await actions()).caInit(o, deps, io)));

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
      .action(act(async (o: ProvisionOpts) => (await actions()).provision(o, deps, io)));
  };
}
