import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpioLine, GpioPort } from '../../hal/gpio/port.js';
import { waitFor } from '../helpers/net.js';

/** The GpioPort contract; every implementation (the simulator, onoff on sysfs) must pass it. */
export interface GpioPortUnderTest {
  readonly port: GpioPort;
  /** Drives an input line from the outside world (a switch, a sensor). */
  setInput(pin: number, level: boolean): Promise<void>;
  teardown(): Promise<void>;
}

export function describeGpioPortContract(name: string, setup: () => Promise<GpioPortUnderTest>): void {
  describe(`GpioPort contract: ${name}`, () => {
    let t: GpioPortUnderTest;
    beforeAll(async () => {
      t = await setup();
    });
    afterAll(async () => {
      await t?.port.close();
      await t?.teardown();
    });

    it('requests an output at its initial level and writes it', async () => {
      const out = await t.port.open(23, { direction: 'out', edge: 'none', activeLow: false, initial: true });
      expect(await out.read()).toBe(true);
      await out.write(false);
      expect(await out.read()).toBe(false);
      await out.close();
    });

    it('reads inputs driven from outside and refuses to write them', async () => {
      const inp = await t.port.open(22, { direction: 'in', edge: 'none', activeLow: false });
      await t.setInput(22, true);
      await waitFor(async () => (await inp.read()) === true, 5000);
      await t.setInput(22, false);
      await waitFor(async () => (await inp.read()) === false, 5000);
      await expect(inp.write(true)).rejects.toMatchObject({ code: 'OUTPOST_E_HAL_READ_ONLY' });
      await inp.close();
    });

    it('reports the edges a line asked for', async () => {
      const both = await t.port.open(17, { direction: 'in', edge: 'both', activeLow: false });
      const rising = await t.port.open(27, { direction: 'in', edge: 'rising', activeLow: false });
      const seenBoth: boolean[] = [];
      const seenRising: boolean[] = [];
      both.watch((v) => seenBoth.push(v));
      rising.watch((v) => seenRising.push(v));
      await new Promise((r) => setTimeout(r, 100));
      for (const level of [true, false, true]) {
        await t.setInput(17, level);
        await t.setInput(27, level);
        await waitFor(() => seenBoth[seenBoth.length - 1] === level, 5000).catch((e: unknown) => {
          throw new Error(`edges seen on 17: ${JSON.stringify(seenBoth)}, on 27: ${JSON.stringify(seenRising)}`, { cause: e });
        });
        // A level is held for a while, as a real switch or sensor does (a polled edge detector needs that).
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(seenBoth).toEqual([true, false, true]);
      await waitFor(() => seenRising.length === 2, 5000);
      expect(seenRising).toEqual([true, true]);
      await both.close();
      await rising.close();
    });

    it('refuses a second request of a line until it is closed', async () => {
      const a: GpioLine = await t.port.open(24, { direction: 'in', edge: 'none', activeLow: false });
      await expect(t.port.open(24, { direction: 'in', edge: 'none', activeLow: false })).rejects.toMatchObject({ code: 'OUTPOST_E_GPIO_BUSY' });
      await a.close();
      const b = await t.port.open(24, { direction: 'in', edge: 'none', activeLow: false });
      await b.close();
    });
  });
}
