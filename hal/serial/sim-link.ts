import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import { SimSignal, seededRandom } from '../sim-signal.js';
import { nmeaChecksum } from './framer.js';
import type { SerialLink } from './port.js';

function hhmmss(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}.${p(Math.floor(d.getUTCMilliseconds() / 10))}`;
}

function ddmmyy(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}${p(d.getUTCMonth() + 1)}${p(d.getUTCFullYear() % 100)}`;
}

/**
 * A simulated GPS receiver on a serial line: every interval it sends a GGA and an RMC sentence
 * (CR LF terminated, NMEA checksums), with a slowly wandering position, altitude and speed.
 * Invariants: emits only while open; every `corruptEvery`-th sentence carries a wrong checksum;
 * bytes written to it while open are recorded in `received` (a GPS ignores them); writing while
 * closed fails with OUTPOST_E_SERIAL_WRITE, as a real port does.
 */
export class SimGpsLink implements SerialLink {
  private isOpenNow = false;
  private timer: unknown = null;
  private dataListener: (chunk: Buffer) => void = () => undefined;
  private closeListener: () => void = () => undefined;
  private count = 0;
  readonly received: Buffer[] = [];
  private readonly lat: SimSignal;
  private readonly lon: SimSignal;
  private readonly alt: SimSignal;
  private readonly speed: SimSignal;
  private readonly sats: SimSignal;

  constructor(
    private readonly clock: Clock,
    private readonly options: { intervalMs: number; seed: number; corruptEvery: number },
  ) {
    const r = seededRandom(options.seed);
    const t0 = clock.now();
    this.lat = new SimSignal({ model: 'drift', start: 4807.038, step: 0.002, min: 4806, max: 4808 }, r, t0, options.intervalMs);
    this.lon = new SimSignal({ model: 'drift', start: 1131.0, step: 0.002, min: 1130, max: 1132 }, r, t0, options.intervalMs);
    this.alt = new SimSignal({ model: 'drift', start: 545.4, step: 0.3, min: 520, max: 570 }, r, t0, options.intervalMs);
    this.speed = new SimSignal({ model: 'drift', start: 12, step: 0.5, min: 0, max: 40 }, r, t0, options.intervalMs);
    this.sats = new SimSignal({ model: 'drift', start: 8, step: 0.4, min: 4, max: 12 }, r, t0, options.intervalMs);
  }

  async open(): Promise<void> {
    if (this.isOpenNow) return;
    this.isOpenNow = true;
    this.timer = this.clock.setInterval(() => this.emit(), this.options.intervalMs);
  }

  async close(): Promise<void> {
    this.isOpenNow = false;
    if (this.timer !== null) this.clock.clearInterval(this.timer);
    this.timer = null;
  }

  /** Simulates unplugging the device. */
  unplug(): void {
    void this.close();
    this.closeListener();
  }

  isOpen(): boolean {
    return this.isOpenNow;
  }

  async write(data: Buffer): Promise<void> {
    if (!this.isOpenNow) throw new OutpostError('OUTPOST_E_SERIAL_WRITE', 'serial port is not open', { details: { path: 'sim' } });
    this.received.push(Buffer.from(data));
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: () => void): void {
    this.closeListener = listener;
  }

  private sentence(body: string): string {
    this.count++;
    const bad = this.options.corruptEvery > 0 && this.count % this.options.corruptEvery === 0;
    const sum = nmeaChecksum(body);
    return `$${body}*${bad ? (sum === '00' ? '01' : '00') : sum}\r\n`;
  }

  private emit(): void {
    if (!this.isOpenNow) return;
    const now = this.clock.now();
    const n = (s: SimSignal, digits: number) => (s.valueAt(now) as number).toFixed(digits);
    const lon = n(this.lon, 3).padStart(9, '0');
    const gga = `GPGGA,${hhmmss(now)},${n(this.lat, 3)},N,${lon},E,1,${String(Math.round(this.sats.valueAt(now) as number)).padStart(2, '0')},0.9,${n(this.alt, 1)},M,46.9,M,,`;
    const rmc = `GPRMC,${hhmmss(now)},A,${n(this.lat, 3)},N,${lon},E,${n(this.speed, 1)},084.4,${ddmmyy(now)},003.1,W`;
    // Deliver in two chunks split mid-sentence, as a UART does, so framing is really exercised.
    const bytes = Buffer.from(this.sentence(gga) + this.sentence(rmc), 'latin1');
    const cut = Math.floor(bytes.length / 3);
    this.dataListener(bytes.subarray(0, cut));
    this.dataListener(bytes.subarray(cut));
  }
}
