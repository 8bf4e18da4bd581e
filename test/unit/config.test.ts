import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigValidator, loadConfig } from '../../src/config/load.js';
import { mergeConfig } from '../../src/config/merge.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { memoryFiles } from '../helpers/config.js';

const validator = new ConfigValidator();

function base(): Record<string, any> {
  return {
    gateway: { id: 'gw1', dataDir: '/tmp/outpost-test' },
    devices: [
      {
        id: 'plc1',
        kind: 'modbus',
        connection: { type: 'tcp', host: '127.0.0.1', port: 5020 },
        points: [
          { id: 'plc1.t1', table: 'holding', address: 0, type: 'float32' },
          { id: 'plc1.run', table: 'coil', address: 0, type: 'bool', writable: true },
        ],
      },
      {
        id: 'io',
        kind: 'gpio',
        connection: { type: 'sim' },
        points: [
          { id: 'io.in', pin: 17, direction: 'in' },
          { id: 'io.out', pin: 23, direction: 'out', safeState: false, writable: true },
        ],
      },
    ],
    rules: [{ id: 'r1', point: 'plc1.t1', when: 'above', threshold: 50, onTrigger: [{ write: { point: 'io.out', value: true } }] }],
    routes: [{ id: 'up', route: "FROM /readings/* WHERE quality = 'good' INTO $upstream" }],
  };
}

function problems(doc: unknown): string[] {
  try {
    validator.validate(doc, ['test.yaml'], '/tmp');
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    expect((e as OutpostError).code).toBe('OUTPOST_E_CONFIG_INVALID');
    expect((e as OutpostError).exitCode).toBe(2);
    return ((e as OutpostError).details['problems'] as Array<{ path: string; message: string }>).map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

type Mutation = [name: string, mutate: (c: Record<string, any>) => void, expected: string];

const BAD: Mutation[] = [
  ['wrong type', (c) => (c.devices[0].points[0].address = 'zero'), 'devices[0].points[0].address: must be integer, got string "zero"'],
  ['out-of-range address', (c) => (c.devices[0].points[0].address = 70000), 'devices[0].points[0].address: must be ≤ 65535'],
  ['address too high for the type', (c) => (c.devices[0].points[0].address = 65535), 'devices[0].points[0].address: must be ≤ 65534 for a float32 (2 registers)'],
  ['unknown key', (c) => (c.devices[0].points[1].colour = 'red'), "devices[0].points[1]: unknown key 'colour'"],
  ['unknown top-level key', (c) => (c.extra = 1), "(root): unknown key 'extra'"],
  ['missing required key', (c) => delete c.devices[0].points[0].address, "devices[0].points[0]: missing required key 'address'"],
  ['bad enum', (c) => (c.devices[0].points[0].table = 'holdings'), 'devices[0].points[0].table: must be one of: coil, discrete, holding, input; got "holdings"'],
  ['unknown device kind', (c) => (c.devices[1].kind = 'canbus'), 'devices[1].kind: must be one of: modbus, opcua, serial, gpio; got "canbus"'],
  ['unknown connection type', (c) => (c.devices[0].connection.type = 'udp'), 'devices[0].connection.type: must be one of: tcp, rtu, sim; got "udp"'],
  ['port out of range', (c) => (c.devices[0].connection.port = 0), 'devices[0].connection.port: must be ≥ 1'],
  ['bad id', (c) => (c.devices[0].id = 'plc 1'), 'devices[0].id: "plc 1" is not a valid id'],
  ['duplicate point ids', (c) => (c.devices[1].points[0].id = 'plc1.t1'), "devices[1].points[0].id: duplicate point id 'plc1.t1' (first declared at devices[0].points[0])"],
  ['duplicate device ids', (c) => (c.devices[1].id = 'plc1'), "devices[1].id: duplicate device id 'plc1'"],
  ['bool on a register', (c) => (c.devices[0].points[0].type = 'bool'), 'devices[0].points[0].type: type bool needs table coil or discrete, not holding'],
  ['output without safe state', (c) => delete c.devices[1].points[1].safeState, "devices[1].points[1]: an output needs 'safeState'"],
  ['writable input', (c) => (c.devices[1].points[0].writable = true), 'devices[1].points[0].writable: an input cannot be writable'],
  ['rule on an unknown point', (c) => (c.rules[0].point = 'nope'), "rules[0].point: no point 'nope'"],
  ['action on a read-only point', (c) => (c.rules[0].onTrigger[0].write.point = 'plc1.t1'), "rules[0].onTrigger[0].write.point: point 'plc1.t1' is not writable"],
  ['action value of the wrong type', (c) => (c.rules[0].onTrigger[0].write.value = 'on'), "rules[0].onTrigger[0].write.value: point 'io.out' takes true or false"],
  ['rule without actions', (c) => (c.rules[0].onTrigger = []), 'rules[0].onTrigger: must have at least 1 item(s)'],
  ['route grammar: missing value', (c) => (c.routes[0].route = 'FROM /readings/* WHERE value > INTO $upstream'), "routes[0].route: at column 32: expected a value after '>'"],
  ['route grammar: missing INTO', (c) => (c.routes[0].route = 'FROM /readings/*'), 'routes[0].route: at column 17: expected WHERE <condition> or INTO <sink>, found end of route'],
  ['route grammar: bad sink', (c) => (c.routes[0].route = 'FROM /* INTO $cloud'), 'routes[0].route: at column 14'],
  ['route priority out of range', (c) => (c.routes[0].priority = 10), 'routes[0].priority: must be ≤ 9'],
  ['same serial port twice', (c) => {
    c.devices.push({ id: 'rtu1', kind: 'modbus', connection: { type: 'rtu', port: '/dev/ttyUSB0' }, points: [{ id: 'r.a', table: 'holding', address: 0 }] });
    c.devices.push({ id: 'gps', kind: 'serial', connection: { type: 'serial', path: '/dev/ttyUSB0' }, points: [{ id: 'g.a', match: '^x' }] });
  }, "devices[3].connection.path: serial port '/dev/ttyUSB0' is already used by devices[2].connection.port"],
  ['API without token on a network address', (c) => (c.api = { host: '0.0.0.0', requireToken: false }), 'api.requireToken: must be true when api.host (0.0.0.0) is not a loopback address'],
  ['API origin with a path', (c) => (c.api = { allowedOrigins: ['https://hmi.example/app'] }), 'api.allowedOrigins[0]: "https://hmi.example/app" does not match'],
  ['API host name with a port', (c) => (c.api = { allowedHosts: ['gw.example:8480'] }), 'api.allowedHosts[0]: "gw.example:8480" does not match'],
  ['two interlocks driving one output to different values', (c) => {
    c.rules.push({ id: 'r2', point: 'plc1.t1', when: 'below', threshold: 5, onTrigger: [{ write: { point: 'io.out', value: false } }] });
  }, "rules[1].onTrigger[0].write.value: point 'io.out' is also held by rules[0].onTrigger[0] with true"],
  ['api and broker on one port', (c) => {
    c.api = { port: 9000 };
    c.broker = { port: 9000 };
  }, 'broker.port: port 9000 is also api.port'],
];

describe('configuration validation', () => {
  it('accepts the base config and applies defaults', () => {
    const c = validator.validate(base(), [], '/tmp');
    expect(c.devices[0]?.kind).toBe('modbus');
    const p = c.devices[0]?.points[0] as { unitId: number; byteOrder: string; writable: boolean };
    expect(p).toMatchObject({ unitId: 1, byteOrder: 'ABCD', writable: false });
    expect(c.api).toEqual({
      enabled: true, host: '127.0.0.1', port: 8480, requireToken: true, allowedHosts: [], allowedOrigins: [], maxBodyBytes: 16384, requestTimeoutMs: 10000, maxConnections: 32,
    });
    expect(c.rules[0]?.allowOverride).toBe(false);
    expect(c.upstream).toMatchObject({ type: 'file' });
    expect(c.routes[0]).toMatchObject({ priority: 5, ttlSeconds: 86400 });
  });

  it.each(BAD)('rejects %s with a message naming the path', (_name, mutate, expected) => {
    const doc = base();
    mutate(doc);
    const found = problems(doc);
    expect(found.some((p) => p.startsWith(expected)), `expected "${expected}" in:\n${found.join('\n')}`).toBe(true);
  });

  it('reports every problem at once', () => {
    const doc = base();
    doc.devices[0].points[0].address = 70000;
    doc.devices[0].points[1].colour = 'red';
    expect(problems(doc)).toHaveLength(2);
  });

  it('freezes the result and does not modify the input document', () => {
    const doc = base();
    const before = JSON.stringify(doc);
    const c = validator.validate(doc, [], '/tmp');
    expect(JSON.stringify(doc)).toBe(before);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.devices[0]?.points[0])).toBe(true);
    expect(() => {
      (c.gateway as { id: string }).id = 'x';
    }).toThrow();
  });

  it('round-trips: the validated config validates again to the same value', () => {
    const once = validator.validate(base(), [], '/tmp');
    const twice = validator.validate(JSON.parse(JSON.stringify(once)), [], '/tmp');
    expect(twice).toEqual(once);
  });

  it('resolves a relative data directory against the main file', () => {
    const doc = base();
    doc.gateway.dataDir = 'state';
    expect(validator.validate(doc, [], '/etc/outpost').gateway.dataDir).toBe('/etc/outpost/state');
  });
});

describe('configuration files and drop-ins', () => {
  it('merges config.d drop-ins in name order: by id for lists, key by key for maps, null deletes', async () => {
    const files = memoryFiles({
      '/etc/outpost/config.yaml': stringify(base()),
      '/etc/outpost/config.d/20-later.yaml': stringify({ log: { level: 'debug' }, devices: [{ id: 'plc1', connection: { port: 1502 } }] }),
      '/etc/outpost/config.d/10-first.yaml': stringify({
        log: { level: 'warn', pretty: true },
        devices: [{ id: 'io', points: [{ id: 'io.in', debounceMs: 30 }] }],
        routes: [{ id: 'up', priority: 1 }, { id: 'events', route: 'FROM /events/* INTO $upstream' }],
      }),
      '/etc/outpost/config.d/README.txt': 'not a drop-in',
      '/etc/outpost/config.d/30-remove.yaml': stringify({ rules: null }),
    });
    const { config, files: used } = await loadConfig('/etc/outpost/config.yaml', files);
    expect(used).toEqual([
      '/etc/outpost/config.yaml',
      '/etc/outpost/config.d/10-first.yaml',
      '/etc/outpost/config.d/20-later.yaml',
      '/etc/outpost/config.d/30-remove.yaml',
    ]);
    expect(config.log).toEqual({ level: 'debug', pretty: true });
    expect((config.devices[0]?.connection as { port: number }).port).toBe(1502);
    expect((config.devices[1]?.points[0] as { debounceMs: number }).debounceMs).toBe(30);
    expect(config.routes.map((r) => [r.id, r.priority])).toEqual([['up', 1], ['events', 5]]);
    expect(config.rules).toEqual([]);
  });

  it('names the file and line of a YAML syntax error', async () => {
    const files = memoryFiles({ '/c/config.yaml': 'gateway:\n  id: [unclosed\n' });
    await expect(loadConfig('/c/config.yaml', files)).rejects.toMatchObject({ code: 'OUTPOST_E_CONFIG_PARSE', message: expect.stringMatching(/\n {2}\/c\/config\.yaml:\d+:\d+: not valid YAML or JSON ← /) });
  });

  it('rejects duplicate keys in one file', async () => {
    const files = memoryFiles({ '/c/config.yaml': 'log: {}\nlog: {}\n' });
    await expect(loadConfig('/c/config.yaml', files)).rejects.toMatchObject({ code: 'OUTPOST_E_CONFIG_PARSE' });
  });

  it('names a missing file', async () => {
    await expect(loadConfig('/nowhere/config.yaml', memoryFiles({}))).rejects.toMatchObject({
      code: 'OUTPOST_E_CONFIG_READ',
      message: expect.stringContaining('/nowhere/config.yaml: cannot read the file ← ENOENT: no such file or directory'),
    });
  });

  it('rejects a document that is not a mapping', async () => {
    const files = memoryFiles({ '/c/config.yaml': '- a\n- b\n' });
    await expect(loadConfig('/c/config.yaml', files)).rejects.toMatchObject({ code: 'OUTPOST_E_CONFIG_INVALID' });
  });

  it('loads the demo and every example configuration shipped in the repository', async () => {
    const { readdirSync } = await import('node:fs');
    const root = path.resolve(__dirname, '../../config');
    const all = ['demo.yaml', ...readdirSync(path.join(root, 'examples')).filter((f) => /\.ya?ml$/.test(f)).map((f) => `examples/${f}`)];
    for (const f of all) {
      const { config } = await loadConfig(path.join(root, f));
      expect(config.gateway.id, f).toBeTruthy();
    }
  });
});

describe('mergeConfig', () => {
  it('replaces lists without ids and scalars', () => {
    expect(mergeConfig({ a: [1, 2], b: 1 }, { a: [3], b: 2 })).toEqual({ a: [3], b: 2 });
  });
  it('does not modify its inputs', () => {
    const a = { l: [{ id: 'x', v: 1 }] };
    mergeConfig(a, { l: [{ id: 'x', v: 2 }] });
    expect(a.l[0]?.v).toBe(1);
  });
});
