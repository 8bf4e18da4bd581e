import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../hal/clock.js';
import { ConfigValidator } from '../../src/config/load.js';
import { ClockSync } from '../../src/uplink/clock-sync.js';
import type { MqttUpstreamConfig } from '../../src/uplink/schema.js';
import { FileCredentialSource } from '../../src/uplink/credentials.js';
import { RateLimiter } from '../../src/uplink/rate-limiter.js';
import { silentLogger } from '../helpers/logger.js';
import { waitFor } from '../helpers/net.js';

describe('ClockSync', () => {
  it('reports time-uncertain until the marker appears, then stays synchronised', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'outpost-clock-'));
    try {
      const marker = path.join(dir, 'synchronized');
      const sync = new ClockSync({ clock: systemClock, logger: silentLogger(), marker, pollMs: 20 });
      await sync.start();
      expect(sync.timeUncertain()).toBe(true);
      writeFileSync(marker, '');
      await waitFor(() => !sync.timeUncertain(), 20_000, 20);
      rmSync(marker);
      await new Promise((r) => setTimeout(r, 60));
      expect(sync.timeUncertain()).toBe(false);
      sync.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RateLimiter', () => {
  it('paces bytes to the configured rate and never waits without a rate', () => {
    let t = 0;
    const clock = { ...systemClock, monotonic: () => t } as Clock;
    const r = new RateLimiter(1000, clock);
    expect(r.take(1000)).toBe(0); // the burst
    expect(r.take(500)).toBe(500);
    t += 500;
    expect(r.take(0)).toBe(0);
    expect(new RateLimiter(0, clock).take(1e9)).toBe(0);
  });
});

describe('FileCredentialSource', () => {
  it('names the config field of an unreadable file, and reads the password file at every load', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'outpost-cred-'));
    try {
      const bad = new FileCredentialSource({ tls: { ca: path.join(dir, 'missing.pem') }, auth: {} });
      await expect(bad.load()).rejects.toMatchObject({ code: 'OUTPOST_E_UPLINK_CONFIG', details: { field: 'upstream.tls.ca' } });
      await expect(new FileCredentialSource({ tls: { cert: path.join(dir, 'c.pem') }, auth: {} }).load()).rejects.toMatchObject({ code: 'OUTPOST_E_UPLINK_CONFIG' });
      const pw = path.join(dir, 'pw');
      writeFileSync(pw, 'one\n');
      const src = new FileCredentialSource({ tls: {}, auth: { username: 'u', passwordFile: pw } });
      expect(await src.load()).toEqual({ username: 'u', password: 'one' });
      writeFileSync(pw, 'two');
      expect((await src.load()).password).toBe('two');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('upstream.type: mqtt configuration', () => {
  const validate = (upstream: Record<string, unknown>, routes: unknown[] = [{ id: 'telemetry', route: 'FROM /readings/* INTO $upstream' }]) =>
    new ConfigValidator().validate({ gateway: { id: 'gw', dataDir: '/tmp/x' }, routes, upstream }, ['t.yaml'], '/tmp');

  it('applies defaults to a minimal config', () => {
    const c = validate({ type: 'mqtt', url: 'mqtts://broker.example.com:8883' }).upstream as MqttUpstreamConfig;
    expect(c.profile).toEqual({ type: 'json', topicPrefix: 'outpost' });
    expect(c.store).toMatchObject({ maxBytes: 64 * 1024 * 1024, fsyncIntervalMs: 200, onFull: 'drop-oldest', routes: [] });
    expect(c.batch).toEqual({ maxRecords: 500, maxBytes: 128 * 1024, maxLatencyMs: 100 });
  });

  it('names each bad field', () => {
    const problems = (u: Record<string, unknown>) => {
      try {
        validate(u);
        return '';
      } catch (e) {
        expect((e as { code: string }).code).toBe('OUTPOST_E_CONFIG_INVALID');
        return (e as Error).message;
      }
    };
    expect(problems({ type: 'mqtt', url: 'http://broker' })).toContain('upstream.url');
    expect(problems({ type: 'mqtt', url: 'mqtt://b:1883', profile: { type: 'sparkplug' } })).toMatch(/groupId/);
    expect(problems({ type: 'mqtt', url: 'mqtt://b:1883', store: { onFull: 'drop-newest' } })).toContain('upstream.store.onFull');
    expect(problems({ type: 'mqtt', url: 'mqtt://b:1883', store: { routes: [{ route: 'telemtry', onFull: 'reject-new' }] } })).toContain("upstream.store.routes[0].route: no route 'telemtry' is configured (known: telemetry)");
    expect(problems({ type: 'mqtt', url: 'mqtt://b:1883', store: { fsyncIntervalMs: 5000 } })).toContain('upstream.store.fsyncIntervalMs');
  });
});
