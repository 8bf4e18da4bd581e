import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../hal/clock.js';
import { GcPacer } from '../../src/health/gc-pacer.js';
import { LogLimiter } from '../../src/log/log-limiter.js';
import { BrokerAccess } from '../../src/broker/access.js';
import { ClientAcl, filterCovers, filterProblem, templateFilter, topicMatches } from '../../src/broker/acl.js';
import { PacketGuard, type GuardViolation } from '../../src/broker/packet-guard.js';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../src/broker/passwords.js';
import { RetainedBudget } from '../../src/broker/retained-budget.js';
import { checkReplyTo, parseWriteCommand } from '../../src/broker/write-command.js';
import { ConfigValidator } from '../../src/config/load.js';
import { waitFor } from '../helpers/net.js';

describe('topic filters', () => {
  it('matches topics level by level, with $ topics kept apart from wildcards', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/#', 'a/b/c')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('#', '$SYS/broker/uptime')).toBe(false);
    expect(topicMatches('+/broker', '$SYS/broker')).toBe(false);
    expect(topicMatches('$SYS/#', '$SYS/broker')).toBe(true);
  });

  it('grants a subscription only inside a pattern', () => {
    expect(filterCovers('outpost/readings/#', 'outpost/readings/plc1/+')).toBe(true);
    expect(filterCovers('outpost/readings/#', 'outpost/#')).toBe(false);
    expect(filterCovers('outpost/readings/#', '#')).toBe(false);
    expect(filterCovers('outpost/+/x', 'outpost/+/x')).toBe(true);
    expect(filterCovers('outpost/a/x', 'outpost/+/x')).toBe(false);
    expect(filterCovers('#', '$SYS/#')).toBe(false);
    expect(filterCovers('a/+', 'a/b/#')).toBe(false);
    expect(filterCovers('a/+/#', 'a/b/#')).toBe(true);
  });

  it('names what is wrong with a filter', () => {
    expect(filterProblem('a/#/b')).toMatch(/'#'/);
    expect(filterProblem('a/b+')).toMatch(/'\+'/);
    expect(filterProblem('')).toMatch(/empty/);
    expect(filterProblem('a/+/#')).toBeNull();
  });

  it('turns a route topic template into a filter', () => {
    expect(templateFilter('site/doors/{point}')).toBe('site/doors/+');
    expect(templateFilter('site/x-{device}-y/z')).toBe('site/+/z');
  });

  it('expands {prefix} and {username} per client; {username} patterns grant nothing to anonymous clients', () => {
    const acl = new ClientAcl('hmi', ['{prefix}/commands/write/+'], ['{prefix}/replies/{username}/#'], 'op');
    expect(acl.mayPublish('op/commands/write/p1')).toBe(true);
    expect(acl.mayPublish('op/commands/write/p1/x')).toBe(false);
    expect(acl.mayRead('op/replies/hmi/1')).toBe(true);
    expect(acl.mayRead('op/replies/other/1')).toBe(false);
    const anon = new ClientAcl(null, [], ['{prefix}/replies/{username}/#'], 'op');
    expect(anon.mayRead('op/replies//1')).toBe(false);
    expect(anon.maySubscribe('op/replies/+/#')).toBe(false);
  });
});

describe('passwords', () => {
  it('hashes with scrypt and verifies only the right password', async () => {
    const hash = await hashPassword('s3cret');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$/);
    const parsed = parsePasswordHash(hash);
    expect(await verifyPassword(Buffer.from('s3cret'), parsed)).toBe(true);
    expect(await verifyPassword(Buffer.from('s3cret '), parsed)).toBe(false);
  });

  it('refuses malformed hashes and costs beyond 64 MiB', () => {
    expect(() => parsePasswordHash('md5$abc')).toThrow(expect.objectContaining({ code: 'OUTPOST_E_BROKER_CONFIG' }));
    const huge = `scrypt$1048576$8$1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
    expect(() => parsePasswordHash(huge)).toThrow(/64 MiB/);
  });
});

describe('retained budget', () => {
  it('keeps count and bytes within the limits; clearing frees the share; replacing charges the difference', () => {
    const b = new RetainedBudget(2, 100);
    expect(b.admit('a', Buffer.alloc(40))).toBe(true);
    expect(b.admit('b', Buffer.alloc(40))).toBe(true);
    expect(b.admit('c', Buffer.alloc(1))).toBe(false);
    expect(b.admit('a', Buffer.alloc(58))).toBe(true);
    expect(b.admit('a', Buffer.alloc(59))).toBe(false);
    expect([b.count, b.bytes]).toEqual([2, 100]);
    expect(b.admit('a', Buffer.alloc(0))).toBe(true);
    expect(b.admit('zz', Buffer.alloc(0))).toBe(true);
    expect([b.count, b.bytes]).toEqual([1, 41]);
    expect(b.admit('c', 'x')).toBe(true);
  });
});

describe('write commands', () => {
  it('accepts {value,id,replyTo} or a bare scalar and names every problem', () => {
    expect(parseWriteCommand(Buffer.from('{"value":1,"id":"a","replyTo":"x/y"}'), 1000)).toEqual({ value: 1, id: 'a', replyTo: 'x/y' });
    expect(parseWriteCommand(Buffer.from('true'), 1000)).toEqual({ value: true });
    const bad = (s: string, re: RegExp) => expect(() => parseWriteCommand(Buffer.from(s), 1000)).toThrow(re);
    bad('{', /not JSON/);
    bad('[1]', /JSON object/);
    bad('{"value":{"a":1}}', /"value"/);
    bad('{"value":1,"extra":2}', /unknown fields/);
    bad('{"value":1,"id":7}', /"id"/);
    bad(`{"value":1,"id":"${'x'.repeat(129)}"}`, /"id"/);
    bad('{"value":1,"replyTo":"a/#"}', /wildcards/);
    expect(() => parseWriteCommand(Buffer.alloc(2000, 0x20), 1000)).toThrow(/larger than 1000 bytes/);
  });

  it('takes a replyTo only inside the sender\'s <prefix>/replies/<username>/ and readable by the sender', () => {
    const acl = new ClientAcl('hmi', [], ['op/#'], 'op');
    expect(() => checkReplyTo('op/replies/hmi/1', 'op', acl)).not.toThrow();
    for (const t of ['op/readings/plc1/p', 'op/commands/write/p', 'op/status', 'app/replies', 'op/replies/', 'op/replies/hmi/', 'op/replies/hmi//x', 'op/replies/other/1']) {
      expect(() => checkReplyTo(t, 'op', acl), t).toThrow(expect.objectContaining({ code: 'OUTPOST_E_BROKER_REPLY_TO' }));
    }
    const narrow = new ClientAcl('hmi', [], ['op/readings/#'], 'op');
    expect(() => checkReplyTo('op/replies/hmi/1', 'op', narrow)).toThrow(/may not subscribe/);
    const anon = new ClientAcl(null, [], ['op/replies/_anonymous/#'], 'op');
    expect(() => checkReplyTo('op/replies/_anonymous/1', 'op', anon)).not.toThrow();
  });
});

describe('broker access', () => {
  const config = (broker: Record<string, unknown>) => new ConfigValidator().validate({ gateway: { id: 'g', dataDir: '/tmp' }, broker }, [], '/tmp').broker;

  it('logs users in by password, anonymous clients read-only, and refuses the rest with MQTT return codes', async () => {
    const hash = await hashPassword('pw');
    const access = new BrokerAccess(config({ users: [{ username: 'hmi', passwordHash: hash, publish: ['{prefix}/commands/write/+'] }] }), ['site/{point}'], 4);
    const hmi = await access.authenticate({ username: 'hmi', password: Buffer.from('pw') });
    expect(hmi).toMatchObject({ username: 'hmi', via: 'password' });
    expect('acl' in hmi && hmi.acl.mayPublish('outpost/commands/write/x')).toBe(true);
    expect('acl' in hmi && hmi.acl.maySubscribe('outpost/replies/hmi/#')).toBe(true);
    expect(await access.authenticate({ username: 'hmi', password: Buffer.from('pw') })).toMatchObject({ username: 'hmi' });
    expect(await access.authenticate({ username: 'hmi', password: Buffer.from('nope') })).toMatchObject({ refused: 4 });
    expect(await access.authenticate({ username: 'ghost', password: Buffer.from('pw') })).toMatchObject({ refused: 4 });
    expect(await access.authenticate({ username: 'hmi' })).toMatchObject({ refused: 4 });
    const anon = await access.authenticate({});
    expect(anon).toMatchObject({ username: null, via: 'anonymous' });
    if (!('acl' in anon)) throw new Error('anonymous refused');
    expect(anon.acl.maySubscribe('outpost/readings/#')).toBe(true);
    expect(anon.acl.maySubscribe('site/+')).toBe(true);
    expect(anon.acl.maySubscribe('#')).toBe(false);
    expect(anon.acl.mayPublish('anything')).toBe(false);
    expect(access.isGatewayTopic('site/p1')).toBe(true);
    expect(access.isGatewayTopic('outpost')).toBe(true);
    expect(access.isGatewayTopic('site/p1/x')).toBe(false);
    const closed = new BrokerAccess(config({ anonymous: { enabled: false } }), [], 4);
    expect(await closed.authenticate({})).toMatchObject({ refused: 5 });
  });

  it('logs a certificate in as the user its CN names, and only that user', async () => {
    const access = new BrokerAccess(
      config({ users: [{ username: 'cam1', publish: ['cam1/#'] }], tls: { cert: 'c', key: 'k', ca: 'a' } }),
      [],
      4,
    );
    expect(await access.authenticate({ certificateCn: 'cam1' })).toMatchObject({ username: 'cam1', via: 'certificate' });
    expect(await access.authenticate({ certificateCn: 'cam2' })).toMatchObject({ refused: 5 });
    expect(await access.authenticate({ certificateCn: 'cam1', username: 'other' })).toMatchObject({ refused: 4 });
    expect(await access.authenticate({ username: 'cam1', password: Buffer.from('x') })).toMatchObject({ refused: 4 });
  });

  it('refuses logins beyond the verification queue with code 3 instead of queueing scrypt work without bound', async () => {
    const access = new BrokerAccess(config({ users: [{ username: 'u', passwordHash: await hashPassword('pw') }] }), [], 1);
    const results = await Promise.all(Array.from({ length: 6 }, () => access.authenticate({ username: 'u', password: Buffer.from('bad') })));
    // One verifying, one waiting, four refused at once.
    expect(results.filter((r) => 'refused' in r && r.refused === 3).length).toBe(4);
    expect(results.filter((r) => 'refused' in r && r.refused === 4).length).toBe(2);
  });

  it('rejects configurations with bad filters, duplicate users and certificate-only users without TLS', () => {
    expect(() => config({ users: [{ username: 'a', passwordHash: 'x' }] })).toThrow(/passwordHash/);
    expect(() => config({ anonymous: { subscribe: ['a/#/b'] } })).toThrow(/broker.anonymous.subscribe\[0\]: topic filter uses '#'/);
    const h = `scrypt$16384$8$1$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(32).toString('base64')}`;
    expect(() => config({ users: [{ username: 'a', passwordHash: h }, { username: 'a', passwordHash: h }] })).toThrow(/already declared/);
    expect(() => config({ users: [{ username: 'a' }] })).toThrow(/client certificate/);
    expect(() => config({ tls: { cert: 'c', key: 'k' } })).toThrow(/broker.tls.ca/);
  });
});

describe('packet guard (a real loopback socket pair)', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = null;
  });

  async function pair(limits: { maxPacketBytes: number; publishRatePerSec: number; byteRatePerSec: number }) {
    const violations: GuardViolation[] = [];
    const accepted = new Promise<Socket>((resolve) => {
      server = createServer(resolve);
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', () => r()));
    const port = (server?.address() as { port: number }).port;
    const client = connect(port, '127.0.0.1');
    const guard = new PacketGuard(await accepted, limits, systemClock, { violation: (k) => violations.push(k) });
    const received: Buffer[] = [];
    guard.on('data', (d: Buffer) => received.push(d));
    return { client, guard, violations, received: () => Buffer.concat(received) };
  }

  /** A PUBLISH (QoS 0) frame of `payload` bytes on topic "t". */
  function publishFrame(payload: number): Buffer {
    const body = Buffer.concat([Buffer.from([0, 1, 0x74]), Buffer.alloc(payload, 0x61)]);
    const len: number[] = [];
    let n = body.length;
    do {
      let b = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) b |= 0x80;
      len.push(b);
    } while (n > 0);
    return Buffer.concat([Buffer.from([0x30, ...len]), body]);
  }

  it('passes packets through unchanged, split anywhere', async () => {
    const p = await pair({ maxPacketBytes: 1000, publishRatePerSec: 1000, byteRatePerSec: 1_000_000 });
    const frames = Buffer.concat([publishFrame(10), publishFrame(200), publishFrame(0)]);
    for (let i = 0; i < frames.length; i += 7) p.client.write(frames.subarray(i, i + 7));
    await waitFor(() => p.received().length === frames.length, 5000);
    expect(p.received().equals(frames)).toBe(true);
    p.client.destroy();
  });

  it('closes the connection on a header announcing an oversize packet, before its body arrives', async () => {
    const p = await pair({ maxPacketBytes: 1000, publishRatePerSec: 1000, byteRatePerSec: 1_000_000 });
    const closed = new Promise((r) => p.client.once('close', r));
    p.client.write(publishFrame(2000).subarray(0, 4));
    await closed;
    expect(p.violations).toEqual(['packet-too-large']);
    expect(p.received().length).toBe(0);
  });

  it('closes the connection on a remaining length longer than four bytes', async () => {
    const p = await pair({ maxPacketBytes: 1000, publishRatePerSec: 1000, byteRatePerSec: 1_000_000 });
    const closed = new Promise((r) => p.client.once('close', r));
    p.client.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await closed;
    expect(p.violations).toEqual(['malformed-length']);
  });

  it('holds PUBLISH packets beyond the rate and delivers them later, in order', async () => {
    const p = await pair({ maxPacketBytes: 1000, publishRatePerSec: 5, byteRatePerSec: 1_000_000 });
    const frames = Buffer.concat(Array.from({ length: 8 }, (_, i) => publishFrame(i)));
    p.client.write(frames);
    await waitFor(() => p.guard.throttled, 5000);
    expect(p.received().length).toBeLessThan(frames.length);
    await waitFor(() => p.received().length === frames.length, 10_000);
    expect(p.received().equals(frames)).toBe(true);
    p.client.destroy();
  });
});

/** A clock whose time and timers move only when the test says so. */
function manualClock(): Clock & { advance(ms: number): void } {
  let t = 0;
  let next = 1;
  const timers = new Map<number, { at: number; fn: () => void }>();
  const clock = {
    now: () => t,
    monotonic: () => t,
    sleep: async () => undefined,
    setTimeout: (fn: () => void, ms: number) => {
      timers.set(next, { at: t + ms, fn });
      return next++;
    },
    clearTimeout: (h: unknown) => void timers.delete(h as number),
    setInterval: () => 0,
    clearInterval: () => undefined,
    advance(ms: number) {
      const until = t + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        t = due[1].at;
        due[1].fn();
      }
      t = until;
    },
  };
  return clock;
}

describe('gc pacer', () => {
  it('runs a minor collection per minorEveryBytes and one major collection once the traffic has been quiet for settleMs', () => {
    const clock = manualClock();
    const calls: string[] = [];
    const pacer = new GcPacer((o) => calls.push(o?.type ?? 'full'), clock, { minorEveryBytes: 1000, settleMs: 2000 });
    pacer.account(600);
    clock.advance(0);
    expect(calls).toEqual([]);
    pacer.account(600);
    pacer.account(600);
    clock.advance(0);
    expect(calls).toEqual(['minor']);
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      pacer.account(10);
    }
    expect(calls).toEqual(['minor']);
    clock.advance(2000);
    expect(calls).toEqual(['minor', 'major']);
    clock.advance(10_000);
    expect(calls).toEqual(['minor', 'major']);
    pacer.stop();
  });

  it('does nothing without a gc function', () => {
    const clock = manualClock();
    const pacer = new GcPacer(null, clock, { minorEveryBytes: 1, settleMs: 1 });
    pacer.account(1e9);
    clock.advance(10);
  });
});

describe('log limiter', () => {
  it('lets one line per key through every period, with the count held back', () => {
    const clock = manualClock();
    const l = new LogLimiter(clock, 10_000);
    expect(l.hit('a')).toBe(1);
    expect(l.hit('a')).toBeNull();
    expect(l.hit('b')).toBe(1);
    expect(l.hit('a')).toBeNull();
    clock.advance(10_000);
    expect(l.hit('a')).toBe(3);
  });
});
