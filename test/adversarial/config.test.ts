import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/net.js';
import { BIN } from './gateway.js';

/**
 * Hostile configuration files and drop-ins against the real binaries: `outpost config validate` and
 * `outpost run` (dist/services/outpost.js). Every case must end with exit code 2, the documented code,
 * the file (and line or path) at fault named on stderr, no stack trace, within the spawn deadline
 * (a hang fails the case), and for `run`: nothing started (no log of a start, no port listening, the
 * data directory not created).
 */

/** A file's bytes, a named pipe, a symlink, a directory, or null: no such file. */
type Content = string | Uint8Array | { fifo: true } | { symlink: string } | { dir: true } | null;

interface Case {
  readonly name: string;
  /** Files relative to the case directory; `config.yaml` defaults to a valid base configuration. */
  readonly files: (base: string) => Record<string, Content>;
  readonly code: string;
  /** Each must appear on stderr (the file is given relative to the case directory; it is made absolute). */
  readonly expect: ReadonlyArray<string | RegExp>;
  /** Whether the main file carries the case's ports and data directory (false when it is the hostile file). */
  readonly ownPorts?: boolean;
}

const DEADLINE_MS = 90_000;
const pointsYaml = `
devices:
  - id: plc1
    kind: modbus
    connection: {type: sim}
    pollIntervalMs: 200
    points:
      - {id: plc1.distance, table: input, address: 0, type: uint16}
      - {id: plc1.speed, table: holding, address: 6, type: int16, writable: true}
`;

/** A valid rule to be patched by a drop-in, and a valid route. */
const rulesYaml = `
rules:
  - {id: stop, point: plc1.distance, when: below, threshold: 400, hysteresis: 100, onTrigger: [{write: {point: plc1.speed, value: 0}}]}
routes:
  - {id: telemetry, route: "FROM /readings/* INTO $upstream"}
`;

const aliasBomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefg'[i]}`).join(',')}]`)].join('\n');

function garbage(n: number): Uint8Array {
  // Deterministic bytes (xorshift), mostly not UTF-8.
  const out = new Uint8Array(n);
  let x = 2463534242;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const CASES: Case[] = [
  { name: '.nan scale factor', files: () => ({ 'config.d/10-scale.yaml': 'devices:\n  - id: plc1\n    points:\n      - {id: plc1.distance, scale: {factor: .nan}}\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-scale.yaml:4:', 'devices[0].points[0].scale.factor: .nan is not a finite number'] },
  { name: '.inf threshold', files: () => ({ 'config.d/10-rule.yaml': 'rules:\n  - id: stop\n    threshold: .inf\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-rule.yaml:3:', 'rules[0].threshold: .inf is not a finite number'] },
  { name: '-.inf hysteresis', files: () => ({ 'config.d/10-rule.yaml': 'rules:\n  - {id: stop, hysteresis: -.Inf}\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-rule.yaml:2:', 'rules[0].hysteresis: -.Inf is not a finite number'] },
  { name: '.NaN write value', files: () => ({ 'config.d/10-rule.yaml': 'rules:\n  - id: stop\n    onTrigger: [{write: {point: plc1.speed, value: .NaN}}]\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-rule.yaml:3:', 'rules[0].onTrigger[0].write.value: .NaN is not a finite number'] },
  { name: 'infinite deadband', files: () => ({ 'config.d/10-db.json': '{"devices": [{"id": "plc1", "points": [{"id": "plc1.distance", "deadband": {"absolute": 1e400}}]}]}' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-db.json:1:', 'deadband.absolute: 1e400 is not a finite number'] },
  { name: 'invalid UTF-8', files: () => ({ 'config.d/10-latin1.yaml': Uint8Array.from([...Buffer.from('log:\n  level: info # caf'), 0xe9, 0x0a]) }), code: 'OUTPOST_E_CONFIG_ENCODING', expect: ['config.d/10-latin1.yaml:2: not UTF-8 text: invalid byte sequence at byte offset 24 (0xe9)'] },
  { name: 'binary garbage', files: () => ({ 'config.d/10-garbage.yaml': garbage(64 * 1024) }), code: 'OUTPOST_E_CONFIG_ENCODING', expect: ['config.d/10-garbage.yaml:', 'not UTF-8 text'] },
  { name: 'a NUL byte in valid UTF-8', files: () => ({ 'config.d/10-nul.yaml': 'log:\n  level: info\u0000\n' }), code: 'OUTPOST_E_CONFIG_ENCODING', expect: ['config.d/10-nul.yaml:2: control character U+0000 at offset 18'] },
  { name: 'an empty main file', ownPorts: false, files: () => ({ 'config.yaml': '' }), code: 'OUTPOST_E_CONFIG_EMPTY', expect: ['config.yaml: the file is empty'] },
  { name: 'a drop-in of only comments', files: () => ({ 'config.d/10-comments.yaml': '# api:\n#   port: 1\n\n   # nothing\n' }), code: 'OUTPOST_E_CONFIG_EMPTY', expect: ['config.d/10-comments.yaml: the file holds no settings'] },
  { name: 'duplicate keys', files: () => ({ 'config.d/10-dup.yaml': 'api:\n  host: 127.0.0.1\n  host: 0.0.0.0\n' }), code: 'OUTPOST_E_CONFIG_PARSE', expect: ['config.d/10-dup.yaml:3:3: not valid YAML or JSON ← DUPLICATE_KEY: Map keys must be unique'] },
  { name: 'an alias bomb', files: () => ({ 'config.d/10-bomb.yaml': aliasBomb }), code: 'OUTPOST_E_CONFIG_PARSE', expect: ['config.d/10-bomb.yaml:2:', 'aliases expand to too many values (more than the limit of 100 per file)'] },
  { name: 'deep nesting', files: () => ({ 'config.d/10-deep.yaml': `log: ${'['.repeat(400_000)}${']'.repeat(400_000)}\n` }), code: 'OUTPOST_E_CONFIG_PARSE', expect: ['config.d/10-deep.yaml:1: nested deeper than 32 levels'] },
  { name: 'a 50 MB file', files: () => ({ 'config.d/10-huge.yaml': `log: "${'x'.repeat(50 * 1024 * 1024)}"\n` }), code: 'OUTPOST_E_CONFIG_TOO_LARGE', expect: [/config\.d\/10-huge\.yaml: 524288\d\d bytes, more than the limit of 1048576 bytes per file/] },
  { name: 'too many drop-ins', files: () => Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`config.d/${String(i).padStart(3, '0')}.yaml`, 'log: {}\n'])), code: 'OUTPOST_E_CONFIG_TOO_LARGE', expect: ['config.d: 300 drop-ins, more than the limit of 256'] },
  { name: 'two documents', files: () => ({ 'config.d/10-two.yaml': 'log: {level: info}\n---\napi: {port: 1}\n' }), code: 'OUTPOST_E_CONFIG_PARSE', expect: ['config.d/10-two.yaml:2:1: a second YAML document (after ---)'] },
  { name: 'a list at the top level', files: () => ({ 'config.d/10-list.yaml': '- api\n- broker\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-list.yaml:1:1: the top level must be a mapping of sections, not a list'] },
  { name: 'an unknown YAML tag', files: () => ({ 'config.d/10-tag.yaml': 'log: !!js/function "function () {}"\n' }), code: 'OUTPOST_E_CONFIG_PARSE', expect: ['config.d/10-tag.yaml:1:', 'TAG_RESOLVE_FAILED'] },
  { name: 'a named pipe as a drop-in', files: () => ({ 'config.d/10-pipe.yaml': { fifo: true } }), code: 'OUTPOST_E_CONFIG_READ', expect: ['config.d/10-pipe.yaml: not a regular file (a named pipe)'] },
  { name: 'a drop-in linked to /dev/zero', files: () => ({ 'config.d/10-zero.yaml': { symlink: '/dev/zero' } }), code: 'OUTPOST_E_CONFIG_READ', expect: ['config.d/10-zero.yaml: not a regular file (a character device)'] },
  { name: 'a directory named like a drop-in', files: () => ({ 'config.d/10-dir.yaml': { dir: true } }), code: 'OUTPOST_E_CONFIG_READ', expect: ['config.d/10-dir.yaml: not a regular file (a directory)'] },
  { name: 'a missing main file', ownPorts: false, files: () => ({ 'config.yaml': null, 'other.yaml': 'log: {}\n' }), code: 'OUTPOST_E_CONFIG_READ', expect: ['config.yaml: cannot read the file ← ENOENT'] },
  {
    name: 'a bad route in a drop-in and a bad schema value in the main file, reported together',
    files: (base) => ({ 'config.yaml': base.replace('pollIntervalMs: 200', 'pollIntervalMs: fast'), 'config.d/20-routes.yaml': 'routes:\n  - id: telemetry\n    route: "FROM /readings/* WHERE value > INTO $upstream"\n' }),
    code: 'OUTPOST_E_CONFIG_INVALID',
    expect: ['config.yaml:', 'devices[0].pollIntervalMs: must be integer, got string "fast"', "config.d/20-routes.yaml:3:5: routes[0].route: at column 32: expected a value after '>'"],
  },
  {
    name: 'parse errors in two drop-ins, reported together',
    files: () => ({ 'config.d/10-a.yaml': 'log: {level: info\n', 'config.d/20-b.yaml': 'api: {}\napi: {}\n' }),
    code: 'OUTPOST_E_CONFIG_PARSE',
    expect: ['config.d/10-a.yaml:', 'config.d/20-b.yaml:2:1:'],
  },
  { name: 'dataDir through a file', files: () => ({ 'config.d/10-data.yaml': 'gateway:\n  dataDir: /etc/passwd/sub\n' }), code: 'OUTPOST_E_CONFIG_DATA_DIR', expect: ['config.d/10-data.yaml:2:3: gateway.dataDir: /etc/passwd/sub runs through /etc/passwd, which is not a directory'] },
  { name: 'dataDir under /proc', files: () => ({ 'config.d/10-data.yaml': 'gateway:\n  dataDir: /proc/1/nope\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ["config.d/10-data.yaml:2:3: gateway.dataDir: /proc/1/nope is on the kernel's /proc pseudo file system"] },
  { name: 'api.host that is not a host', files: () => ({ 'config.d/10-api.yaml': 'api:\n  host: "not a host!"\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-api.yaml:2:3: api.host: "not a host!" is not an IP address or host name'] },
  { name: 'broker.host with a port in it', files: () => ({ 'config.d/10-broker.yaml': 'broker: {host: "127.0.0.1:1883"}\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-broker.yaml:1:10: broker.host: "127.0.0.1:1883" is not an IP address or host name'] },
  { name: 'a broker port out of range', files: () => ({ 'config.d/10-broker.yaml': 'broker:\n  port: 70000\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ['config.d/10-broker.yaml:2:3: broker.port: must be ≤ 65535'] },
  {
    name: 'unknown keys at the top and inside a section',
    files: () => ({ 'config.d/10-unknown.yaml': 'telemetry: {}\napi:\n  listen: 0.0.0.0\n' }),
    code: 'OUTPOST_E_CONFIG_INVALID',
    expect: ["config.d/10-unknown.yaml:1:1: (root): unknown key 'telemetry'", "config.d/10-unknown.yaml:3:3: api: unknown key 'listen'"],
  },
  { name: 'a __proto__ key', files: () => ({ 'config.d/10-proto.yaml': 'api:\n  __proto__: {port: 1}\n' }), code: 'OUTPOST_E_CONFIG_INVALID', expect: ["config.d/10-proto.yaml:2:3: api: unknown key '__proto__'"] },
  { name: 'duplicate keys in a JSON drop-in', files: () => ({ 'config.d/10-dup.json': '{"log": {"level": "info", "level": "trace"}}' }), code: 'OUTPOST_E_CONFIG_PARSE', expect: ['config.d/10-dup.json:1:', 'DUPLICATE_KEY'] },
];

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'outpost-adv-config-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Prepared {
  readonly dir: string;
  readonly main: string;
  readonly dataDir: string;
  readonly ports: readonly number[];
}

async function prepare(c: Case, tag: string): Promise<Prepared> {
  const dir = path.join(root, `${tag}-${c.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}`);
  mkdirSync(path.join(dir, 'config.d'), { recursive: true });
  const [apiPort, brokerPort] = [await freePort(), await freePort()];
  const dataDir = path.join(dir, 'data');
  const base = `gateway: {id: adv-config, dataDir: ${dataDir}}\napi: {host: 127.0.0.1, port: ${apiPort}}\nbroker: {host: 127.0.0.1, port: ${brokerPort}}\n${pointsYaml}${rulesYaml}`;
  const files: Record<string, Content> = { 'config.yaml': base, ...c.files(base) };
  for (const [rel, content] of Object.entries(files)) {
    const f = path.join(dir, rel);
    mkdirSync(path.dirname(f), { recursive: true });
    if (content === null) continue;
    if (typeof content === 'string' || content instanceof Uint8Array) writeFileSync(f, content);
    else if ('fifo' in content) execFileSync('mkfifo', [f]);
    else if ('symlink' in content) symlinkSync(content.symlink, f);
    else mkdirSync(f);
  }
  return { dir, main: path.join(dir, 'config.yaml'), dataDir, ports: c.ownPorts === false ? [] : [apiPort, brokerPort] };
}

function outpost(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

function expectRefused(r: { code: number | null; err: string }, c: Case, dir: string): void {
  expect(r.code, r.err).toBe(2);
  expect(r.err).toContain(`outpost: ${c.code}: `);
  for (const e of c.expect) {
    // Expectations that start with a file name relative to the case directory name it in full.
    if (typeof e === 'string') expect(r.err).toContain(/^(config\.yaml|config\.d)/.test(e) ? `${dir}/${e}` : e);
    else expect(r.err).toMatch(e);
  }
  expect(r.err).not.toMatch(/\n\s+at .+:\d+:\d+\)?$/m);
}

describe.concurrent('hostile configuration: outpost config validate', { timeout: DEADLINE_MS + 30_000 }, () => {
  it.each(CASES)('refuses $name', async (c) => {
    const p = await prepare(c, 'validate');
    const r = await outpost(['config', 'validate', p.main]);
    expectRefused(r, c, p.dir);
    expect(r.out).toBe('');
  });
});

describe.concurrent('hostile configuration: outpost run', { timeout: DEADLINE_MS + 30_000 }, () => {
  it.each(CASES)('refuses $name and starts nothing', async (c) => {
    const p = await prepare(c, 'run');
    const r = await outpost(['run', '--config', p.main]);
    expectRefused(r, c, p.dir);
    expect(r.out).not.toContain('runtime started');
    if (c.ownPorts !== false) expect(existsSync(p.dataDir)).toBe(false);
    for (const port of p.ports) expect(await listening(port)).toBe(false);
  });
});

describe('files outpost ignores in config.d/', () => {
  it('leaves out dotfiles, editor locks, swap and backup files, and says which files it read', async () => {
    const c: Case = {
      name: 'ignored',
      files: () => ({
        'config.d/.#10-routes.yaml': 'this: [is not yaml',
        'config.d/.10-routes.yaml.swp': garbage(512),
        'config.d/.hidden.yaml': 'api: {port: 99999}\n',
        'config.d/10-routes.yaml~': '',
        'config.d/#10-routes.yaml#': '- a list',
        'config.d/README.md': '# notes',
        'config.d/10-routes.yaml': 'routes:\n  - {id: local, route: "FROM /readings/* INTO $broker(\\"plant\\")"}\n',
      }),
      code: '',
      expect: [],
    };
    const p = await prepare(c, 'ignored');
    const r = await outpost(['config', 'validate', p.main]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(`valid: 1 devices, 2 points, 1 rules, 2 routes (${p.main}, ${path.join(p.dir, 'config.d/10-routes.yaml')})\n`);
  });
});
