import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { reportError, type CliIo } from '../../src/cli/program.js';
import { OutpostError, describeCause, formatCauseChain } from '../../src/errors/outpost-error.js';
import { createLogger } from '../../src/log/logger.js';

const errno = (code: string, message: string) => Object.assign(new Error(message), { code });

function io(env: NodeJS.ProcessEnv = {}): CliIo & { lines: string[] } {
  const lines: string[] = [];
  return { lines, out: (t) => lines.push(t), err: (t) => lines.push(t), env, fetch: globalThis.fetch };
}

async function logLines(write: (log: Awaited<ReturnType<typeof createLogger>>) => void): Promise<Array<Record<string, unknown>>> {
  let text = '';
  const destination = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  const log = await createLogger({ level: 'info', pretty: false, destination });
  write(log);
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('cause chains', () => {
  const refused = errno('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:502');
  const top = new OutpostError('OUTPOST_E_MODBUS_CONNECT', 'cannot connect to 10.0.0.5:502', { cause: refused, details: { host: '10.0.0.5', port: 502 } });

  it('formats the whole chain on one line, code first', () => {
    expect(formatCauseChain(top)).toBe('OUTPOST_E_MODBUS_CONNECT: cannot connect to 10.0.0.5:502 ← ECONNREFUSED: connect ECONNREFUSED 10.0.0.5:502');
  });

  it('does not repeat an errno code that starts the message, and flattens multi-line messages', () => {
    expect(formatCauseChain(errno('ENOTDIR', "ENOTDIR: not a directory, mkdir '/x'"))).toBe("ENOTDIR: not a directory, mkdir '/x'");
    expect(formatCauseChain(new Error('line one\n   line two'))).toBe('line one line two');
  });

  it('describes an AggregateError with an empty message by its errors', () => {
    const agg = Object.assign(new AggregateError([new Error('connect ECONNREFUSED ::1:502'), new Error('connect ECONNREFUSED 127.0.0.1:502')], ''), { code: 'ECONNREFUSED' });
    expect(formatCauseChain(agg)).toBe('ECONNREFUSED: connect ECONNREFUSED ::1:502; connect ECONNREFUSED 127.0.0.1:502');
  });

  it('stops at a loop and at a bounded depth', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(formatCauseChain(a)).toBe('a ← b');
    let deep: unknown = new Error('bottom');
    for (let i = 0; i < 50; i++) deep = new Error(`level ${i}`, { cause: deep });
    expect(formatCauseChain(deep).split(' ← ')).toHaveLength(8);
  });

  it('nests causes and redacts secret-looking details', () => {
    const e = new OutpostError('OUTPOST_E_OPCUA_CONNECT', 'the opc ua server refused the session', { cause: new Error('BadUserAccessDenied'), details: { endpoint: 'opc.tcp://x', password: 'hunter2' } });
    expect(describeCause(e)).toEqual({
      code: 'OUTPOST_E_OPCUA_CONNECT',
      message: 'the opc ua server refused the session',
      details: { endpoint: 'opc.tcp://x', password: '[redacted]' },
      cause: { message: 'BadUserAccessDenied' },
    });
  });

  it('the CLI prints the chain in one line and exits by the code kind', () => {
    const out = io();
    const listen = new OutpostError('OUTPOST_E_RUNTIME_START', 'local API cannot listen on 127.0.0.1:27613', { cause: errno('EADDRINUSE', 'listen EADDRINUSE: address already in use 127.0.0.1:27613') });
    expect(reportError(out, listen)).toBe(1);
    expect(out.lines).toEqual(['outpost: OUTPOST_E_RUNTIME_START: local API cannot listen on 127.0.0.1:27613 ← EADDRINUSE: listen EADDRINUSE: address already in use 127.0.0.1:27613']);
  });

  it('the CLI prints no stack for an unexpected error unless OUTPOST_DEBUG=1', () => {
    const quiet = io();
    expect(reportError(quiet, new TypeError('x is not a function'))).toBe(1);
    expect(quiet.lines.join('\n')).not.toMatch(/\n\s+at /);
    expect(quiet.lines[0]).toBe('outpost: unexpected error: TypeError: x is not a function (OUTPOST_DEBUG=1 prints the stack)');
    const loud = io({ OUTPOST_DEBUG: '1' });
    reportError(loud, new TypeError('x is not a function'));
    expect(loud.lines.join('\n')).toMatch(/\n\s+at /);
  });
});

describe('log serializer', () => {
  it('logs err with its cause chain and without an empty stack', async () => {
    const top = new OutpostError('OUTPOST_E_MODBUS_CONNECT', 'cannot connect to 10.0.0.5:502', { cause: errno('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.5:502') });
    const [line] = await logLines((log) => log.warn({ err: top }, 'modbus connect failed'));
    expect(line?.['err']).toEqual({
      type: 'OutpostError',
      code: 'OUTPOST_E_MODBUS_CONNECT',
      message: 'cannot connect to 10.0.0.5:502',
      cause: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 10.0.0.5:502' },
    });
  });

  it('passes describeCause objects through untouched (no "stack":"") and keeps stacks of bugs', async () => {
    const lines = await logLines((log) => {
      log.warn({ err: describeCause(new OutpostError('OUTPOST_E_HAL_NOT_CONNECTED', 'not connected', { cause: new Error('socket closed') })) }, 'a');
      log.error({ err: new TypeError('boom') }, 'b');
    });
    expect(JSON.stringify(lines[0])).not.toContain('"stack"');
    expect(lines[0]?.['err']).toMatchObject({ code: 'OUTPOST_E_HAL_NOT_CONNECTED', cause: { message: 'socket closed' } });
    expect(String((lines[1]?.['err'] as { stack: string }).stack)).toMatch(/TypeError: boom\n\s+at /);
  });
});
