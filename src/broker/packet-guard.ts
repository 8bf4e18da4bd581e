import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Clock } from '../../hal/clock.js';
import { RateLimiter } from '../uplink/rate-limiter.js';

export interface PacketGuardLimits {
  readonly maxPacketBytes: number;
  readonly publishRatePerSec: number;
  readonly byteRatePerSec: number;
}

export type GuardViolation = 'packet-too-large' | 'malformed-length';

/**
 * The stream aedes reads a client from: it relays the socket, reading each MQTT fixed header as its
 * bytes arrive. Invariants: a packet whose header announces more than `maxPacketBytes` (whole packet)
 * is never buffered — the connection is closed as soon as the length is known; no more than
 * `publishRatePerSec` PUBLISH packets and `byteRatePerSec` bytes per second (each with one second of
 * burst) are passed on: beyond, the socket is paused (TCP backpressure slows the client down) and no
 * data is buffered here beyond what the socket already delivered; writes go to the socket with its
 * backpressure; destroying either side destroys both.
 */
export class PacketGuard extends Duplex {
  private headerBytes = 0;
  private length = 0;
  private multiplier = 1;
  private bodyLeft = 0;
  private prepaid = false;
  private held: Buffer | null = null;
  private throttle: unknown = null;
  private consumerFull = false;
  private endPending = false;
  private pendingWrite: ((err?: Error | null) => void) | null = null;
  private readonly messages: RateLimiter;
  private readonly bytes: RateLimiter;

  constructor(
    readonly socket: Socket,
    private readonly limits: PacketGuardLimits,
    private readonly clock: Clock,
    private readonly events: { violation(kind: GuardViolation, details: Record<string, number>): void; bytes?(n: number): void; throttled?(): void },
  ) {
    super({ allowHalfOpen: false });
    this.messages = new RateLimiter(limits.publishRatePerSec, clock);
    this.bytes = new RateLimiter(limits.byteRatePerSec, clock, Math.max(limits.byteRatePerSec, limits.maxPacketBytes));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.endPending = true;
      if (this.held === null) this.push(null);
    });
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
    socket.on('drain', () => {
      const cb = this.pendingWrite;
      this.pendingWrite = null;
      cb?.();
    });
  }

  /** True while the client is being slowed down (a rate limit reached). */
  get throttled(): boolean {
    return this.throttle !== null;
  }

  override _read(): void {
    this.consumerFull = false;
    this.resumeIfFree();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) return cb(new Error('socket closed'));
    if (this.socket.write(chunk)) cb();
    else this.pendingWrite = cb;
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) return cb(new Error('socket closed'));
    this.socket.cork();
    let ok = true;
    for (const c of chunks) ok = this.socket.write(c.chunk);
    this.socket.uncork();
    if (ok) cb();
    else this.pendingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.throttle !== null) this.clock.clearTimeout(this.throttle);
    this.throttle = null;
    this.held = null;
    const pending = this.pendingWrite;
    this.pendingWrite = null;
    pending?.(err ?? new Error('connection closed'));
    this.socket.destroy();
    cb(err);
  }

  private onData(chunk: Buffer): void {
    this.held = this.held ? Buffer.concat([this.held, chunk]) : chunk;
    if (this.throttle === null) this.scan();
  }

  private resumeIfFree(): void {
    if (this.throttle !== null || this.consumerFull || this.destroyed) return;
    if (this.held) this.scan();
    if (this.throttle === null && !this.consumerFull && !this.destroyed) this.socket.resume();
  }

  private pauseFor(ms: number): void {
    this.socket.pause();
    if (this.throttle !== null) this.clock.clearTimeout(this.throttle);
    else this.events.throttled?.();
    this.throttle = this.clock.setTimeout(() => {
      this.throttle = null;
      this.resumeIfFree();
    }, ms);
  }

  /** Walks the held bytes packet by packet, passes on what the limits allow and keeps the rest. */
  private scan(): void {
    const buf = this.held;
    this.held = null;
    if (!buf || this.destroyed) return;
    let i = 0;
    while (i < buf.length) {
      if (this.bodyLeft > 0) {
        const n = Math.min(this.bodyLeft, buf.length - i);
        i += n;
        this.bodyLeft -= n;
        continue;
      }
      const b = buf[i] as number;
      if (this.headerBytes === 0) {
        if (b >> 4 === 3 && !this.prepaid) {
          const wait = this.messages.take(1);
          if (wait > 0) {
            this.prepaid = true;
            this.pass(buf.subarray(0, i));
            this.held = buf.subarray(i);
            if (!this.destroyed) this.pauseFor(wait);
            return;
          }
        }
        this.prepaid = false;
        this.headerBytes = 1;
        this.length = 0;
        this.multiplier = 1;
        i++;
        continue;
      }
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.headerBytes++;
      i++;
      if (b & 0x80) {
        if (this.headerBytes > 4) return this.violate('malformed-length', {});
        continue;
      }
      const total = this.headerBytes + this.length;
      if (total > this.limits.maxPacketBytes) return this.violate('packet-too-large', { bytes: total, limit: this.limits.maxPacketBytes });
      this.bodyLeft = this.length;
      this.headerBytes = 0;
    }
    this.pass(buf);
    if (this.endPending) this.push(null);
  }

  private pass(chunk: Buffer): void {
    if (chunk.length === 0 || this.destroyed) return;
    this.events.bytes?.(chunk.length);
    if (!this.push(chunk)) {
      this.consumerFull = true;
      this.socket.pause();
    }
    const wait = this.bytes.take(chunk.length);
    if (wait > 0 && this.throttle === null) this.pauseFor(wait);
  }

  private violate(kind: GuardViolation, details: Record<string, number>): void {
    this.events.violation(kind, details);
    this.destroy();
  }
}
