import type { Logger } from 'pino';
import { pino } from 'pino';
import { systemClock, type Clock } from '../../hal/clock.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { TPM_CC, TPM_HR, TPM_SU, hex32 } from './constants.js';
import { decodeResponse, encodeCommand, responseCode, type TpmCommand } from './command.js';
import { Tpm2 } from './commands.js';
import { RETRYABLE_RC, TPM_RC, decodeRc, rcOf, tpmRcError } from './rc.js';
import type { TpmTransport } from './transport.js';

export interface TpmClientOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Per-command timeout; RSA key generation on slow parts takes tens of seconds. */
  readonly timeoutMs?: number;
  /** Bound on RETRY/YIELDED/TESTING/NV_RATE re-sends of one command. */
  readonly maxRetries?: number;
}

/**
 * Sends TPM commands over one transport, one at a time.
 * Invariants: commands are serialised in call order; a retryable warning re-sends the same bytes
 * at most `maxRetries` times with growing delays; every other non-zero rc raises an OutpostError
 * whose details carry the rc; transient handles registered with `track` are flushed by `close()`
 * (and `withTransient` flushes on every path). On transports without a resource manager, `open()`
 * flushes transient objects and sessions leaked by earlier crashed clients.
 */
export class TpmClient {
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  private readonly maxRetries: number;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly transients = new Set<number>();
  private closed = false;

  constructor(
    readonly transport: TpmTransport,
    options: TpmClientOptions = {},
  ) {
    this.logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'tpm', tpm: transport.description });
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.maxRetries = options.maxRetries ?? 40;
  }

  /** Startup(CLEAR) (already started is fine), then strict flushing when no resource manager protects us. */
  static async open(transport: TpmTransport, options: TpmClientOptions = {}): Promise<TpmClient> {
    const c = new TpmClient(transport, options);
    try {
      await c.startup();
      if (!transport.resourceManaged) await c.flushStale();
    } catch (e) {
      await transport.close().catch(() => undefined);
      throw e;
    }
    return c;
  }

  /** Runs one command; resolves with its parsed result. */
  run<R>(cmd: TpmCommand<R>): Promise<R> {
    const next = this.queue.then(() => this.execute(cmd));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async execute<R>(cmd: TpmCommand<R>): Promise<R> {
    if (this.closed) throw new OutpostError('OUTPOST_E_TPM_TRANSPORT', 'the TPM client is closed', { details: { command: cmd.name } });
    const bytes = encodeCommand(cmd);
    for (let attempt = 0; ; attempt++) {
      const started = this.clock.monotonic();
      const res = await this.transport.transmit(bytes, this.timeoutMs);
      const rc = responseCode(cmd.name, res);
      const base = decodeRc(rc).base;
      this.logger.trace({ command: cmd.name, rc: hex32(rc), ms: Math.round(this.clock.monotonic() - started) }, 'tpm command');
      if (base === TPM_RC.INITIALIZE && cmd.code !== TPM_CC.Startup && attempt === 0) {
        // The TPM was reset under us (power cycle without firmware Startup): start it and re-send once.
        this.logger.warn({ command: cmd.name }, 'tpm was not started; sending Startup(CLEAR)');
        const su = Tpm2.startup(TPM_SU.CLEAR);
        const r = responseCode(su.name, await this.transport.transmit(encodeCommand(su), this.timeoutMs));
        if (r !== 0 && decodeRc(r).base !== TPM_RC.INITIALIZE) throw tpmRcError(r, su.name);
        continue;
      }
      if (rc !== 0 && RETRYABLE_RC.has(base)) {
        if (attempt >= this.maxRetries) {
          throw new OutpostError('OUTPOST_E_TPM_RETRY_EXHAUSTED', `TPM2_${cmd.name} kept answering ${decodeRc(rc).name}`, {
            details: { command: cmd.name, rc: hex32(rc), attempts: attempt + 1 },
          });
        }
        this.logger.debug({ command: cmd.name, rc: decodeRc(rc).name, attempt }, 'tpm asked to retry');
        await this.clock.sleep(Math.min(5 * 2 ** attempt, base === 0x920 ? 1000 : 250));
        continue;
      }
      return decodeResponse(cmd, res);
    }
  }

  /** TPM2_Startup(CLEAR); TPM_RC_INITIALIZE (already started) counts as success. */
  async startup(): Promise<void> {
    try {
      await this.run(Tpm2.startup(TPM_SU.CLEAR));
    } catch (e) {
      if (rcOf(e) !== TPM_RC.INITIALIZE) throw e;
    }
  }

  /** TPM2_Shutdown: STATE for an orderly stop (keeps DA state and counters consistent across the power-off). */
  async shutdown(su: number = TPM_SU.STATE): Promise<void> {
    await this.run(Tpm2.shutdown(su));
  }

  /** Remembers a transient handle so `close()` flushes it if the caller does not. */
  track(handle: number): number {
    this.transients.add(handle);
    return handle;
  }

  /** Stops tracking a handle the TPM already flushed (a policy session used without continueSession). */
  forget(handle: number): void {
    this.transients.delete(handle);
  }

  async flush(handle: number): Promise<void> {
    this.transients.delete(handle);
    await this.run(Tpm2.flushContext(handle));
  }

  /** Runs `fn` with a transient handle and flushes it afterwards, whatever happens. */
  async withTransient<T>(create: Promise<number> | number, fn: (handle: number) => Promise<T>): Promise<T> {
    const handle = this.track(await create);
    try {
      return await fn(handle);
    } finally {
      await this.flush(handle).catch((e: unknown) => this.logger.warn({ handle: hex32(handle), err: String(e) }, 'flush failed'));
    }
  }

  /** Handles currently in a range (TPM_HR.TRANSIENT, PERSISTENT, NV_INDEX, sessions…). */
  async handles(range: number): Promise<number[]> {
    const out: number[] = [];
    let first = range;
    for (let i = 0; i < 64; i++) {
      const { more, handles } = await this.run(Tpm2.getCapabilityHandles(first, 64));
      for (const h of handles) if (h >>> 24 === range >>> 24) out.push(h);
      const last = handles[handles.length - 1];
      if (!more || last === undefined || last >>> 24 !== range >>> 24) break;
      first = last + 1;
    }
    return out;
  }

  /** Flushes transient objects and sessions left by earlier clients (no resource manager). */
  async flushStale(): Promise<number> {
    let n = 0;
    for (const range of [TPM_HR.TRANSIENT, TPM_HR.HMAC_SESSION, TPM_HR.POLICY_SESSION]) {
      for (const h of await this.handles(range)) {
        await this.run(Tpm2.flushContext(h)).then(
          () => n++,
          () => undefined,
        );
      }
    }
    if (n > 0) this.logger.info({ flushed: n }, 'flushed stale transient handles');
    return n;
  }

  /** Flushes what we still track, optionally sends Shutdown(STATE), and closes the transport. */
  async close(options: { shutdown?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    try {
      for (const h of [...this.transients]) await this.flush(h).catch(() => undefined);
      if (options.shutdown) await this.shutdown(TPM_SU.STATE);
    } finally {
      this.closed = true;
      await this.queue.catch(() => undefined);
      await this.transport.close();
    }
  }
}
