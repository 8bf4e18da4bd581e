import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { parseInstallParams, parseStatusParams } from '../../ota/command.js';
import { parseWriteCommand as parseWriteCommandLimited } from '../../src/broker/write-command.js';

/** The local broker's command parser with its default size limit (broker.limits.maxCommandBytes). */
const parseWriteCommand = (payload: Buffer) => parseWriteCommandLimited(payload, 16 * 1024);
import { CommandRegistry } from '../../src/commands/command.js';
import { ERROR_CATALOG } from '../../src/errors/catalog.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { CommandDispatcher, type CommandReply } from '../../src/uplink/commands.js';
import { HOSTILE_KEYS, anyText, check, expectOutpostError, type FuzzTarget } from './target.js';

/**
 * Fuzz targets of the command envelopes: the cloud uplink's `{id, name, params}` (CommandDispatcher)
 * and the local broker's write command (parseWriteCommand). Invariants under test: any payload gets
 * exactly one final reply (ok or error, with a catalogued code) and never an exception; a handler
 * runs only with parameters its own parser accepted; a parsed write command has a scalar value and a
 * reply topic without wildcards.
 */

/** A logger that formats every line (so the logging path runs too) and keeps none. */
function discardLogger() {
  return pino({ level: 'debug' }, new Writable({ write: (_c, _e, cb) => cb() }));
}

/** Handlers with the real parameter parsers and runs that record what reached them. */
function registry(ran: Array<{ name: string; params: unknown }>): CommandRegistry {
  const r = new CommandRegistry();
  r.register({ name: 'ota.install', parse: parseInstallParams, run: async (p) => void ran.push({ name: 'ota.install', params: p }) });
  r.register({ name: 'ota.status', parse: parseStatusParams, run: async (p) => void ran.push({ name: 'ota.status', params: p }) });
  r.register({
    name: 'fuzz.progress',
    parse: (p) => p,
    run: async (p, progress) => {
      ran.push({ name: 'fuzz.progress', params: p });
      progress({ percent: 50, state: 'half' });
      return { echoed: true };
    },
  });
  r.register({
    name: 'fuzz.fails',
    parse: (p) => p,
    run: async (p) => {
      ran.push({ name: 'fuzz.fails', params: p });
      throw new TypeError('handler bug');
    },
  });
  return r;
}

const NAMES = ['ota.install', 'ota.status', 'fuzz.progress', 'fuzz.fails', 'points.write', 'Ota.install', '', 'a'.repeat(65)];
const scalar = fc.oneof(fc.string({ unit: 'binary', maxLength: 20 }), fc.double(), fc.integer(), fc.boolean(), fc.constant(null));
const hex64 = fc.stringMatching(/^[0-9a-fA-F]{64}$/);
const installParams = fc.record(
  {
    url: fc.oneof(fc.webUrl(), fc.constantFrom('http://x', 'ftp://x/b', 'https://a b', 'https://\u0000')),
    sha256: fc.oneof(hex64, fc.string({ maxLength: 70 })),
    version: fc.oneof(fc.string({ maxLength: 10 }), fc.constant('v'.repeat(129))),
    extra: scalar,
  },
  { requiredKeys: [] },
);
const envelope = fc.record(
  {
    id: fc.oneof(fc.string({ unit: 'binary', maxLength: 10 }), fc.constant('i'.repeat(129)), fc.integer(), fc.constant(null)),
    name: fc.oneof(fc.constantFrom(...NAMES), fc.string({ maxLength: 8 })),
    params: fc.oneof(installParams, fc.jsonValue({ maxDepth: 2 }), fc.constant({})),
    ...Object.fromEntries(HOSTILE_KEYS.slice(0, 2).map((k) => [k, scalar])),
  },
  { requiredKeys: ['id', 'name'] },
);

/** A JSON text of an object, with keys written in the text (so `__proto__` arrives as an own key of the parsed object). */
function jsonText(o: Record<string, unknown>): string {
  return `{${Object.entries(o)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join(',')}}`;
}

const payloadArb = fc.oneof(
  envelope.map(jsonText),
  anyText(120),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.uint8Array({ maxLength: 80 }).map((b) => Buffer.from(b).toString('latin1')),
);

function checkReplies(replies: readonly CommandReply[], ran: ReadonlyArray<{ name: string; params: unknown }>): void {
  check(replies.length >= 1, 'no reply');
  const final = replies.filter((r) => r.status === 'ok' || r.status === 'error');
  check(final.length === 1 && replies.at(-1) === final[0], `expected exactly one final reply, last; got ${replies.map((r) => r.status).join(',')}`);
  for (const r of replies) {
    check(r.id === null || (typeof r.id === 'string' && r.id.length <= 128), `reply id ${JSON.stringify(r.id)}`);
    JSON.stringify(r);
    if (r.status === 'error') check(r.error !== undefined && Object.hasOwn(ERROR_CATALOG, r.error.code) && r.error.message.length > 0, `error reply without a catalogued code: ${JSON.stringify(r.error)}`);
  }
  if (replies[0]?.status === 'accepted') check(ran.length === 1, 'accepted but the handler did not run');
  for (const { name, params } of ran) {
    if (name === 'ota.install') {
      const p = params as { url: string; sha256: string; version: string };
      check(Object.keys(p).sort().join() === 'sha256,url,version' && /^[0-9a-f]{64}$/.test(p.sha256), `ota.install ran with unparsed params ${JSON.stringify(p)}`);
    }
    if (name === 'ota.status') check(params === null, 'ota.status ran with params');
  }
}

export function commandTargets(): FuzzTarget[] {
  return [
    {
      name: 'commands.uplink-envelope',
      runs: 600,
      property: () => {
        const ran: Array<{ name: string; params: unknown }> = [];
        const dispatcher = new CommandDispatcher(registry(ran), discardLogger());
        return fc.asyncProperty(payloadArb, fc.boolean(), async (text, asBuffer) => {
          ran.length = 0;
          const replies: CommandReply[] = [];
          await dispatcher.handleRaw(asBuffer ? Buffer.from(text, 'utf8') : Buffer.from(text, 'latin1'), (r) => replies.push(r));
          checkReplies(replies, ran);
          // parse() alone: an envelope or OUTPOST_E_UPLINK_COMMAND.
          try {
            const req = dispatcher.parse(text);
            check(typeof req.id === 'string' && typeof req.name === 'string' && req.id.length <= 128, 'parse returned a malformed envelope');
          } catch (e) {
            expectOutpostError(e, ['OUTPOST_E_UPLINK_COMMAND']);
          }
        });
      },
    },
    {
      name: 'commands.broker-write',
      runs: 1000,
      property: () =>
        fc.property(
          fc.oneof(
            fc.record({ value: fc.oneof(scalar, fc.jsonValue({ maxDepth: 1 })), id: fc.oneof(fc.string({ unit: 'binary' }), fc.integer()), replyTo: fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }), fc.constantFrom('', 'a/+', '#', 'r/\u0000', '$SYS/x'), fc.integer()), ['__proto__']: scalar }, { requiredKeys: [] }).map(jsonText),
            fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
            anyText(60),
          ),
          (text) => {
            let cmd;
            try {
              cmd = parseWriteCommand(Buffer.from(text, 'utf8'));
            } catch (e) {
              expectOutpostError(e, ['OUTPOST_E_BROKER_COMMAND']);
              return;
            }
            check(['number', 'boolean', 'string'].includes(typeof cmd.value), `value of type ${typeof cmd.value}`);
            if (typeof cmd.value === 'number') check(Number.isFinite(cmd.value), 'a non-finite value');
            check(cmd.id === undefined || typeof cmd.id === 'string', 'id is not a string');
            check(cmd.replyTo === undefined || (typeof cmd.replyTo === 'string' && cmd.replyTo !== '' && !/[+#\u0000]/.test(cmd.replyTo)), `reply topic ${JSON.stringify(cmd.replyTo)}`);
            // What parses, printed back as JSON, parses to the same command.
            const again = parseWriteCommand(Buffer.from(JSON.stringify(cmd), 'utf8'));
            check(JSON.stringify(again) === JSON.stringify(cmd), 'a parsed command does not read back the same');
          },
        ),
    },
    {
      name: 'commands.broker-write-bytes',
      runs: 500,
      property: () =>
        fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
          try {
            parseWriteCommand(Buffer.from(bytes));
          } catch (e) {
            if (!(e instanceof OutpostError)) throw e;
            expectOutpostError(e, ['OUTPOST_E_BROKER_COMMAND']);
          }
        }),
    },
  ];
}
