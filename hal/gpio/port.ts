/** One requested GPIO line. Values are logical (active-low already applied by the port). */
export interface GpioLine {
  read(): Promise<boolean>;
  write(value: boolean): Promise<void>;
  /** Calls `listener` on each edge selected when the line was opened. One listener. */
  watch(listener: (value: boolean) => void): void;
  close(): Promise<void>;
}

export interface GpioLineOptions {
  readonly direction: 'in' | 'out';
  readonly edge: 'none' | 'rising' | 'falling' | 'both';
  readonly activeLow: boolean;
  /** Outputs: level driven as soon as the line is requested. */
  readonly initial?: boolean;
}

/**
 * A GPIO controller as the driver sees it. The real implementation wraps onoff (sysfs, with the
 * chip base resolved from its label); the simulator keeps levels in memory.
 */
export interface GpioPort {
  open(pin: number, options: GpioLineOptions): Promise<GpioLine>;
  close(): Promise<void>;
}
