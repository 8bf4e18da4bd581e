import { DEFAULT_DATA_DIR, actionRunner, type ProvisioningCliDeps, type Registrar } from './cli-common.js';
import type { TunnelOpts } from './identity-actions.js';

/** `outpost identity …`: what this unit is, and the mTLS tunnel that uses its TPM key. */
export function identityCli(deps: ProvisioningCliDeps): Registrar {
  return (program, io, setExit) => {
    const act = actionRunner(io, setExit);
    const actions = () => import('./identity-actions.js');
    const identity = program.command('identity').description('device identity: the TPM-held key and its certificate');

    identity
      .command('show')
      .description('print serial, certificate subject and expiry, key handle, and whether the key is in the TPM')
      .option('--data-dir <dir>', 'data partition', DEFAULT_DATA_DIR)
      .option('--tpm <address>', 'TPM to check: /dev/tpmrm0, /dev/tpm0, swtpm:<host>:<port>', 'auto')
      .option('--json', 'print JSON')
      .action(act(async (o: { dataDir: string; tpm: string; json?: boolean }) => (await actions()).show(o, deps, io)));

    identity
      .command('tunnel')
      .description('forward plain TCP on loopback to a broker over mutual TLS with the TPM-held device key (a dedicated process)')
      .option('--listen <host:port>', 'loopback address the uplink connects to', '127.0.0.1:8883')
      .option('--remote <host:port>', 'the broker (TLS)')
      .option('--data-dir <dir>', 'data partition holding identity/', DEFAULT_DATA_DIR)
      .option('--ca <file>', 'CA certificates of the broker (default: Node\'s public CAs)')
      .option('--servername <name>', 'TLS server name (default: the remote host)')
      .option('--tcti <tcti>', 'TCTI for the tpm2 OpenSSL provider (device:/dev/tpmrm0, tabrmd:…)', 'device:/dev/tpmrm0')
      .option('--provider <path>', 'path of tpm2.so (default: searched in the usual ossl-modules directories)')
      .option('--print-openssl-config', 'print the OpenSSL configuration for running the tunnel directly, and exit')
      .option('--log-level <level>', 'log level', 'info')
      .action(act(async (o: TunnelOpts) => (await actions()).tunnel(o, deps, io)));
  };
}
