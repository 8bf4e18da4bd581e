import { factoryCli } from './cli-factory.js';
import { identityCli } from './cli-identity.js';
import type { ProvisioningCliDeps, Registrar } from './cli-common.js';

export type { ProvisioningCliDeps } from './cli-common.js';

/** The `outpost factory …` and `outpost identity …` command groups (one cliExtensions entry). */
export function provisioningCli(deps: ProvisioningCliDeps): Registrar {
  const factory = factoryCli(deps);
  const identity = identityCli(deps);
  return (program, io, setExit) => {
    factory(program, io, setExit);
    identity(program, io, setExit);
  };
}
