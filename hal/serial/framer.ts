import type { SerialFramingConfig } from './schema.js';

/**
 * Cuts a byte stream into frames. Invariants: bytes are consumed in order and each byte belongs to
 * at most one frame; the buffer never grows beyond `maxLength` (plus a partial delimiter); an
 * over-long frame is dropped whole (its tail up to the next delimiter too) and counted as an overflow.
 */
export class Framer {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly regex: RegExp | null;
  /** Dropping the rest of an over-long frame until the next delimiter. */
  private skipping = false;
  overflows = 0;

  constructor(private readonly config: SerialFramingConfig) {
    this.regex = config.type === 'regex' ? new RegExp(config.pattern, 'g') : null;
  }

  push(chunk: Buffer): Buffer[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const frames: Buffer[] = [];
    const c = this.config;
    if (c.type === 'fixed') {
      while (this.buffer.length >= c.length) {
        frames.push(this.buffer.subarray(0, c.length));
        this.buffer = this.buffer.subarray(c.length);
      }
      return frames;
    }
    if (c.type === 'delimiter') {
      const delim = Buffer.from(c.delimiter, 'latin1');
      let idx: number;
      while ((idx = this.buffer.indexOf(delim)) >= 0) {
        if (this.skipping) this.skipping = false;
        else if (idx <= c.maxLength) frames.push(this.buffer.subarray(0, idx));
        else this.overflows++;
        this.buffer = this.buffer.subarray(idx + delim.length);
      }
      // Keep what may be the start of a delimiter split across chunks.
      const keep = delim.length - 1;
      if (this.buffer.length > c.maxLength + keep) {
        if (!this.skipping) this.overflows++;
        this.skipping = true;
        this.buffer = this.buffer.subarray(this.buffer.length - keep);
      }
      return frames;
    }
    const re = this.regex as RegExp;
    const text = this.buffer.toString('latin1');
    re.lastIndex = 0;
    let consumed = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      frames.push(Buffer.from(m[0], 'latin1'));
      consumed = m.index + m[0].length;
    }
    this.buffer = this.buffer.subarray(consumed);
    if (this.buffer.length > c.maxLength) {
      this.overflows++;
      this.buffer = Buffer.alloc(0);
    }
    return frames;
  }
}

/** NMEA checksum: XOR of the characters between `$` (or `!`) and `*`. */
export function nmeaChecksum(body: string): string {
  let x = 0;
  for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i);
  return x.toString(16).toUpperCase().padStart(2, '0');
}

/** Returns the sentence without `*hh` when the checksum is right, or null. */
export function checkNmea(frame: string): string | null {
  const m = /^([$!])([^*]*)\*([0-9A-Fa-f]{2})\s*$/.exec(frame);
  if (!m) return null;
  return nmeaChecksum(m[2] as string) === (m[3] as string).toUpperCase() ? `${m[1]}${m[2]}` : null;
}
