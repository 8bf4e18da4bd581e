import { pino, type DestinationStream, type Logger } from 'pino';

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
  const base = { level: options.level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'outpost' } };
  if (options.pretty && !options.destination) {
    const { default: pretty } = await import('pino-pretty');
    return pino(base, pretty({ colorize: process.stdout.isTTY, sync: true, ignore: 'pid,hostname,service', translateTime: 'SYS:HH:MM:ss.l' }));
  }
  return options.destination ? pino(base, options.destination) : pino(base);
}
