import { describe, expect, it } from 'vitest';
import { createCliLogger, defaultCliLogFormat, renderCliLogLine } from '../../src/log/cli-logger.js';

describe('CLI log format', () => {
  it('is JSON only when stderr is the stream systemd named in JOURNAL_STREAM', () => {
    const stat = () => ({ dev: 23, ino: 4711 });
    expect(defaultCliLogFormat({ JOURNAL_STREAM: '23:4711' }, stat)).toBe('json');
    expect(defaultCliLogFormat({ JOURNAL_STREAM: '23:4712' }, stat)).toBe('text'); // inherited, stderr redirected elsewhere
    expect(defaultCliLogFormat({}, stat)).toBe('text');
    expect(defaultCliLogFormat({ JOURNAL_STREAM: 'garbage' }, stat)).toBe('text');
    expect(defaultCliLogFormat({ JOURNAL_STREAM: '23:4711' }, () => { throw new Error('EBADF'); })).toBe('text');
  });
});

describe('text log lines', () => {
  const line = (rec: Record<string, unknown>) => JSON.stringify({ level: 40, time: 1, pid: 7, hostname: 'h', service: 'outpost', component: 'ota', ...rec });

  it('renders a record as one readable line with its fields and error code', () => {
    expect(renderCliLogLine(line({ msg: 'ota update failed', state: 'installing', err: { code: 'OUTPOST_E_OTA_WRITE', message: 'cannot open slot' } }))).toBe(
      'outpost: warning: ota update failed (state=installing): OUTPOST_E_OTA_WRITE: cannot open slot',
    );
    expect(renderCliLogLine(line({ level: 30, msg: 'ota state transition', from: 'idle', to: 'verifying' }))).toBe('outpost: info: ota state transition (from=idle, to=verifying)');
  });

  it('leaves an expected refusal (a bad-input error) to the command’s own error line', () => {
    expect(renderCliLogLine(line({ msg: 'ota update failed', err: { code: 'OUTPOST_E_OTA_INCOMPATIBLE', message: 'bundle is for "X"' } }))).toBeNull();
    expect(renderCliLogLine(line({ msg: 'ota update failed', err: { code: 'ENOSPC', message: 'disk full' } }))).toBe('outpost: warning: ota update failed: ENOSPC: disk full');
  });

  it('writes text through the injected writer, never JSON', async () => {
    const out: string[] = [];
    const logger = await createCliLogger({ level: 'info', format: 'text', writeText: (t) => out.push(t) });
    logger.child({ component: 'ota' }).warn({ slot: 'B', password: 'hunter2' }, 'slot marked bad');
    logger.child({ component: 'ota' }).warn({ err: { code: 'OUTPOST_E_OTA_DOWNGRADE', message: 'below the floor' } }, 'ota update failed');
    expect(out).toEqual(['outpost: warning: slot marked bad (slot=B, password=[redacted])\n']);
  });
});
