import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectDataDir, prepareDataDir } from '../../src/config/data-dir.js';
import { isHostOrIp } from '../../src/config/hosts.js';
import { ConfigValidator, loadConfig } from '../../src/config/load.js';
import { mergeTracked, originAt } from '../../src/config/merge.js';
import { parseSource, MAX_DEPTH } from '../../src/config/source-parse.js';
import { DROP_IN_NAME } from '../../src/config/source-read.js';
import { estimateDepth, firstInvalidUtf8 } from '../../src/config/text-checks.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { memoryFiles } from '../helpers/config.js';

const enc = (s: string) => new TextEncoder().encode(s);
const validator = new ConfigValidator();

function problemsOf(f: () => unknown): Array<{ path: string; message: string; file?: string; line?: number; code?: string }> {
  try {
    f();
  } catch (e) {
    return (e as OutpostError).details['problems'] as Array<{ path: string; message: string }>;
  }
  return [];
}

async function rejection(p: Promise<unknown>): Promise<OutpostError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    return e as OutpostError;
  }
  throw new Error('expected a rejection');
}

describe('UTF-8 check', () => {
  it('accepts ASCII and well-formed multi-byte text', () => {
    expect(firstInvalidUtf8(enc('plain ascii'))).toBe(-1);
    expect(firstInvalidUtf8(enc('°C, µs, ≤, 😀'))).toBe(-1);
  });
  it.each([
    ['a lone continuation byte', [0x61, 0x80], 1],
    ['0xFF', [0x61, 0x62, 0xff], 2],
    ['an overlong encoding of "/"', [0xc0, 0xaf], 0],
    ['an overlong three-byte form', [0xe0, 0x80, 0xaf], 0],
    ['a UTF-16 surrogate', [0x61, 0xed, 0xa0, 0x80], 1],
    ['a sequence cut at the end', [0x61, 0xe2, 0x82], 1],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80], 0],
  ])('finds %s at its byte offset', (_name, bytes, offset) => {
    expect(firstInvalidUtf8(Uint8Array.from(bytes))).toBe(offset);
  });
});

describe('depth estimate', () => {
  it('stays close to the real depth of ordinary configuration', () => {
    const yaml = 'devices:\n  - id: a\n    points:\n      - {id: p, scale: {factor: 2}}\n';
    const d = estimateDepth(yaml, 64).depth;
    expect(d).toBeGreaterThanOrEqual(5);
    expect(d).toBeLessThanOrEqual(8);
  });
  it.each([
    ['flow lists', '['.repeat(100_000)],
    ['flow maps', '{a: '.repeat(100_000)],
    ['block maps', Array.from({ length: 200 }, (_, i) => `${' '.repeat(i)}k:`).join('\n')],
    ['compact block lists', '- '.repeat(100_000)],
  ])('stops early on deeply nested %s', (_name, text) => {
    expect(estimateDepth(text, MAX_DEPTH).depth).toBeGreaterThan(MAX_DEPTH);
  });
});

describe('parseSource', () => {
  const codeOf = (text: string | Uint8Array) => parseSource('/c/x.yaml', typeof text === 'string' ? enc(text) : text).problems.map((p) => p.code ?? 'OUTPOST_E_CONFIG_INVALID');

  it('returns the document and the line of every value', () => {
    const r = parseSource('/c/x.yaml', enc('api:\n  host: 127.0.0.1\ndevices:\n  - id: a\n'));
    expect(r.problems).toEqual([]);
    expect(r.value).toEqual({ api: { host: '127.0.0.1' }, devices: [{ id: 'a' }] });
    expect(originAt(r.origin, ['api', 'host'])).toMatchObject({ file: '/c/x.yaml', line: 2, col: 3 });
    expect(originAt(r.origin, ['devices', '0', 'id'])).toMatchObject({ line: 4 });
  });

  it('refuses invalid UTF-8 with the byte offset instead of replacing it', () => {
    const r = parseSource('/c/x.yaml', Uint8Array.from([...enc('a: 1\nb: "'), 0xff, 0x22, 0x0a]));
    expect(r.value).toBeUndefined();
    expect(r.problems[0]).toMatchObject({ code: 'OUTPOST_E_CONFIG_ENCODING', file: '/c/x.yaml', line: 2, message: expect.stringContaining('byte offset 9 (0xff)') });
  });

  it('refuses control characters (binary data) and accepts a byte order mark', () => {
    expect(codeOf('a: 1\u0000\n')).toEqual(['OUTPOST_E_CONFIG_ENCODING']);
    expect(codeOf('\ufeffa: 1\n')).toEqual([]);
  });

  it.each([
    ['an empty file', ''],
    ['only white space', '  \n\n'],
    ['only comments', '# nothing here\n   # nor here\n'],
    ['a null document', '~\n'],
    ['an explicit null', 'null'],
  ])('refuses %s as empty', (_name, text) => {
    expect(codeOf(text)).toEqual(['OUTPOST_E_CONFIG_EMPTY']);
  });

  it('names line, column and the parser reason of duplicate keys', () => {
    const r = parseSource('/c/x.yaml', enc('log:\n  level: info\n  level: debug\n'));
    expect(r.problems).toEqual([expect.objectContaining({ code: 'OUTPOST_E_CONFIG_PARSE', line: 3, col: 3, reason: expect.stringMatching(/^DUPLICATE_KEY: /) })]);
  });

  it('stops an alias bomb at the alias limit', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefg'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdef'[i]}`).join(', ')}]`)].join('\n');
    const r = parseSource('/c/x.yaml', enc(bomb));
    expect(r.problems).toEqual([expect.objectContaining({ code: 'OUTPOST_E_CONFIG_PARSE', message: expect.stringContaining('aliases expand to too many values'), line: 2, col: 8 })]);
  });

  it('refuses deep nesting before parsing it', () => {
    const r = parseSource('/c/x.yaml', enc(`a: ${'['.repeat(200_000)}`));
    expect(r.problems).toEqual([expect.objectContaining({ code: 'OUTPOST_E_CONFIG_PARSE', line: 1, message: `nested deeper than ${MAX_DEPTH} levels` })]);
  });

  it('refuses a second document and a top level that is not a mapping', () => {
    expect(codeOf('a: 1\n---\nb: 2\n')).toEqual(['OUTPOST_E_CONFIG_PARSE']);
    expect(parseSource('/c/x.yaml', enc('- a\n- b\n')).problems[0]?.message).toMatch(/top level must be a mapping/);
  });

  it('reports every number that is not finite with its path and line, and keeps the document', () => {
    const r = parseSource('/c/x.yaml', enc('rules:\n  - threshold: .nan\n    hysteresis: -.Inf\nscale: 1e400\nok: 1.5\n'));
    expect(r.value).toBeDefined();
    expect(r.problems.map((p) => [p.path, p.line])).toEqual([
      ['rules[0].threshold', 2],
      ['rules[0].hysteresis', 3],
      ['scale', 4],
    ]);
  });

  it('reads JSON, with its duplicate keys refused too', () => {
    expect(parseSource('/c/x.json', enc('{"api": {"port": 8080}}')).value).toEqual({ api: { port: 8080 } });
    expect(codeOf('{"a": 1, "a": 2}')).toEqual(['OUTPOST_E_CONFIG_PARSE']);
  });
});

describe('mergeTracked', () => {
  const doc = (file: string, text: string) => {
    const r = parseSource(file, enc(text));
    return { value: r.value, origin: r.origin };
  };

  it('keeps the origin of each value: the drop-in for what it set, the main file for the rest', () => {
    const merged = mergeTracked(mergeTracked({ value: {} }, doc('/main.yaml', 'api:\n  port: 1\n  host: h\ndevices:\n  - id: a\n    x: 1\n')), doc('/d.yaml', 'api: {port: 2}\ndevices:\n  - {id: b}\n  - {id: a, x: 3}\n'));
    expect(merged.value).toEqual({ api: { port: 2, host: 'h' }, devices: [{ id: 'a', x: 3 }, { id: 'b' }] });
    expect(originAt(merged.origin, ['api', 'port'])).toMatchObject({ file: '/d.yaml', line: 1 });
    expect(originAt(merged.origin, ['api', 'host'])).toMatchObject({ file: '/main.yaml', line: 3 });
    expect(originAt(merged.origin, ['devices', '0', 'x'])).toMatchObject({ file: '/d.yaml', line: 4 });
    expect(originAt(merged.origin, ['devices', '1'])).toMatchObject({ file: '/d.yaml', line: 3 });
    expect(originAt(merged.origin, ['devices', '0', 'nope'])).toMatchObject({ file: '/main.yaml', line: 5 });
  });

  it('keeps __proto__ a plain key (no prototype change)', () => {
    const merged = mergeTracked({ value: { api: {} } }, doc('/d.yaml', 'api:\n  __proto__: {polluted: 1}\n'));
    const api = (merged.value as { api: object }).api;
    expect(Object.getPrototypeOf(api)).toBe(Object.prototype);
    expect(Object.keys(api)).toEqual(['__proto__']);
    expect(({} as { polluted?: number }).polluted).toBeUndefined();
  });
});

describe('non-finite numbers in the validator (ajv strictNumbers)', () => {
  const point = { id: 'p', table: 'holding', address: 0 };
  const out = { id: 'o', table: 'holding', address: 1, writable: true };
  const base = (pointExtra: Record<string, unknown> = {}, rule: Record<string, unknown> = {}) => ({
    devices: [{ id: 'plc', kind: 'modbus', connection: { type: 'sim' }, points: [{ ...point, ...pointExtra }, out] }],
    rules: [{ id: 'r', point: 'p', when: 'above', threshold: 1, onTrigger: [{ write: { point: 'o', value: 1 } }], ...rule }],
  });
  it.each([
    ['scale', base({ scale: { factor: Number.NaN } }), 'devices[0].points[0].scale.factor'],
    ['scale offset', base({ scale: { offset: Number.POSITIVE_INFINITY } }), 'devices[0].points[0].scale.offset'],
    ['absolute deadband', base({ deadband: { absolute: Number.POSITIVE_INFINITY } }), 'devices[0].points[0].deadband.absolute'],
    ['range', base({ range: { min: Number.NEGATIVE_INFINITY, max: 1 } }), 'devices[0].points[0].range.min'],
    ['threshold', base({}, { threshold: Number.NaN }), 'rules[0].threshold'],
    ['hysteresis', base({}, { hysteresis: Number.POSITIVE_INFINITY }), 'rules[0].hysteresis'],
    ['write value', base({}, { onTrigger: [{ write: { point: 'o', value: Number.NaN } }] }), 'rules[0].onTrigger[0].write.value'],
  ])('refuses NaN and infinities in %s', (_name, doc, at) => {
    const found = problemsOf(() => validator.validate(doc, ['t.yaml'], '/tmp'));
    expect(found.some((p) => p.path.startsWith(at) && /finite number/.test(p.message)), JSON.stringify(found)).toBe(true);
  });
});

describe('bind hosts', () => {
  it.each(['127.0.0.1', '0.0.0.0', '::1', '::', 'localhost', 'gateway.local', 'a-b.example.com', 'fe80::1'])('accepts %s', (h) => expect(isHostOrIp(h)).toBe(true));
  it.each(['not a host!', '', '-bad.example', 'bad-.example', '[::1]', '300.1.1.1', 'a'.repeat(64), 'host:80', 'a..b'])('refuses %j', (h) => expect(isHostOrIp(h)).toBe(false));
  it('reports api.host and broker.host', () => {
    const found = problemsOf(() => validator.validate({ api: { host: 'not a host!' }, broker: { host: 'x y' } }, ['t.yaml'], '/tmp'));
    expect(found.map((p) => p.path)).toEqual(['api.host', 'broker.host']);
  });
});

describe('loadConfig: files and drop-ins', () => {
  it('reads only *.yaml, *.yml and *.json drop-ins that do not start with a dot', () => {
    const names = ['10-a.yaml', '20-b.yml', '30-c.json', '.hidden.yaml', '.#10-a.yaml', '.10-a.yaml.swp', '10-a.yaml~', '#10-a.yaml#', 'README', 'x.yaml.bak', 'x.YAML'];
    expect(names.filter((n) => DROP_IN_NAME.test(n))).toEqual(['10-a.yaml', '20-b.yml', '30-c.json']);
  });

  it('reports schema, route grammar and semantic problems of all files in one pass, each with its file and line', async () => {
    const files = memoryFiles({
      '/c/config.yaml': 'api:\n  port: 99999\ndevices:\n  - id: io\n    kind: gpio\n    connection: {type: sim}\n    points: [{id: io.out, pin: 1, direction: out, safeState: false, writable: true}]\n',
      '/c/config.d/10-rules.yaml': 'rules:\n  - {id: r, point: nope, when: above, threshold: 1, onTrigger: [{write: {point: io.out, value: true}}]}\n',
      '/c/config.d/20-routes.yaml': 'routes:\n  - id: up\n    route: "FROM /readings/* INTO"\n',
      '/c/config.d/.#20-routes.yaml': 'this: [is not yaml',
    });
    const e = await rejection(loadConfig('/c/config.yaml', files));
    expect(e.code).toBe('OUTPOST_E_CONFIG_INVALID');
    const lines = e.message.split('\n').slice(1).map((l) => l.trim());
    expect(lines).toEqual(
      expect.arrayContaining([
        '/c/config.yaml:2:3: api.port: must be ≤ 65535',
        "/c/config.d/10-rules.yaml:2:13: rules[0].point: no point 'nope'",
        expect.stringMatching(/^\/c\/config\.d\/20-routes\.yaml:3:5: routes\[0\]\.route: /),
      ]),
    );
    expect(lines).toHaveLength(3);
  });

  it('reports the file problems of every file at once, with the code of each when they differ', async () => {
    const files = memoryFiles({
      '/c/config.yaml': 'api: {port: 1}\n',
      '/c/config.d/10-a.yaml': 'log: {}\nlog: {}\n',
      '/c/config.d/20-b.yaml': '',
      '/c/config.d/30-c.yaml': Uint8Array.from([0x61, 0x3a, 0x20, 0xfe]),
    });
    const e = await rejection(loadConfig('/c/config.yaml', files));
    expect(e.code).toBe('OUTPOST_E_CONFIG_INVALID');
    expect(e.message).toContain('/c/config.d/10-a.yaml:2:1: OUTPOST_E_CONFIG_PARSE: not valid YAML or JSON ← DUPLICATE_KEY');
    expect(e.message).toContain('/c/config.d/20-b.yaml: OUTPOST_E_CONFIG_EMPTY: the file is empty');
    expect(e.message).toContain('/c/config.d/30-c.yaml:1: OUTPOST_E_CONFIG_ENCODING: not UTF-8 text: invalid byte sequence at byte offset 3 (0xfe)');
  });

  it('refuses a file over the size limit, all files over the total limit, and too many drop-ins', async () => {
    const big = await rejection(loadConfig('/c/config.yaml', memoryFiles({ '/c/config.yaml': `a: "${'x'.repeat(200)}"\n` }), validator, { maxFileBytes: 100 }));
    expect(big).toMatchObject({ code: 'OUTPOST_E_CONFIG_TOO_LARGE', message: expect.stringContaining('/c/config.yaml: 206 bytes, more than the limit of 100 bytes per file') });
    const total = await rejection(
      loadConfig('/c/config.yaml', memoryFiles({ '/c/config.yaml': 'log: {level: info}\n', '/c/config.d/a.yaml': 'api: {port: 1}\n' }), validator, { maxTotalBytes: 25 }),
    );
    expect(total).toMatchObject({ code: 'OUTPOST_E_CONFIG_TOO_LARGE', message: expect.stringContaining('/c/config.d/a.yaml: with this file') });
    const many = Object.fromEntries([['/c/config.yaml', 'log: {}\n'], ...Array.from({ length: 4 }, (_, i) => [`/c/config.d/${i}.yaml`, 'log: {}\n'])]);
    expect(await rejection(loadConfig('/c/config.yaml', memoryFiles(many), validator, { maxDropIns: 3 }))).toMatchObject({
      code: 'OUTPOST_E_CONFIG_TOO_LARGE',
      message: expect.stringContaining('/c/config.d: 4 drop-ins, more than the limit of 3'),
    });
  });

  it('refuses a data directory that runs through a file, naming the file and line that set it', async () => {
    const files = memoryFiles({ '/c/config.yaml': 'log: {}\n', '/c/config.d/data.yaml': 'gateway:\n  dataDir: /c/config.yaml/sub\n' });
    const e = await rejection(loadConfig('/c/config.yaml', files));
    expect(e.code).toBe('OUTPOST_E_CONFIG_DATA_DIR');
    expect(e.message).toContain('/c/config.d/data.yaml:2:3: gateway.dataDir: /c/config.yaml/sub runs through /c/config.yaml, which is not a directory');
  });
});

describe('data directory', () => {
  it('inspectDataDir walks up to the first existing path', async () => {
    const kind = async (p: string) => (p === '/etc/passwd' ? ('file' as const) : p === '/' || p === '/etc' || p === '/var' ? ('dir' as const) : null);
    expect(await inspectDataDir('/var/lib/outpost', kind)).toBeNull();
    expect(await inspectDataDir('/etc/passwd/sub/x', kind)).toBe('/etc/passwd/sub/x runs through /etc/passwd, which is not a directory');
    expect(await inspectDataDir('/etc/passwd', kind)).toBe('/etc/passwd exists and is not a directory');
  });

  it('prepareDataDir refuses /proc at once (mkdir -p would spin there) and a path through a file', async () => {
    await expect(prepareDataDir('/proc/1/nope')).rejects.toMatchObject({ code: 'OUTPOST_E_CONFIG_DATA_DIR' });
    await expect(prepareDataDir('/etc/passwd/sub')).rejects.toMatchObject({ code: 'OUTPOST_E_CONFIG_DATA_DIR', details: { at: '/etc/passwd' } });
  });

  it('prepareDataDir creates missing directories and leaves no probe file behind', async () => {
    const tmp = mkdtempSync(path.join(os.tmpdir(), 'outpost-datadir-'));
    try {
      await prepareDataDir(path.join(tmp, 'a', 'b'));
      expect(statSync(path.join(tmp, 'a', 'b')).isDirectory()).toBe(true);
      writeFileSync(path.join(tmp, 'file'), 'x');
      await expect(prepareDataDir(path.join(tmp, 'file', 'c'))).rejects.toMatchObject({ code: 'OUTPOST_E_CONFIG_DATA_DIR', details: { at: path.join(tmp, 'file') } });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
