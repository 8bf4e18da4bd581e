import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { freePort, waitFor, waitForPort } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';

/**
 * The adversarial suite's target: a real `outpost run` process (the built dist/), on a demo-like
 * configuration with simulated devices, a safety rule, the local broker and API on free loopback ports
 * and a file upstream in a temporary data directory. Every hostile case ends by asking the same
 * questions: is the process alive, do readings still flow, was nothing written, is memory back in bounds.
 *
 * The configuration: plc1 (Modbus sim) with `plc1.distance` sweeping 150…1500 mm and a writable
 * `plc1.speed-setpoint`; io (GPIO sim) with outputs `io.machine-run` and `io.alarm-lamp`; rule
 * `proximity-stop` (distance below 400 mm stops the press). `extra` is merged on top (a YAML/JSON object
 * written as a drop-in), `configText` replaces the whole file.
 */
export interface GatewayOptions {
  readonly extra?: Record<string, unknown>;
  /** Merged into the demo's `broker:` section (users, anonymous, limits, tls…), keeping its host and port. */
  readonly broker?: Record<string, unknown>;
  /** Credentials of the harness's own reading subscriber (anonymous by default). */
  readonly watcher?: { readonly username: string; readonly password: string };
  /** Sweep period of plc1.distance (ms): shorter trips the interlock sooner. */
  readonly distancePeriodMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Merged into the `api:` section (host and port stay the harness's). */
  readonly api?: Record<string, unknown>;
}

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const BIN = path.join(REPO, 'dist', 'services', 'outpost.js');

export function demoConfig(o: { apiPort: number; brokerPort: number; dataDir: string; distancePeriodMs?: number }): Record<string, unknown> {
  return {
    gateway: { id: 'adv-gw', dataDir: o.dataDir },
    log: { level: 'info' },
    api: { host: '127.0.0.1', port: o.apiPort },
    broker: { host: '127.0.0.1', port: o.brokerPort },
    devices: [
      {
        id: 'plc1',
        kind: 'modbus',
        connection: { type: 'sim', seed: 7 },
        pollIntervalMs: 200,
        points: [
          { id: 'plc1.temp1', table: 'holding', address: 0, type: 'float32', units: 'degC', sim: { model: 'drift', start: 21.5, step: 0.2, min: 15, max: 35 } },
          { id: 'plc1.distance', table: 'input', address: 0, type: 'uint16', units: 'mm', sim: { model: 'sine', min: 150, max: 1500, periodMs: o.distancePeriodMs ?? 4000 } },
          { id: 'plc1.speed-setpoint', table: 'holding', address: 6, type: 'int16', writable: true, scale: { factor: 0.1 }, sim: { model: 'constant', value: 120 } },
        ],
      },
      {
        id: 'io',
        kind: 'gpio',
        connection: { type: 'sim' },
        points: [
          { id: 'io.door', pin: 17, direction: 'in', edge: 'both', sim: { model: 'toggle', periodMs: 1000 } },
          { id: 'io.machine-run', pin: 23, direction: 'out', safeState: false, writable: true },
          { id: 'io.alarm-lamp', pin: 24, direction: 'out', safeState: false, writable: true },
        ],
      },
    ],
    rules: [
      {
        id: 'proximity-stop',
        point: 'plc1.distance',
        when: 'below',
        threshold: 400,
        hysteresis: 100,
        failSafe: true,
        releaseOnStart: true,
        onTrigger: [{ write: { point: 'io.machine-run', value: false } }, { write: { point: 'io.alarm-lamp', value: true } }],
        onRelease: [{ write: { point: 'io.machine-run', value: true } }, { write: { point: 'io.alarm-lamp', value: false } }],
      },
    ],
    routes: [{ id: 'telemetry', route: "FROM /readings/* WHERE quality = 'good' INTO $upstream", priority: 5 }],
    upstream: { type: 'file' },
  };
}

export class Gateway {
  readonly readings: Array<{ point: string; value: unknown; at: number }> = [];
  /** Rule events published on `outpost/events/<rule>`, in arrival order. */
  readonly events: Array<{ rule: string; state: string; holds?: string[]; actions?: Array<{ point: string; ok: boolean; error?: string }>; at: number }> = [];
  private client: MqttClient | null = null;

  private constructor(
    readonly dir: string,
    readonly configFile: string,
    readonly apiPort: number,
    readonly brokerPort: number,
    readonly proc: TestProcess,
  ) {}

  static async start(o: GatewayOptions = {}): Promise<Gateway> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'outpost-adv-'));
    const apiPort = await freePort();
    const brokerPort = await freePort();
    const base = demoConfig({ apiPort, brokerPort, dataDir: path.join(dir, 'data'), ...(o.distancePeriodMs !== undefined ? { distancePeriodMs: o.distancePeriodMs } : {}) });
    if (o.broker) base['broker'] = { ...(base['broker'] as Record<string, unknown>), ...o.broker };
    const cfg = { ...base, ...(o.api ? { api: { ...(base['api'] as object), ...o.api } } : {}), ...(o.extra ?? {}) };
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(cfg, null, 1));
    const proc = startProcess(process.execPath, [BIN, 'run', '--config', configFile], { env: { ...process.env, ...(o.env ?? {}) } });
    const gw = new Gateway(dir, configFile, apiPort, brokerPort, proc);
    try {
      await waitForPort(apiPort, '127.0.0.1', 60_000);
      await waitForPort(brokerPort, '127.0.0.1', 60_000);
      await gw.subscribeReadings(o.watcher);
    } catch (e) {
      await gw.stop();
      throw new Error(`gateway did not start: ${proc.output().slice(-2000)}`, { cause: e });
    }
    return gw;
  }

  get api(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }

  get brokerUrl(): string {
    return `mqtt://127.0.0.1:${this.brokerPort}`;
  }

  private async subscribeReadings(login?: { username: string; password: string }): Promise<void> {
    const c = await mqtt.connectAsync(this.brokerUrl, { clientId: `adv-watch-${process.pid}-${Date.now()}`, reconnectPeriod: 500, ...(login ?? {}) });
    this.client = c;
    c.on('message', (topic, payload) => {
      if (topic.startsWith('outpost/events/')) {
        try {
          this.events.push({ ...(JSON.parse(payload.toString()) as { rule: string; state: string }), at: Date.now() });
          if (this.events.length > 1000) this.events.splice(0, 500);
        } catch {
          /* not an event */
        }
        return;
      }
      if (!topic.startsWith('outpost/readings/')) return;
      try {
        const r = JSON.parse(payload.toString()) as { point: string; value: unknown };
        this.readings.push({ point: r.point, value: r.value, at: Date.now() });
        if (this.readings.length > 5000) this.readings.splice(0, 2500);
      } catch {
        /* not a reading */
      }
    });
    await c.subscribeAsync(['outpost/readings/#', 'outpost/events/#']);
  }

  /** The process is still running (no crash, no exit). */
  alive(): boolean {
    return this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  /** Resolves once a reading newer than now arrives (bounded); throws if the gateway stopped producing. */
  async readingsFlow(timeoutMs = 30_000): Promise<void> {
    const since = Date.now();
    await waitFor(() => this.readings.some((r) => r.at > since), timeoutMs, 50);
  }

  /** Resident set size of the gateway process in MiB. */
  rssMiB(): number {
    const status = readFileSync(`/proc/${this.proc.child.pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return kb / 1024;
  }

  /**
   * One request to the API on a fresh connection, closed after the answer (no pooled keep-alive
   * socket the server may close just as it is reused on a loaded machine).
   */
  request(method: string, urlPath: string, o: { headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; text: string; json: any }> {
    return new Promise((resolve, reject) => {
      const headers = { ...(o.body !== undefined ? { 'content-length': String(Buffer.byteLength(o.body)) } : {}), ...(o.headers ?? {}) };
      const req = httpRequest({ host: '127.0.0.1', port: this.apiPort, method, path: urlPath, headers, agent: false, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON (/metrics) */
          }
          resolve({ status: res.statusCode ?? 0, text, json });
        });
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error('API request timed out')));
      req.end(o.body);
    });
  }

  /** Current value of a point through the API (null when unknown). */
  async value(point: string): Promise<unknown> {
    const r = await this.request('GET', `/api/points/${encodeURIComponent(point)}`);
    if (r.status !== 200) return null;
    return (r.json as { value: unknown }).value;
  }

  /** The bearer token the gateway created in its data directory (needed for API writes). */
  token(): string {
    return readFileSync(path.join(this.dir, 'data', 'api-token'), 'utf8').trim();
  }

  /** Writes through the API as `outpost write` does (token, JSON); returns the status and body. */
  async write(point: string, value: unknown): Promise<{ status: number; body: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<string, unknown> }> {
    const r = await this.request('POST', `/api/points/${encodeURIComponent(point)}/write`, {
      headers: { authorization: `Bearer ${this.token()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ value }),
    });
    return { status: r.status, body: r.json };
  }

  /** The gateway's Prometheus metrics (/metrics) as `name{labels}` → value. */
  async metrics(): Promise<Map<string, number>> {
    const { text } = await this.request('GET', '/metrics');
    const out = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (m) out.set(m[1] as string, Number(m[2]));
    }
    return out;
  }

  /**
   * One metric (labels as written in /metrics, e.g. `{device="io",kind="gpio"}`); without labels the
   * unlabelled sample, else the first sample of that name; NaN when absent.
   */
  async metric(name: string, labels = ''): Promise<number> {
    const all = await this.metrics();
    const exact = all.get(`${name}${labels}`);
    if (exact !== undefined || labels !== '') return exact ?? NaN;
    for (const [k, v] of all) if (k.startsWith(`${name}{`)) return v;
    return NaN;
  }

  /** Writes that reached any driver so far (the drivers' writes_total, summed). */
  async driverWrites(): Promise<number> {
    let n = 0;
    for (const [k, v] of await this.metrics()) if (k.startsWith('outpost_driver_writes_total')) n += v;
    return n;
  }

  /** The values of the demo's writable outputs, to check that nothing hostile was written. */
  async outputs(): Promise<Record<string, unknown>> {
    const points = ['io.machine-run', 'io.alarm-lamp', 'plc1.speed-setpoint'];
    return Object.fromEntries(await Promise.all(points.map(async (p) => [p, await this.value(p)] as const)));
  }

  /**
   * Waits (bounded) until RSS is at most `limitMiB` and returns the last sample: after a flood the
   * gateway collects its garbage a few seconds after the traffic stops (src/health/gc-pacer.ts).
   */
  async rssWithin(limitMiB: number, timeoutMs = 30_000): Promise<number> {
    const until = Date.now() + timeoutMs;
    let rss = this.rssMiB();
    while (rss > limitMiB && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 250));
      rss = this.rssMiB();
    }
    return rss;
  }

  async stop(): Promise<void> {
    await this.client?.endAsync().catch(() => undefined);
    this.client = null;
    await this.proc.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
