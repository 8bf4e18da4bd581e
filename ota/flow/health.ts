import type { Clock } from '../../hal/clock.js';

export interface HealthVerdict {
  readonly ok: boolean;
  readonly detail: string;
}

/** Decides whether the system is healthy enough to commit (or refill the boot counter). */
export interface HealthCheck {
  /** Polls until healthy or until the timeout; never throws. */
  wait(signal?: AbortSignal): Promise<HealthVerdict>;
}

interface HealthzBody {
  status?: string;
  checks?: Array<{ name?: string; ok?: boolean; critical?: boolean }>;
}

const UPLINK = /^(uplink|upstream)/;

/**
 * The runtime's `GET /healthz`: healthy when every critical check passes. Checks named uplink* or
 * upstream* count only with `requireUplink`, so a trial boot is not failed by a cloud outage unless
 * configured. A body without checks falls back to the HTTP status.
 */
export class HttpHealthCheck implements HealthCheck {
  constructor(
    private readonly o: { url: string; requireUplink: boolean; timeoutMs: number; intervalMs: number; fetch: typeof fetch; clock: Clock },
  ) {}

  async once(signal?: AbortSignal): Promise<HealthVerdict> {
    let res: Response;
    try {
      res = await this.o.fetch(this.o.url, { signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(5000)]) : AbortSignal.timeout(5000) });
    } catch (e) {
      return { ok: false, detail: `${this.o.url} unreachable (${e instanceof Error ? e.name : 'error'})` };
    }
    let body: HealthzBody | null = null;
    try {
      body = (await res.json()) as HealthzBody;
    } catch {
      body = null;
    }
    if (!body || !Array.isArray(body.checks)) return { ok: res.ok, detail: `HTTP ${res.status}` };
    const failing = body.checks.filter((c) => c.critical !== false && c.ok !== true && (this.o.requireUplink || !UPLINK.test(c.name ?? '')));
    const uplink = body.checks.filter((c) => UPLINK.test(c.name ?? ''));
    if (this.o.requireUplink && uplink.length === 0) return { ok: false, detail: 'no uplink check in /healthz but ota.markGood.requireUplink is set' };
    return failing.length === 0 ? { ok: true, detail: 'healthy' } : { ok: false, detail: `failing: ${failing.map((c) => c.name ?? '?').join(', ')}` };
  }

  async wait(signal?: AbortSignal): Promise<HealthVerdict> {
    const deadline = this.o.clock.monotonic() + this.o.timeoutMs;
    let last: HealthVerdict = { ok: false, detail: 'not checked' };
    for (let i = 0; i < 100_000; i++) {
      last = await this.once(signal);
      if (last.ok || signal?.aborted || this.o.clock.monotonic() >= deadline) return last;
      await this.o.clock.sleep(this.o.intervalMs, signal);
    }
    return last;
  }
}
