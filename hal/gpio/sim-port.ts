import { OutpostError } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import { SimSignal } from '../sim-signal.js';
import type { GpioLine, GpioLineOptions, GpioPort } from './port.js';

interface SimPin {
  level: boolean;
  options: GpioLineOptions;
  listener: ((v: boolean) => void) | null;
  /** When the output was last set (monotonic ms), for latency measurements. */
  setAt: number;
}

/**
 * GPIO lines in memory. Inputs follow a simulation model (toggle by default) and fire edge events;
 * outputs hold what was written. Invariants: a pin is requested at most once; writing an input
 * fails; edge events fire only for the edges the line asked for.
 */
export class SimGpioPort implements GpioPort {
  private readonly pins = new Map<number, SimPin>();
  private readonly timers: unknown[] = [];
  /** Listeners told about every output change (tests and benchmarks observe actions through this). */
  private readonly outputListeners: Array<(pin: number, level: boolean) => void> = [];

  constructor(
    private readonly clock: Clock,
    private readonly models: ReadonlyMap<number, SimSignal> = new Map(),
    private readonly tickMs = 50,
  ) {}

  onOutput(listener: (pin: number, level: boolean) => void): void {
    this.outputListeners.push(listener);
  }

  /** Drives an input pin as the outside world would (a sensor, a switch). */
  setInput(pin: number, level: boolean): void {
    const p = this.pins.get(pin);
    if (!p || p.options.direction !== 'in' || p.level === level) return;
    p.level = level;
    const e = p.options.edge;
    if (p.listener && (e === 'both' || (e === 'rising' && level) || (e === 'falling' && !level))) p.listener(level);
  }

  level(pin: number): boolean | undefined {
    return this.pins.get(pin)?.level;
  }

  async open(pin: number, options: GpioLineOptions): Promise<GpioLine> {
    if (this.pins.has(pin)) throw new OutpostError('OUTPOST_E_GPIO_BUSY', 'gpio line is already requested', { details: { pin } });
    const state: SimPin = { level: options.initial ?? false, options, listener: null, setAt: 0 };
    this.pins.set(pin, state);
    const model = this.models.get(pin);
    if (options.direction === 'in' && model) {
      state.level = Boolean(model.valueAt(this.clock.now()));
      this.timers.push(this.clock.setInterval(() => this.setInput(pin, Boolean(model.valueAt(this.clock.now()))), this.tickMs));
    }
    return {
      read: async () => state.level,
      write: async (v: boolean) => {
        if (options.direction !== 'out') throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'gpio input cannot be written', { details: { pin } });
        state.level = v;
        state.setAt = this.clock.monotonic();
        for (const l of this.outputListeners) l(pin, v);
      },
      watch: (listener) => {
        state.listener = listener;
      },
      close: async () => {
        this.pins.delete(pin);
      },
    };
  }

  async close(): Promise<void> {
    for (const t of this.timers.splice(0)) this.clock.clearInterval(t);
    this.pins.clear();
  }
}
