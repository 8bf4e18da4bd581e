import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SerialLink } from '../../hal/serial/port.js';
import { waitFor } from '../helpers/net.js';

/** The SerialLink contract; every implementation (the simulator, serialport on a pty) must pass it. */
export interface SerialLinkUnderTest {
  readonly link: SerialLink;
  /** Makes the device send something (a request for a polled device; nothing for a streaming one). */
  poke(): Promise<void>;
  /** Everything the device has received so far, as text. */
  received(): string;
  /** The device disappears (USB adapter pulled) and comes back. */
  unplug(): Promise<void>;
  replug(): Promise<void>;
  teardown(): Promise<void>;
}

export function describeSerialLinkContract(name: string, setup: () => Promise<SerialLinkUnderTest>): void {
  describe(`SerialLink contract: ${name}`, () => {
    let t: SerialLinkUnderTest;
    let data = Buffer.alloc(0);
    let closes = 0;
    beforeAll(async () => {
      t = await setup();
      t.link.onData((c) => (data = Buffer.concat([data, c])));
      t.link.onClose(() => closes++);
    });
    afterAll(async () => {
      await t?.link.close();
      await t?.teardown();
    });

    it('opens, receives bytes and writes bytes that reach the device', async () => {
      await t.link.open();
      expect(t.link.isOpen()).toBe(true);
      data = Buffer.alloc(0);
      await t.poke();
      await waitFor(() => data.includes('\r\n'), 10_000);
      await t.link.write(Buffer.from('HELLO 1\r\n', 'latin1'));
      await waitFor(() => t.received().includes('HELLO 1'), 10_000);
    });

    it('closes without reporting an unplug, refuses writes while closed, and opens again', async () => {
      await t.link.close();
      expect(t.link.isOpen()).toBe(false);
      await expect(t.link.write(Buffer.from('X\r\n'))).rejects.toMatchObject({ code: 'OUTPOST_E_SERIAL_WRITE' });
      await t.link.open();
      expect(t.link.isOpen()).toBe(true);
      expect(closes).toBe(0);
    });

    it('reports an unplug once through onClose, and works again after the device is back', async () => {
      await t.unplug();
      await waitFor(() => closes === 1, 30_000);
      expect(t.link.isOpen()).toBe(false);
      await t.replug();
      await t.link.open();
      data = Buffer.alloc(0);
      await t.poke();
      await waitFor(() => data.includes('\r\n'), 10_000);
      expect(closes).toBe(1);
    });
  });
}
