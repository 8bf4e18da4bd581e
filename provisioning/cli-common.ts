import type { Command } from 'commander';
import { pino, type Logger } from 'pino';
import type { Clock } from '../hal/clock.js';
import { reportError, type CliIo } from '../src/cli/program.js';
import { OutpostError } from '../src/errors/outpost-error.js';
import { createLogger } from '../src/log/logger.js';
import type { TpmClient } from './tpm/client.js';
import type { TunnelLaunch } from './tunnel/launcher.js';

/** What services/outpost.ts injects into the identity and factory commands. */
export interface ProvisioningCliDeps {
  readonly openTpm: (spec: string, logger: Logger) => Promise<TpmClient>;
  readonly clock: Clock;
  readonly stderrIsTTY: boolean;
  /** Raw stderr (no newline added): the batch progress bar redraws its line. */
  readonly writeErr: (text: string) => void;
  readonly hostname: string;
  readonly launchTunnel: (req: TunnelLaunch) => Promise<number>;
  /** dist/services/identity-tunnel.js */
  readonly tunnelEntry: string;
  readonly runtimeDir: string;
}

export const DEFAULT_DATA_DIR = '/var/lib/outpost';

export function usage(message: string, details: Record<string, unknown> = {}): OutpostError {
  return new OutpostError('OUTPOST_E_CLI_USAGE', message, { details });
}

/** Parses a handle given as hex (0x81000002) or decimal. */
export function parseHandle(s: string, what: string): number {
  const v = /^0x[0-9a-f]{1,8}$/i.test(s) ? Number.parseInt(s, 16) : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isInteger(v)) throw usage(`${what} must be a handle such as 0x81000002, got "${s}"`, { [what]: s });
  return v;
}

export async function cliLogger(level: string | undefined): Promise<Logger> {
  return createLogger({ level: level ?? 'warn', pretty: false, destination: pino.destination({ fd: 2, sync: true }) });
}

/** Wraps an action so it sets the exit code instead of exiting; errors are printed for humans. */
export function actionRunner(io: CliIo, setExit: (code: number) => void) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- commander passes untyped action arguments
  return <A extends any[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      try {
        setExit(await fn(...args));
      } catch (e) {
        setExit(reportError(io, e));
      }
    };
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export type Registrar = (program: Command, io: CliIo, setExit: (code: number) => void) => void;
