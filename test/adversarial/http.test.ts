import { request } from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/net.js';
import { Gateway } from './gateway.js';

/**
 * Hostile HTTP against the real `outpost run` process: malformed targets and request lines, bad
 * methods, oversized and slow requests, wrong content types, foreign Host and Origin headers, missing
 * or wrong tokens, JSON bombs, non-finite and ill-typed values, unknown points, header floods and
 * connection floods. After every case: the process is alive, readings still flow, no API write
 * reached a driver and the outputs kept their values. The distance sweeps over an hour, so
 * proximity-stop stays triggered (io.machine-run false, io.alarm-lamp true) for the whole file.
 */

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<string, unknown>;
}

const REQUEST_TIMEOUT_MS = 2000;
const MAX_CONNECTIONS = 16;
let gw: Gateway;
let token: string;
const initial = { 'plc1.speed-setpoint': 12, 'io.machine-run': false, 'io.alarm-lamp': true };

function parseJson(text: string): Answer['json'] {
  try {
    return JSON.parse(text) as Answer['json'];
  } catch {
    return {};
  }
}

/** One request through node:http (any method, any header, including Host). */
function http(method: string, path: string, o: { headers?: Record<string, string | number>; body?: string | Buffer; chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...(o.body !== undefined && !o.chunked ? { 'content-length': Buffer.byteLength(o.body) } : {}), ...(o.headers ?? {}) };
    const req = request({ host: '127.0.0.1', port: gw.apiPort, method, path, agent: false, headers, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parseJson(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    if (o.chunked && o.body !== undefined) {
      const b = Buffer.from(o.body);
      for (let i = 0; i < b.length; i += 4096) req.write(b.subarray(i, i + 4096));
      req.end();
    } else req.end(o.body);
  });
}

/** Splits the first final answer (after any 100 Continue) out of the bytes received; null while incomplete. */
function firstAnswer(all: string): (Answer & { complete: boolean }) | null {
  const response = all.replace(/^(HTTP\/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n)+/, '');
  const end = response.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = response.slice(0, end);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const l of head.split('\r\n').slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? NaN);
  const text = response.slice(end + 4);
  return { status, headers, text, json: parseJson(Number.isNaN(length) ? text : text.slice(0, length)), complete: !Number.isNaN(length) && Buffer.byteLength(text, 'latin1') >= length };
}

/**
 * Bytes on a bare socket; resolves with the first answer once it is complete (or, with `untilClose`,
 * once the server closes), bounded by timeoutMs. `closed` tells whether the server closed the socket.
 */
function raw(data: string | Buffer, o: { timeoutMs?: number; untilClose?: boolean; drip?: { bytes: Buffer; everyMs: number } } = {}): Promise<Answer & { closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(gw.apiPort, '127.0.0.1');
    const chunks: Buffer[] = [];
    let dripTimer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(deadline);
      clearInterval(dripTimer);
      s.destroy();
      const all = Buffer.concat(chunks).toString('latin1');
      const a = firstAnswer(all) ?? { status: 0, headers: {}, text: all, json: {}, complete: false };
      resolve({ status: a.status, headers: a.headers, text: a.text, json: a.json, closed });
    };
    const deadline = setTimeout(() => finish(false), o.timeoutMs ?? 20_000);
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      if (!o.untilClose && firstAnswer(Buffer.concat(chunks).toString('latin1'))?.complete) {
        // Give the server a moment to close (Connection: close) so `closed` is meaningful, bounded.
        setTimeout(() => finish(s.destroyed || s.readableEnded), 200);
      }
    });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => undefined);
    s.on('connect', () => {
      s.write(data);
      if (o.drip) {
        let sent = 0;
        const drip = o.drip;
        dripTimer = setInterval(() => {
          if (sent >= drip.bytes.length || s.destroyed) return clearInterval(dripTimer);
          s.write(drip.bytes.subarray(sent, sent + 1));
          sent++;
        }, drip.everyMs);
      }
    });
  });
}

const auth = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
const post = (point: string, body: string, headers: Record<string, string | number> = auth()) => http('POST', `/api/points/${point}/write`, { headers, body });

function expectError(a: Answer, status: number, code: string): void {
  expect({ status: a.status, code: a.json.error?.code }, a.text.slice(0, 300)).toEqual({ status, code });
  expect(a.text).not.toMatch(/at .+\.js:\d+/); // never a stack
}

async function outputs(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const p of Object.keys(initial)) out[p] = await gw.value(p);
  return out;
}

beforeAll(async () => {
  gw = await Gateway.start({ distancePeriodMs: 3_600_000, api: { requestTimeoutMs: REQUEST_TIMEOUT_MS, maxConnections: MAX_CONNECTIONS } });
  token = gw.token();
  await waitFor(async () => JSON.stringify(await outputs()) === JSON.stringify(initial), 30_000, 200);
}, 90_000);

afterAll(async () => {
  await gw?.stop();
});

afterEach(async () => {
  expect(gw.alive(), gw.proc.output().slice(-2000)).toBe(true);
  await waitFor(async () => (await gw.request('GET', '/healthz').catch(() => null))?.status === 200, 30_000, 100);
  await gw.readingsFlow();
  expect(await gw.metric('outpost_runtime_writes_api_total')).toBe(0);
  expect(await outputs()).toEqual(initial);
});

describe('malformed targets and request lines', () => {
  it.each([
    ['a malformed percent-escape (the reported crash)', 400, 'OUTPOST_E_API_REQUEST', () => http('GET', '/%zz')],
    ['a truncated UTF-8 escape', 400, 'OUTPOST_E_API_REQUEST', () => http('GET', '/api/points/%E2%82')],
    ['an invalid absolute URL (the reported TypeError)', 400, 'OUTPOST_E_API_REQUEST', () => raw('GET http://[::1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
    ['an asterisk target', 400, 'OUTPOST_E_API_REQUEST', () => raw('GET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
    ['an authority-form target', 400, 'OUTPOST_E_API_REQUEST', () => raw('GET 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
    ['path traversal with ..', 400, 'OUTPOST_E_API_REQUEST', () => raw('GET /api/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
    ['encoded path traversal', 400, 'OUTPOST_E_API_REQUEST', () => http('POST', '/api/points/%2e%2e/write', { headers: auth(), body: '{"value":1}' })],
    ['a NUL byte in a point id', 400, 'OUTPOST_E_API_REQUEST', () => http('GET', '/api/points/io.machine-run%00')],
    ['a TLS ClientHello on the plain HTTP port', 501, 'OUTPOST_E_API_METHOD', () => raw(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03, 0x0d, 0x0a, 0x0d, 0x0a]))],
    ['an HTTP/2 preface on the HTTP/1.1 port', 400, 'OUTPOST_E_API_REQUEST', () => raw('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')],
    ['an HTTP/0.9 request line (never completed)', 408, 'OUTPOST_E_API_TIMEOUT', () => raw('GET /api/points\r\n')],
    ['a WebSocket upgrade from a rebinding page', 403, 'OUTPOST_E_API_HOST', () => raw('GET /api/points HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n')],
    ['a header line without a colon', 400, 'OUTPOST_E_API_REQUEST', () => raw('GET /api/points HTTP/1.1\r\nHost: 127.0.0.1\r\nthis is not a header\r\n\r\n')],
    ['a body sent without a length after Connection: close', 405, 'OUTPOST_E_API_METHOD', () => raw('DELETE /api/points HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n{"value":true}')],
    ['an unknown method', 501, 'OUTPOST_E_API_METHOD', () => raw('FROBNICATE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')],
    ['CONNECT', 405, 'OUTPOST_E_API_METHOD', () => raw('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n')],
    ['Content-Length and Transfer-Encoding together (smuggling)', 400, 'OUTPOST_E_API_REQUEST', () => raw('POST /api/points/io.alarm-lamp/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')],
    ['a non-numeric Content-Length', 400, 'OUTPOST_E_API_REQUEST', () => raw('POST /api/points/io.alarm-lamp/write HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n')],
    ['an unknown route', 404, 'OUTPOST_E_API_NOT_FOUND', () => http('GET', '/admin')],
    ['an unknown point', 404, 'OUTPOST_E_RUNTIME_UNKNOWN_POINT', () => http('GET', '/api/points/..%2f..%2fetc%2fpasswd')],
    ['a 10 kB point id', 404, 'OUTPOST_E_RUNTIME_UNKNOWN_POINT', () => http('GET', `/api/points/${'p'.repeat(10_000)}`)],
  ] as const)('%s → %i %s', async (_name, status, code, run) => {
    expectError(await run(), status, code);
  });

  it('answers every pipelined request of one packet, the bad one with 400', async () => {
    const a = await raw('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', { untilClose: true });
    expect(a.status).toBe(200);
    expect(a.text).toContain('HTTP/1.1 400 Bad Request');
    expect(a.text).toContain('"code":"OUTPOST_E_API_REQUEST"');
  });
});

describe('methods', () => {
  it.each([
    ['DELETE on /api/points', 'DELETE', '/api/points', 'GET, HEAD, OPTIONS'],
    ['PUT on a write', 'PUT', '/api/points/io.machine-run/write', 'POST, OPTIONS'],
    ['GET on a write', 'GET', '/api/points/io.machine-run/write', 'POST, OPTIONS'],
    ['POST on /healthz', 'POST', '/healthz', 'GET, HEAD'],
    ['PATCH on /metrics', 'PATCH', '/metrics', 'GET, HEAD'],
  ])('%s → 405 with Allow', async (_name, method, path, allow) => {
    const a = await http(method, path, { headers: auth(), body: '{"value":true}' });
    expectError(a, 405, 'OUTPOST_E_API_METHOD');
    expect(a.headers['allow']).toBe(allow);
  });

  it('HEAD works wherever GET does, without a body', async () => {
    for (const path of ['/healthz', '/metrics', '/api/info', '/api/points', '/api/points/plc1.distance']) {
      const a = await http('HEAD', path);
      expect([path, a.status, a.text]).toEqual([path, 200, '']);
      expect(Number(a.headers['content-length'])).toBeGreaterThan(0);
    }
  });

  it('a CORS preflight from a foreign origin is refused, and never granted', async () => {
    const a = await http('OPTIONS', '/api/points/io.machine-run/write', { headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    expectError(a, 403, 'OUTPOST_E_API_ORIGIN');
    expect(a.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('who may call: token, Host, Origin, content type', () => {
  it.each([
    ['no token', 401, 'OUTPOST_E_API_UNAUTHORIZED', () => post('io.alarm-lamp', '{"value":false}', { 'content-type': 'application/json' })],
    ['a wrong token of the right length', 401, 'OUTPOST_E_API_UNAUTHORIZED', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), authorization: `Bearer ${'A'.repeat(token.length)}` })],
    ['the token with one character changed', 401, 'OUTPOST_E_API_UNAUTHORIZED', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), authorization: `Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` })],
    ['Basic authentication', 401, 'OUTPOST_E_API_UNAUTHORIZED', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), authorization: 'Basic YWRtaW46YWRtaW4=' })],
    ['a 10 kB token', 401, 'OUTPOST_E_API_UNAUTHORIZED', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), authorization: `Bearer ${'x'.repeat(10_000)}` })],
    ['Content-Type text/plain (a CORS-simple request)', 415, 'OUTPOST_E_API_CONTENT_TYPE', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), 'content-type': 'text/plain' })],
    ['a form post', 415, 'OUTPOST_E_API_CONTENT_TYPE', () => post('plc1.speed-setpoint', 'value=77', { ...auth(), 'content-type': 'application/x-www-form-urlencoded' })],
    ['no Content-Type', 415, 'OUTPOST_E_API_CONTENT_TYPE', () => post('plc1.speed-setpoint', '{"value":77}', { authorization: `Bearer ${token}` })],
    ['Origin: http://evil.example (CSRF), even with the token', 403, 'OUTPOST_E_API_ORIGIN', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), origin: 'http://evil.example' })],
    ['Origin: null (sandboxed page)', 403, 'OUTPOST_E_API_ORIGIN', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), origin: 'null' })],
    ['Host: evil.example on a write (DNS rebinding)', 403, 'OUTPOST_E_API_HOST', () => post('plc1.speed-setpoint', '{"value":77}', { ...auth(), host: 'evil.example' })],
    ['Host: evil.example on a read (DNS rebinding)', 403, 'OUTPOST_E_API_HOST', () => http('GET', '/api/points', { headers: { host: `evil.example:${gw.apiPort}` } })],
    ['no Host at all (HTTP/1.0)', 403, 'OUTPOST_E_API_HOST', () => raw('GET /api/points HTTP/1.0\r\n\r\n')],
    ['a malformed Host', 403, 'OUTPOST_E_API_HOST', () => http('GET', '/api/info', { headers: { host: 'a b@c/d' } })],
  ] as const)('%s → %i %s', async (_name, status, code, run) => {
    const a = await run();
    expectError(a, status, code);
    if (status === 401) expect(a.headers['www-authenticate']).toMatch(/^Bearer/);
  });

  it('keeps /healthz and /metrics open (no token) for mark-good and Prometheus, whatever the Host', async () => {
    expect((await http('GET', '/healthz', { headers: { host: 'gw-17.plant.example' } })).status).toBe(200);
    expect((await http('GET', '/metrics')).text).toMatch(/^outpost_api_refused_total \d+$/m);
  });
});

describe('bodies and values', () => {
  const deep = `{"value":${'['.repeat(7000)}${']'.repeat(7000)}}`;
  const manyKeys = `{${Array.from({ length: 1500 }, (_, i) => `"k${i}":0`).join(',')},"value":77}`;
  it.each([
    ['a 1 MiB body (declared)', 413, 'OUTPOST_E_API_TOO_LARGE', () => post('plc1.speed-setpoint', `{"value":77,"pad":"${'x'.repeat(1024 * 1024)}"}`)],
    ['a 100 kB chunked body (undeclared)', 413, 'OUTPOST_E_API_TOO_LARGE', () => http('POST', '/api/points/plc1.speed-setpoint/write', { headers: auth(), body: `{"value":77,"pad":"${'x'.repeat(100_000)}"}`, chunked: true })],
    ['Expect: 100-continue with 10 MB announced (refused before any byte)', 413, 'OUTPOST_E_API_TOO_LARGE', () => raw(`POST /api/points/plc1.speed-setpoint/write HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\nExpect: 100-continue\r\n\r\n`)],
    ['a JSON bomb: 7000 nested arrays', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', deep)],
    ['1500 extra keys', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', manyKeys)],
    ['not JSON', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '{"value": 77')],
    ['invalid UTF-8', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', Buffer.from([0x7b, 0x22, 0x76, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]) as unknown as string)],
    ['value 1e999 (overflows to Infinity)', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '{"value":1e999}')],
    ['value -1e999', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '{"value":-1e999}')],
    ['value null', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '{"value":null}')],
    ['an object value', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '{"value":{"$gt":0}}')],
    ['a body that is an array', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '[{"value":77}]')],
    ['a __proto__ key', 400, 'OUTPOST_E_API_REQUEST', () => post('plc1.speed-setpoint', '{"value":77,"__proto__":{"writable":true}}')],
    ['a string for a number point', 400, 'OUTPOST_E_HAL_VALUE', () => post('plc1.speed-setpoint', '{"value":"fast"}')],
    ['a boolean for a number point', 400, 'OUTPOST_E_HAL_VALUE', () => post('plc1.speed-setpoint', '{"value":true}')],
    ['a value outside int16 after scaling', 400, 'OUTPOST_E_HAL_VALUE', () => post('plc1.speed-setpoint', '{"value":99999}')],
    ['an unknown point', 404, 'OUTPOST_E_RUNTIME_UNKNOWN_POINT', () => post('plc1.nope', '{"value":1}')],
    ['a read-only point', 409, 'OUTPOST_E_RUNTIME_NOT_WRITABLE', () => post('plc1.temp1', '{"value":1}')],
    ['a held output (the interlock)', 409, 'OUTPOST_E_RUNTIME_INTERLOCKED', () => post('io.machine-run', '{"value":true}')],
  ] as const)('%s → %i %s', async (_name, status, code, run) => {
    expectError(await run(), status, code);
  });
});

describe('slow and large requests, floods', () => {
  it('a body that trickles in (1 byte every 300 ms) is answered 408 and its connection closed', async () => {
    const head = `POST /api/points/plc1.speed-setpoint/write HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
    const a = await raw(head, { drip: { bytes: Buffer.from(`{"value":77,"pad":"${'x'.repeat(80)}"}`), everyMs: 300 } });
    expectError(a, 408, 'OUTPOST_E_API_TIMEOUT');
    expect(a.closed).toBe(true);
  });

  it('headers that trickle in (slowloris) are answered 408 and the connection closed', async () => {
    const a = await raw('GET /api/points HTTP/1.1\r\nHost: 127.0.0.1\r\n', { drip: { bytes: Buffer.from('X-Slow: 1\r\n'.repeat(30)), everyMs: 300 } });
    expectError(a, 408, 'OUTPOST_E_API_TIMEOUT');
    expect(a.closed).toBe(true);
  });

  it('a 20 kB header is answered 431', async () => {
    const a = await raw(`GET /api/points HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expectError(a, 431, 'OUTPOST_E_API_TOO_LARGE');
  });

  it('a flood of 3000 headers is answered 431; 1000 small ones are served', async () => {
    const flood = await raw(`GET /api/points HTTP/1.1\r\nHost: 127.0.0.1\r\n${Array.from({ length: 3000 }, (_, i) => `X-${i}: v`).join('\r\n')}\r\n\r\n`);
    expectError(flood, 431, 'OUTPOST_E_API_TOO_LARGE');
    const many = await raw(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${Array.from({ length: 1000 }, (_, i) => `a${i}: b`).join('\r\n')}\r\n\r\n`);
    expect(many.status).toBe(200);
  });

  it(`holds at most ${MAX_CONNECTIONS} connections: 80 idle sockets are dropped or timed out, then the API answers again`, async () => {
    const rssBefore = gw.rssMiB();
    const answers: string[] = [];
    const sockets = await Promise.all(
      Array.from({ length: 80 }, () =>
        new Promise<{ s: net.Socket; closed: Promise<void> }>((resolve) => {
          const s = net.connect(gw.apiPort, '127.0.0.1');
          const closed = new Promise<void>((r) => s.once('close', () => r()));
          s.on('error', () => undefined);
          s.on('data', (d: Buffer) => answers.push(d.toString('latin1')));
          s.once('connect', () => resolve({ s, closed }));
          s.once('close', () => resolve({ s, closed }));
        }),
      ),
    );
    // The server closes every one of them: beyond the limit at once, the rest after requestTimeoutMs.
    await Promise.race([Promise.all(sockets.map((x) => x.closed)), new Promise((_, reject) => setTimeout(() => reject(new Error('idle sockets were not closed by the server')), 30_000))]);
    expect(await gw.metric('outpost_api_dropped_connections_total')).toBeGreaterThanOrEqual(80 - MAX_CONNECTIONS);
    // The ones it held were told why.
    expect(answers.length).toBeGreaterThan(0);
    for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"code":"OUTPOST_E_API_TIMEOUT"/);
    expect(gw.rssMiB()).toBeLessThan(rssBefore + 64);
  });

  it('200 000 pipelined requests never read by the client: the server stops reading (backpressure), stays responsive, memory bounded', async () => {
    const rssBefore = gw.rssMiB();
    const before = await gw.metric('outpost_api_requests_total');
    const s = net.connect(gw.apiPort, '127.0.0.1');
    s.on('error', () => undefined);
    s.pause(); // never read the answers
    await new Promise((r) => s.once('connect', r));
    const burst = 'GET /api/points HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(1000);
    for (let i = 0; i < 200; i++) s.write(burst);
    // Wait until the server stops taking requests from that socket (two counts 1 s apart differing only by this /metrics request), bounded.
    let last = -10;
    const handled = await waitFor(async () => {
      const n = (await gw.metric('outpost_api_requests_total')) - before;
      const stable = n <= last + 1;
      last = n;
      return stable ? n : null;
    }, 60_000, 1000);
    expect(handled).toBeLessThan(200_000);
    expect(s.writableLength).toBeGreaterThan(0); // what the server would not read
    expect((await http('GET', '/healthz')).status).toBe(200);
    expect(gw.rssMiB()).toBeLessThan(rssBefore + 128);
    s.destroy();
  }, 90_000);

  it('500 bad requests in a row: all answered 400, the log stays bounded (throttled), memory back in bounds', async () => {
    const rssBefore = gw.rssMiB();
    const linesBefore = gw.proc.output().split('\n').filter((l) => l.includes('"msg":"api request refused"')).length;
    const started = Date.now();
    const statuses: number[] = [];
    for (let batch = 0; batch < 50; batch++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => http('GET', '/%zz')));
      statuses.push(...answers.map((a) => a.status));
    }
    expect(new Set(statuses)).toEqual(new Set([400]));
    expect(statuses).toHaveLength(500);
    const logged = gw.proc.output().split('\n').filter((l) => l.includes('"msg":"api request refused"')).length - linesBefore;
    expect(logged).toBeLessThanOrEqual(10 * (Math.floor((Date.now() - started) / 10_000) + 2));
    expect(await gw.metric('outpost_api_refused_total')).toBeGreaterThanOrEqual(500);
    await waitFor(() => gw.rssMiB() < rssBefore + 64, 30_000, 250);
  });
});

describe('api.requireToken: false on loopback (the explicit opt-out)', () => {
  let open: Gateway;
  beforeAll(async () => {
    open = await Gateway.start({ distancePeriodMs: 3_600_000, api: { requireToken: false } });
  }, 90_000);
  afterAll(async () => {
    await open?.stop();
  });

  it('writes without a token, warns at start, and still refuses foreign Host/Origin, non-JSON and held outputs', async () => {
    await open.proc.waitForOutput(/"msg":"local API writes need no token \(api.requireToken: false\): any local process can write outputs"/, 15_000);
    const w = (point: string, headers: Record<string, string>, body = '{"value":33}') => open.request('POST', `/api/points/${point}/write`, { headers, body });
    expect((await w('plc1.speed-setpoint', { 'content-type': 'application/json' })).status).toBe(200);
    expect((await w('plc1.speed-setpoint', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await w('plc1.speed-setpoint', { 'content-type': 'application/json', origin: 'http://evil.example' })).status).toBe(403);
    await waitFor(async () => (await open.value('io.machine-run')) === false && (await open.value('io.alarm-lamp')) === true, 30_000, 100);
    const held = await w('io.machine-run', { 'content-type': 'application/json' }, '{"value":true}');
    expect(held.status).toBe(409);
    expect(held.json.error.code).toBe('OUTPOST_E_RUNTIME_INTERLOCKED');
    await waitFor(async () => (await open.value('plc1.speed-setpoint')) === 33, 15_000, 100);
    expect(await open.metric('outpost_runtime_writes_api_total')).toBe(1);
    expect(open.alive()).toBe(true);
  });
});
