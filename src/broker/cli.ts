import type { Command } from 'commander';
import type { CliIo } from '../cli/program.js';
import { OutpostError } from '../errors/outpost-error.js';
import { hashPassword } from './passwords.js';
import { USERNAME_PATTERN } from './schema.js';

export interface BrokerCliDeps {
  /** Reads a password: from the terminal without echo (asked twice), or the first line of piped stdin. */
  readonly readPassword: () => Promise<string>;
}

/** `outpost broker …`: tools for the embedded local broker. */
export function brokerCli(deps: BrokerCliDeps) {
  return (program: Command, io: CliIo, setExit: (code: number) => void): void => {
    const broker = program.command('broker').description('embedded local MQTT broker tools');
    broker
      .command('passwd')
      .description('hash a password for broker.users[].passwordHash (reads it from the terminal, or from stdin when piped)')
      .option('--user <name>', 'print a broker.users entry for this username (paste it under broker.users)')
      .action(async (opts: { user?: string }) => {
        if (opts.user !== undefined && !new RegExp(USERNAME_PATTERN).test(opts.user)) {
          throw new OutpostError('OUTPOST_E_CLI_USAGE', '--user: letters, digits and _ . @ - (at most 64, starting with a letter or digit)', { details: { user: opts.user } });
        }
        const hash = await hashPassword(await deps.readPassword());
        if (opts.user === undefined) io.out(hash);
        else io.out(`- username: ${opts.user}\n  passwordHash: '${hash}'\n  publish: ['{prefix}/commands/write/+']`);
        setExit(0);
      });
  };
}
