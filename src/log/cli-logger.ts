import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import { ERROR_CATALOG } from '../errors/catalog.js';
import { createLogger } from './logger.js';

/** How a command-line process writes its log lines on stderr. */
export type CliLogFormat = 'json' | 'text';

/**
 * JSON when stderr is the journal, text otherwise. systemd sets JOURNAL_STREAM to `<device>:<inode>` of the
 * stream it connects a service's stdout/stderr to; a child whose stderr was redirected elsewhere inherits the
 * variable, so the pair must match the real stderr (systemd.exec(5), "Environment variables in spawned processes").
 */
export function defaultCliLogFormat(env: NodeJS.ProcessEnv, stat: () => { dev: number; ino: number } = () => fstatSync(2)): CliLogFormat {
  const journal = env['JOURNAL_STREAM'];
  if (journal === undefined || !/^\d+:\d+$/.test(journal)) return 'text';
  try {
    const s = stat();
    return journal === `${s.dev}:${s.ino}` ? 'json' : 'text';
  } catch {
    return 'text';
  }
}

const LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warning', 50: 'error', 60: 'fatal' };
const HIDDEN = new Set(['level', 'time', 'pid', 'hostname', 'service', 'msg', 'component', 'err']);

function isInputErrorCode(code: unknown): boolean {
  return typeof code === 'string' && code in ERROR_CATALOG && ERROR_CATALOG[code as keyof typeof ERROR_CATALOG].input;
}

function fieldText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * Renders one pino JSON line for a person: `outpost: warning: <msg> (k=v, …): <CODE>: <error message>`.
 * Returns null for a line that carries a bad-input error (an expected refusal, exit code 2): the command ends
 * with that same error, which the CLI prints once (`outpost: <CODE>: <message>`).
 */
export function renderCliLogLine(line: string): string | null {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.replace(/\n$/, '');
  }
  const err = rec['err'] as { code?: unknown; message?: unknown } | string | undefined;
  if (typeof err === 'object' && err !== null && isInputErrorCode(err.code)) return null;
  const fields = Object.entries(rec)
    .filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  const errText = err === undefined ? '' : typeof err === 'object' && err !== null ? `: ${[err.code, err.message].filter((x) => x !== undefined).map(fieldText).join(': ')}` : `: ${fieldText(err)}`;
  const level = LEVELS[Number(rec['level'])] ?? 'log';
  return `outpost: ${level}: ${fieldText(rec['msg'] ?? '')}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}${errText}`;
}

/** A pino destination writing each record as a human line (or nothing, see renderCliLogLine). */
export function textDestination(write: (text: string) => void): DestinationStream {
  return {
    write(line: string) {
      const text = renderCliLogLine(line);
      if (text !== null) write(`${text}\n`);
    },
  };
}

export interface CliLoggerOptions {
  readonly level: string;
  readonly format: CliLogFormat;
  /** Where text lines go (tests pass a collector); JSON lines go to fd 2, synchronously, like `outpost run`'s. */
  readonly writeText?: (text: string) => void;
}

/**
 * The root logger of a command-line invocation: JSON for journald when systemd runs the command as a service,
 * one readable line per record in a terminal, with expected refusals left to the command's own error message.
 */
export function createCliLogger(o: CliLoggerOptions): Promise<Logger> {
  const destination = o.format === 'json' ? pino.destination({ fd: 2, sync: true }) : textDestination(o.writeText ?? ((t) => void process.stderr.write(t)));
  return createLogger({ level: o.level, pretty: false, destination });
}
