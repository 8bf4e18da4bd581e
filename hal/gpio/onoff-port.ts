import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { OutpostError, describeCause } from '../../src/errors/outpost-error.js';
import type { Clock } from '../clock.js';
import type { GpioLine, GpioLineOptions, GpioPort } from './port.js';

/** The part of onoff's Gpio this port uses. */
export interface OnoffGpio {
  read(): Promise<number>;
  readSync(): number;
  write(value: number): Promise<void>;
  writeSync(value: number): void;
  watch(cb: (err: Error | null | undefined, value: number) => void): void;
  unwatchAll(): void;
  unexport(): void;
}

export type OnoffGpioConstructor = new (
  gpio: number,
  direction: 'in' | 'out' | 'high' | 'low',
  edge: 'none' | 'rising' | 'falling' | 'both',
  options: { activeLow: boolean },
) => OnoffGpio;

export interface GpioChip {
  readonly name: string;
  readonly label: string;
  readonly base: number;
  readonly ngpio: number;
}

/** Labels of the Raspberry Pi SoC GPIO controllers (BCM numbering), in order of preference. */
export const PI_CHIP_LABELS = ['pinctrl-bcm2711', 'pinctrl-bcm2835', 'pinctrl-rp1', 'pinctrl-bcm2712'];

/** Lists the gpiochips of a sysfs GPIO root (`/sys/class/gpio`): name, label, base, ngpio. */
export function listChips(sysfsRoot: string): GpioChip[] {
  let names: string[];
  try {
    names = readdirSync(sysfsRoot).filter((n) => /^gpiochip\d+$/.test(n));
  } catch (e) {
    throw new OutpostError('OUTPOST_E_GPIO_CHIP', 'no sysfs GPIO root', { cause: e, details: { sysfsRoot } });
  }
  const read = (n: string, f: string) => readFileSync(path.join(sysfsRoot, n, f), 'utf8').trim();
  return names
    .map((name) => ({ name, label: read(name, 'label'), base: Number(read(name, 'base')), ngpio: Number(read(name, 'ngpio')) }))
    .sort((a, b) => a.base - b.base);
}

/**
 * Picks the chip whose base offsets configured pin numbers: the one labelled `chipLabel`, else a
 * Raspberry Pi SoC controller, else the only chip. Kernels ≥ 6.6 on a Pi 4/5 put the SoC chip at
 * base 512, older ones at 0: mapping through the base makes `pin: 17` mean BCM 17 on both.
 */
export function selectChip(chips: readonly GpioChip[], chipLabel?: string): GpioChip {
  const labels = chips.map((c) => c.label);
  if (chipLabel !== undefined) {
    const c = chips.find((x) => x.label === chipLabel);
    if (!c) throw new OutpostError('OUTPOST_E_GPIO_CHIP', `no gpiochip labelled '${chipLabel}'`, { details: { chipLabel, available: labels } });
    return c;
  }
  for (const l of PI_CHIP_LABELS) {
    const c = chips.find((x) => x.label === l);
    if (c) return c;
  }
  if (chips.length === 1) return chips[0] as GpioChip;
  throw new OutpostError('OUTPOST_E_GPIO_CHIP', 'several gpiochips and none is a Raspberry Pi SoC controller: set connection.chipLabel', {
    details: { available: labels },
  });
}

export interface OnoffPortDeps {
  readonly Gpio: OnoffGpioConstructor;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Interval of the software edge detector used when the value file cannot be polled for interrupts. */
  readonly edgePollMs?: number;
}

function gpioError(e: unknown, pin: number, sysfs: number, op: string): OutpostError {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === 'EBUSY') return new OutpostError('OUTPOST_E_GPIO_BUSY', 'gpio line is already requested', { cause: e, details: { pin, sysfs } });
  return new OutpostError('OUTPOST_E_GPIO_IO', `gpio ${op} failed`, { cause: e, details: { pin, sysfs, op } });
}

/**
 * GpioPort over onoff (Linux sysfs GPIO). Pins are line numbers on the selected chip (BCM numbers
 * on a Pi) and map to sysfs numbers through the chip's base, found by its label.
 * Invariants: a pin is requested at most once; outputs are requested at their initial level (no
 * glitch through the opposite level); writing an input fails with OUTPOST_E_HAL_READ_ONLY; when
 * the kernel refuses interrupts on a value file (epoll EPERM/EINVAL) edges are detected by
 * polling the value every `edgePollMs`, with the same edge selection; closing an input unexports
 * it, closing an output leaves it exported at its last (safe) level.
 */
export class OnoffGpioPort implements GpioPort {
  private base: number | null = null;
  private ngpio = 0;
  private readonly open_ = new Map<number, { gpio: OnoffGpio; options: GpioLineOptions; timer: unknown }>();
  private readonly edgePollMs: number;

  constructor(
    private readonly connection: { readonly chipLabel?: string; readonly sysfsRoot: string },
    private readonly deps: OnoffPortDeps,
  ) {
    this.edgePollMs = deps.edgePollMs ?? 20;
  }

  /** The sysfs number of a configured pin. */
  sysfsNumber(pin: number): number {
    if (this.base === null) {
      const chip = selectChip(listChips(this.connection.sysfsRoot), this.connection.chipLabel);
      this.deps.logger.info({ chip: chip.name, label: chip.label, base: chip.base, ngpio: chip.ngpio }, 'gpio chip selected');
      this.base = chip.base;
      this.ngpio = chip.ngpio;
    }
    if (pin >= this.ngpio) throw new OutpostError('OUTPOST_E_GPIO_CHIP', `pin ${pin} is beyond the chip (${this.ngpio} lines)`, { details: { pin } });
    return this.base + pin;
  }

  async open(pin: number, options: GpioLineOptions): Promise<GpioLine> {
    if (this.open_.has(pin)) throw new OutpostError('OUTPOST_E_GPIO_BUSY', 'gpio line is already requested', { details: { pin } });
    const n = this.sysfsNumber(pin);
    let gpio: OnoffGpio;
    try {
      if (options.direction === 'out') {
        const level = options.initial ?? false;
        // 'high'/'low' set the raw level together with the direction; active_low inverts the logical one.
        const raw = options.activeLow ? !level : level;
        gpio = new this.deps.Gpio(n, raw ? 'high' : 'low', 'none', { activeLow: options.activeLow });
        gpio.writeSync(level ? 1 : 0);
      } else {
        gpio = new this.deps.Gpio(n, 'in', options.edge, { activeLow: options.activeLow });
      }
    } catch (e) {
      throw gpioError(e, pin, n, 'request');
    }
    const state = { gpio, options, timer: null as unknown };
    this.open_.set(pin, state);
    return {
      read: async () => {
        try {
          return (await gpio.read()) === 1;
        } catch (e) {
          throw gpioError(e, pin, n, 'read');
        }
      },
      write: async (v: boolean) => {
        if (options.direction !== 'out') throw new OutpostError('OUTPOST_E_HAL_READ_ONLY', 'gpio input cannot be written', { details: { pin } });
        try {
          await gpio.write(v ? 1 : 0);
        } catch (e) {
          throw gpioError(e, pin, n, 'write');
        }
      },
      watch: (listener) => this.watch(pin, n, state, listener),
      close: async () => this.release(pin),
    };
  }

  async close(): Promise<void> {
    for (const pin of [...this.open_.keys()]) this.release(pin);
  }

  private watch(pin: number, n: number, state: { gpio: OnoffGpio; options: GpioLineOptions; timer: unknown }, listener: (v: boolean) => void): void {
    const wanted = (v: boolean) => state.options.edge === 'both' || (state.options.edge === 'rising' ? v : !v);
    try {
      state.gpio.watch((err, value) => {
        if (!err) listener(value === 1);
      });
      return;
    } catch (e) {
      this.deps.logger.warn({ pin, sysfs: n, err: describeCause(e), pollMs: this.edgePollMs }, 'gpio interrupts unavailable; detecting edges by polling');
    }
    // The level at watch time is the reference: any change after this call is an edge.
    let last: boolean | null = null;
    try {
      last = state.gpio.readSync() === 1;
    } catch {
      last = null;
    }
    let reading = false;
    state.timer = this.deps.clock.setInterval(() => {
      if (reading) return;
      reading = true;
      state.gpio
        .read()
        .then((raw) => {
          const v = raw === 1;
          if (last !== null && v !== last && wanted(v)) listener(v);
          last = v;
        })
        .catch(() => undefined)
        .finally(() => (reading = false));
    }, this.edgePollMs);
  }

  private release(pin: number): void {
    const s = this.open_.get(pin);
    if (!s) return;
    this.open_.delete(pin);
    if (s.timer !== null) this.deps.clock.clearInterval(s.timer);
    try {
      s.gpio.unwatchAll();
      if (s.options.direction === 'in') s.gpio.unexport();
    } catch (e) {
      this.deps.logger.warn({ pin, err: describeCause(e) }, 'gpio release failed');
    }
  }
}

/** onoff's Gpio class, imported lazily (it loads the epoll native addon). */
export async function onoffGpio(): Promise<OnoffGpioConstructor> {
  const mod = (await import('onoff')) as unknown as { Gpio: OnoffGpioConstructor; default?: { Gpio: OnoffGpioConstructor } };
  return mod.Gpio ?? (mod.default as { Gpio: OnoffGpioConstructor }).Gpio;
}
