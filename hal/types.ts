/**
 * Types shared by every hal/ driver and the runtime core.
 * A driver produces samples (raw values with quality and source time); the runtime turns them into readings.
 */

/** A point's value: numbers (including 64-bit values that fit a double), booleans and strings. */
export type PointValue = number | boolean | string;

export type QualityStatus = 'good' | 'bad' | 'uncertain';

/** Quality of a sample: good, or bad/uncertain with a machine-readable reason such as `timeout`, `exception 2`, `not connected`, `stale`. */
export type Quality = { readonly status: 'good' } | { readonly status: 'bad' | 'uncertain'; readonly reason: string };

export const GOOD: Quality = Object.freeze({ status: 'good' });

export function bad(reason: string): Quality {
  return { status: 'bad', reason };
}

export function uncertain(reason: string): Quality {
  return { status: 'uncertain', reason };
}

/** One value read from a device (before the edge pipeline). `value` is null when nothing could be read. */
export interface Sample {
  readonly pointId: string;
  readonly value: PointValue | null;
  readonly quality: Quality;
  /** Source timestamp, ms since the Unix epoch (device time when the protocol has one, else time of receipt). */
  readonly sourceTime: number;
}

/** Where a driver delivers its samples. Called synchronously; the receiver must not block. */
export interface SampleSink {
  onSamples(samples: readonly Sample[]): void;
}

/** Counters a driver exposes on /metrics, e.g. `reads_total`, `read_errors_total`, `reconnects_total`. Monotonic unless named `*_current`. */
export type DriverCounters = Readonly<Record<string, number>>;

/**
 * A device driver as the runtime sees it. One instance per configured device, for every kind
 * (Modbus, OPC UA, serial, GPIO) and for both real transports and simulators.
 */
export interface DeviceDriver {
  readonly deviceId: string;
  /** Begin acquisition; resolves once the driver runs (it may still be connecting, reporting bad quality meanwhile). */
  start(sink: SampleSink): Promise<void>;
  /** Write one point; resolves when the device confirmed the write. Throws OutpostError (HAL codes) otherwise. */
  write(pointId: string, value: PointValue): Promise<void>;
  /** Stop acquisition, apply declared safe states, release the transport. Idempotent. */
  stop(): Promise<void>;
  counters(): DriverCounters;
  /** True while the transport is connected (a simulator is always connected unless told to fail). */
  connected(): boolean;
}
