import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { DurableStore } from '../../src/store/durable-store.js';
import { silentLogger } from '../helpers/logger.js';
import { readingRecord } from '../helpers/uplink.js';

const OUTPOST = path.resolve('dist/services/outpost.js');
const dir = mkdtempSync(path.join(tmpdir(), 'outpost-uplink-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cli = (...args: string[]) => spawnSync(process.execPath, [OUTPOST, ...args], { encoding: 'utf8' });

describe('outpost uplink (CLI)', () => {
  it('shows what waits in the store and prints the quarantine', async () => {
    const data = path.join(dir, 'data');
    const cfg = path.join(dir, 'outpost.yaml');
    writeFileSync(cfg, `gateway: { id: gw, dataDir: ${data} }\nroutes:\n  - { id: telemetry, route: "FROM /readings/* INTO $upstream", priority: 3 }\nupstream: { type: mqtt, url: "mqtt://127.0.0.1:1" }\n`);
    const store = new DurableStore(
      { dir: path.join(data, 'store'), maxBytes: 1 << 24, segmentBytes: 1 << 16, minFreeBytes: 0, fsyncIntervalMs: 5, onFull: 'drop-oldest', maxRecordBytes: 1 << 16, routes: [], quarantineMaxBytes: 1 << 20 },
      { clock: systemClock, logger: silentLogger() },
    );
    await store.start();
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.enqueue(readingRecord(i, 'telemetry', 3))));
    const [first] = (await store.take(1, 1 << 20)) ?? [];
    await store.toQuarantine(first as NonNullable<typeof first>, 'refused', { reasonCode: 135 });
    await store.stop();

    const s = cli('uplink', 'store', '-c', cfg, '--json');
    expect(s.status).toBe(0);
    const out = JSON.parse(s.stdout) as { queues: Array<{ route: string; priority: number; segments: number; bytes: number }> };
    expect(out.queues).toEqual([{ route: 'telemetry', priority: 3, segments: 1, bytes: expect.any(Number) }]);
    expect(out.queues[0]?.bytes).toBeGreaterThan(20 * 100);

    const q = cli('uplink', 'quarantine', '-c', cfg);
    expect(q.status).toBe(0);
    const entries = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ reason: 'refused', reasonCode: 135, route: 'telemetry', priority: 3, message: { kind: 'reading' } });

    const notMqtt = path.join(dir, 'file.yaml');
    writeFileSync(notMqtt, `gateway: { id: gw, dataDir: ${data} }\n`);
    const bad = cli('uplink', 'quarantine', '-c', notMqtt);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('OUTPOST_E_CLI_USAGE');
  }, 120_000);
});
