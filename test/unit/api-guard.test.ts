import { mkdtempSync, readFileSync, rmSync, statSync, chmodSync, writeFileSync, symlinkSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureApiToken, readApiToken } from '../../src/api/api-token.js';
import { errorReply } from '../../src/api/http-reply.js';
import { LogThrottle } from '../../src/api/log-throttle.js';
import { parseWriteBody } from '../../src/api/request-body.js';
import {
  bearerToken,
  canonicalAddress,
  hostAllowed,
  hostOfHeader,
  isJsonContentType,
  isLoopbackAddress,
  isLoopbackHost,
  originAllowed,
  tokenRequired,
  tokensEqual,
} from '../../src/api/request-policy.js';
import { matchRoute, parseTarget } from '../../src/api/request-target.js';
import { OutpostError } from '../../src/errors/outpost-error.js';

/** The pure parts of the local API's guard: target parsing, routes, header policy, bodies, token file, log throttle. */

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    return (e as OutpostError).code;
  }
  return 'no error';
}

describe('request target', () => {
  it('splits and decodes origin-form and absolute-form paths', () => {
    expect(parseTarget('/api/points/plc1.temp?x=1#f')).toEqual({ path: '/api/points/plc1.temp', segments: ['api', 'points', 'plc1.temp'] });
    expect(parseTarget('/api/points/a%3Ab').segments).toEqual(['api', 'points', 'a:b']);
    expect(parseTarget('http://127.0.0.1:8480/healthz').segments).toEqual(['healthz']);
    expect(parseTarget('//api///points/').segments).toEqual(['api', 'points']);
  });

  it.each([
    ['malformed percent-encoding', '/%zz'],
    ['truncated percent-encoding', '/api/points/%E2%82'],
    ['invalid absolute URL', 'http://[::1'],
    ['authority form', 'example.com:443'],
    ['asterisk form', '*'],
    ['empty', ''],
    ['undefined', undefined],
    ['dot-dot', '/api/../healthz'],
    ['encoded dot-dot', '/api/points/%2e%2e/write'],
    ['single dot', '/api/./points'],
    ['NUL byte', '/api/points/a%00b'],
    ['control character', '/api/points/a%0Ab'],
    ['other scheme', 'file:///etc/passwd'],
  ])('refuses %s with OUTPOST_E_API_REQUEST', (_name, target) => {
    expect(code(() => parseTarget(target))).toBe('OUTPOST_E_API_REQUEST');
  });

  it('matches the routes and nothing else', () => {
    expect(matchRoute(['healthz'])).toEqual({ name: 'healthz' });
    expect(matchRoute(['metrics'])).toEqual({ name: 'metrics' });
    expect(matchRoute(['api', 'info'])).toEqual({ name: 'info' });
    expect(matchRoute(['api', 'points'])).toEqual({ name: 'points' });
    expect(matchRoute(['api', 'points', 'a/b'])).toEqual({ name: 'point', point: 'a/b' });
    expect(matchRoute(['api', 'points', 'x', 'write'])).toEqual({ name: 'write', point: 'x' });
    for (const s of [[], ['api'], ['healthz', 'x'], ['api', 'points', 'x', 'read'], ['api', 'points', 'x', 'write', 'y'], ['API', 'points']]) expect(matchRoute(s)).toBeNull();
  });
});

describe('host and origin policy', () => {
  it('knows loopback addresses in every spelling', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['10.0.0.1', '0.0.0.0', '::', '::ffff:10.0.0.1', 'localhost', 'evil.example', '']) expect(isLoopbackAddress(a), a).toBe(false);
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
    expect(canonicalAddress('::FFFF:10.0.0.1')).toBe('10.0.0.1');
    expect(canonicalAddress('name')).toBeNull();
  });

  it('parses Host headers and refuses malformed ones', () => {
    expect(hostOfHeader('127.0.0.1:8480')).toBe('127.0.0.1');
    expect(hostOfHeader('[::1]:8480')).toBe('::1');
    expect(hostOfHeader('GW-17.Plant.Example.')).toBe('gw-17.plant.example');
    for (const h of [undefined, '', 'a b', 'user@host', 'host/path', 'host:99999', '[nope]', 'host:', 'x'.repeat(300), 'ho\u00a0st']) expect(hostOfHeader(h), String(h)).toBeNull();
  });

  it('accepts the address the request arrived on, localhost on loopback, and configured names; refuses other names (DNS rebinding)', () => {
    expect(hostAllowed('127.0.0.1:8480', '127.0.0.1', [])).toBe(true);
    expect(hostAllowed('localhost:8480', '127.0.0.1', [])).toBe(true);
    expect(hostAllowed('[::1]:8480', '127.0.0.1', [])).toBe(true);
    expect(hostAllowed('localhost', '::ffff:127.0.0.1', [])).toBe(true);
    expect(hostAllowed('evil.example', '127.0.0.1', [])).toBe(false);
    expect(hostAllowed('evil.example:8480', '127.0.0.1', [])).toBe(false);
    expect(hostAllowed(undefined, '127.0.0.1', [])).toBe(false);
    // A LAN bind: the address itself, or a configured name; localhost is not this interface.
    expect(hostAllowed('10.0.0.5:8480', '10.0.0.5', [])).toBe(true);
    expect(hostAllowed('10.0.0.5', '::ffff:10.0.0.5', [])).toBe(true);
    expect(hostAllowed('10.0.0.6', '10.0.0.5', [])).toBe(false);
    expect(hostAllowed('localhost', '10.0.0.5', [])).toBe(false);
    expect(hostAllowed('gw-17.plant.example', '10.0.0.5', ['GW-17.plant.example'])).toBe(true);
  });

  it('accepts no Origin or a listed one (exactly), nothing else (CSRF)', () => {
    expect(originAllowed(undefined, [])).toBe(true);
    expect(originAllowed('http://evil.example', [])).toBe(false);
    expect(originAllowed('null', [])).toBe(false);
    expect(originAllowed('https://hmi.example', ['https://hmi.example'])).toBe(true);
    expect(originAllowed('https://hmi.example.evil.example', ['https://hmi.example'])).toBe(false);
    expect(originAllowed('http://hmi.example', ['https://hmi.example'])).toBe(false);
  });

  it('takes only application/json (utf-8) for writes: no CORS-simple type', () => {
    expect(isJsonContentType('application/json')).toBe(true);
    expect(isJsonContentType('Application/JSON; charset=UTF-8')).toBe(true);
    for (const t of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', 'application/jsonp', 'text/plain; application/json']) {
      expect(isJsonContentType(t), String(t)).toBe(false);
    }
  });

  it('needs the token for writes, and for everything off loopback; requireToken: false opens writes on loopback only', () => {
    expect(tokenRequired('write', { requireToken: true, loopbackBind: true })).toBe(true);
    expect(tokenRequired('read', { requireToken: true, loopbackBind: true })).toBe(false);
    expect(tokenRequired('write', { requireToken: false, loopbackBind: true })).toBe(false);
    expect(tokenRequired('read', { requireToken: true, loopbackBind: false })).toBe(true);
    expect(tokenRequired('write', { requireToken: false, loopbackBind: false })).toBe(true);
  });

  it('reads bearer tokens and compares them in constant time (hashed to equal lengths first)', () => {
    expect(bearerToken('Bearer abc_DEF-123')).toBe('abc_DEF-123');
    expect(bearerToken('bearer   abc')).toBe('abc');
    for (const h of [undefined, '', 'Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'Bearer', 'Bearer a b', 'Token abc']) expect(bearerToken(h), String(h)).toBeNull();
    const t = 'k'.repeat(43);
    expect(tokensEqual(t, t)).toBe(true);
    expect(tokensEqual(`${t}x`, t)).toBe(false);
    expect(tokensEqual('', t)).toBe(false);
    expect(tokensEqual('x'.repeat(100_000), t)).toBe(false);
    expect(tokensEqual(`${t.slice(0, -1)}j`, t)).toBe(false);
  });
});

describe('write bodies', () => {
  const body = (s: string) => Buffer.from(s, 'utf8');
  it('takes {"value": finite number | boolean | string}', () => {
    expect(parseWriteBody(body('{"value": 7.5}'))).toBe(7.5);
    expect(parseWriteBody(body('{"value": false}'))).toBe(false);
    expect(parseWriteBody(body('{"value": "60"}'))).toBe('60');
  });
  it.each([
    ['not JSON', '{'],
    ['empty', ''],
    ['a scalar', '1'],
    ['an array', '[{"value":1}]'],
    ['null', 'null'],
    ['no value', '{}'],
    ['extra keys', '{"value":1,"point":"other"}'],
    ['__proto__', '{"value":1,"__proto__":{"x":1}}'],
    ['an overflowing number', '{"value":1e999}'],
    ['a negative overflow', '{"value":-1e999}'],
    ['null value', '{"value":null}'],
    ['object value', '{"value":{"a":1}}'],
    ['array value', '{"value":[1]}'],
    ['deep nesting', `{"value":${'['.repeat(5000)}${']'.repeat(5000)}}`],
  ])('refuses %s (400)', (_n, text) => {
    expect(code(() => parseWriteBody(body(text)))).toBe('OUTPOST_E_API_REQUEST');
  });
  it('refuses invalid UTF-8', () => {
    expect(code(() => parseWriteBody(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])))).toBe('OUTPOST_E_API_REQUEST');
  });
});

describe('error replies', () => {
  it('maps codes to statuses, adds Allow and WWW-Authenticate, hides unknown errors', () => {
    expect(errorReply(new OutpostError('OUTPOST_E_RUNTIME_INTERLOCKED', 'held', { details: { rule: 'r' } }))).toMatchObject({ status: 409, body: { error: { code: 'OUTPOST_E_RUNTIME_INTERLOCKED', details: { rule: 'r' } } } });
    expect(errorReply(new OutpostError('OUTPOST_E_API_METHOD', 'm', { details: { allow: ['GET', 'HEAD'] } })).headers).toEqual({ allow: 'GET, HEAD' });
    expect(errorReply(new OutpostError('OUTPOST_E_API_UNAUTHORIZED', 'u')).headers['www-authenticate']).toMatch(/^Bearer/);
    expect(errorReply(new OutpostError('OUTPOST_E_HAL_VALUE', 'v')).status).toBe(400);
    expect(errorReply(new OutpostError('OUTPOST_E_HAL_NOT_CONNECTED', 'n')).status).toBe(502);
    const hidden = errorReply(new TypeError('secret internals'));
    expect(hidden.status).toBe(500);
    expect(JSON.stringify(hidden.body)).not.toContain('secret');
  });
});

describe('LogThrottle', () => {
  it('logs at most N per window and reports how many it dropped', () => {
    let now = 0;
    const t = new LogThrottle(() => now, 3, 1000);
    const decisions = Array.from({ length: 10 }, () => t.admit().log);
    expect(decisions).toEqual([true, true, true, false, false, false, false, false, false, false]);
    now = 999;
    expect(t.admit().log).toBe(false);
    now = 1000;
    expect(t.admit()).toEqual({ log: true, suppressed: 8 });
    expect(t.admit()).toEqual({ log: true, suppressed: 0 });
  });
});

describe('API token file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-token-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is created once with mode 0600 in a new data directory, then read back unchanged', async () => {
    const data = path.join(dir, 'a', 'data');
    const t1 = await ensureApiToken(data);
    expect(t1).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(path.join(data, 'api-token')).mode & 0o777).toBe(0o600);
    expect(await ensureApiToken(data)).toBe(t1);
    expect(await readApiToken(path.join(data, 'api-token'))).toBe(t1);
    expect(readdirSync(data)).toEqual(['api-token']);
  });

  it('concurrent first starts agree on one token', async () => {
    const data = path.join(dir, 'b');
    const tokens = await Promise.all(Array.from({ length: 8 }, () => ensureApiToken(data)));
    expect(new Set(tokens).size).toBe(1);
    expect(readdirSync(data)).toEqual(['api-token']);
  });

  it('refuses a token file others can read, a symlink and a file that is not a token', async () => {
    const data = path.join(dir, 'c');
    await ensureApiToken(data);
    chmodSync(path.join(data, 'api-token'), 0o644);
    await expect(ensureApiToken(data)).rejects.toMatchObject({ code: 'OUTPOST_E_API_TOKEN', message: expect.stringContaining('chmod 600') });
    const linked = path.join(dir, 'd');
    await ensureApiToken(linked);
    rmSync(path.join(linked, 'api-token'));
    symlinkSync(path.join(data, 'api-token'), path.join(linked, 'api-token'));
    await expect(ensureApiToken(linked)).rejects.toMatchObject({ code: 'OUTPOST_E_API_TOKEN' });
    const junk = path.join(dir, 'e');
    await ensureApiToken(junk);
    writeFileSync(path.join(junk, 'api-token'), 'short\n', { mode: 0o600 });
    await expect(ensureApiToken(junk)).rejects.toMatchObject({ code: 'OUTPOST_E_API_TOKEN', message: expect.stringContaining('delete it') });
    await expect(readApiToken(path.join(dir, 'none'))).rejects.toMatchObject({ code: 'OUTPOST_E_API_TOKEN' });
    expect(readFileSync(path.join(junk, 'api-token'), 'utf8')).toBe('short\n');
  });
});
