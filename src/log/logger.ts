import { pino, type DestinationStream, type Logger } from 'pino';
import { OutpostError, describeCause } from '../errors/outpost-error.js';

/** Paths redacted from every log line: credentials must never reach journald or a support bundle. */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'passphrase',
  '*.passphrase',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'key',
  '*.key',
  'privateKey',
  '*.privateKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
];

/**
 * The `err` field of every log line: code, one-line message, details and the nested `cause` chain.
 * A stack is kept only for errors that are not OutpostErrors (bugs), and never an empty one; values
 * that are already descriptions (describeCause) or not errors at all pass through unchanged.
 */
export function serializeError(e: unknown): unknown {
  if (!(e instanceof Error)) return e;
  const out: Record<string, unknown> = { type: e.name, ...describeCause(e) };
  if (!(e instanceof OutpostError) && typeof e.stack === 'string' && e.stack.includes('\n    at ')) out['stack'] = e.stack;
  return out;
}

export interface LoggerOptions {
  readonly level: string;
  readonly pretty: boolean;
  /** Where lines go; stdout (journald) by default. Tests pass a stream and parse the JSON lines. */
  readonly destination?: DestinationStream;
}

/**
 * The one root logger of a process. Components take `logger.child({ component })`; messages are
 * constant strings with data in fields. Pretty mode loads pino-pretty in-process (no worker thread).
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const base = { level: options.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'outpost' }, serializers: { err: serializeError } };
  if (options.pretty && !options.destination) {
    const { default: pretty } = await import('pino-pretty');
    return pino(base, pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l' }));
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}
