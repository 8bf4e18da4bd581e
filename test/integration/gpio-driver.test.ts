import { describe, expect, it } from 'vitest';
import { systemClock } from '../../hal/clock.js';
import { GpioDriver } from '../../hal/gpio/driver.js';
import { listChips, selectChip } from '../../hal/gpio/onoff-port.js';
import { gpioDevice } from '../helpers/config.js';
import { RemoteGpioPort } from '../helpers/gpio-remote.js';
import { silentLogger } from '../helpers/logger.js';
import { CollectingSink } from '../helpers/sink.js';

describe('GPIO driver on onoff sysfs (private mount namespace, Pi kernel ≥ 6.6 layout: base 512)', () => {
  it('maps BCM pins through the chip base, applies safe states at start and stop, reports edges and writes', async () => {
    const port = await RemoteGpioPort.start('base512');
    const config = gpioDevice({
      id: 'io',
      kind: 'gpio',
      connection: { type: 'sysfs' },
      pollIntervalMs: 60_000,
      points: [
        { id: 'door', pin: 17, direction: 'in', edge: 'both', debounceMs: 30 },
        { id: 'relay', pin: 23, direction: 'out', safeState: false, writable: true },
        { id: 'brake', pin: 24, direction: 'out', safeState: true, writable: true },
      ],
    });
    const driver = new GpioDriver(config, port, { clock: systemClock, logger: silentLogger() });
    const sink = new CollectingSink();
    try {
      expect(await port.call('sysfs', { pin: 17 })).toBe(529);
      await driver.start(sink);
      // Outputs are requested at their safe level: direction low/high sets level and direction at once.
      expect(await port.file('gpio535/direction')).toBe('low');
      expect(await port.file('gpio535/value')).toBe('0');
      expect(await port.file('gpio536/direction')).toBe('high');
      expect(await port.file('gpio536/value')).toBe('1');
      expect(await port.file('gpio529/edge')).toBe('both');
      await sink.waitLatest('door', (s) => s.value === false);
      await port.poke(17, true);
      await sink.waitLatest('door', (s) => s.value === true);
      await driver.write('relay', true);
      expect(await port.file('gpio535/value')).toBe('1');
      await driver.write('brake', 'off');
      expect(await port.file('gpio536/value')).toBe('0');
      await expect(driver.write('door', true)).rejects.toMatchObject({ code: 'OUTPOST_E_HAL_READ_ONLY' });
      await driver.stop();
      // Safe states again at shutdown; outputs stay exported at that level.
      expect(await port.file('gpio535/value')).toBe('0');
      expect(await port.file('gpio536/value')).toBe('1');
      expect(driver.counters()['edges_total']).toBeGreaterThanOrEqual(1);
      expect(port.logs()).toMatch(/detecting edges by polling/);
    } finally {
      await driver.stop();
      await port.stop();
    }
  });
});

describe('gpiochip selection', () => {
  const chips = [
    { name: 'gpiochip512', label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
    { name: 'gpiochip570', label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
  ];
  it('prefers the Pi SoC controller, honours chipLabel, and names the labels when none fits', () => {
    expect(selectChip(chips).base).toBe(512);
    expect(selectChip(chips, 'raspberrypi-exp-gpio').base).toBe(570);
    expect(selectChip([{ name: 'gpiochip0', label: 'pinctrl-bcm2835', base: 0, ngpio: 54 }]).base).toBe(0);
    expect(() => selectChip(chips, 'nope')).toThrow(expect.objectContaining({ code: 'OUTPOST_E_GPIO_CHIP', details: expect.objectContaining({ available: ['pinctrl-bcm2711', 'raspberrypi-exp-gpio'] }) }));
    expect(() => selectChip([{ ...chips[1]! }, { name: 'gpiochip600', label: 'mcp23017', base: 600, ngpio: 16 }])).toThrow(/set connection.chipLabel/);
  });

  it('fails clearly when there is no sysfs GPIO root', () => {
    expect(() => listChips('/nonexistent/gpio')).toThrow(expect.objectContaining({ code: 'OUTPOST_E_GPIO_CHIP' }));
  });
});
