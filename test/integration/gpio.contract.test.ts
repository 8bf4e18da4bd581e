import { systemClock } from '../../hal/clock.js';
import { SimGpioPort } from '../../hal/gpio/sim-port.js';
import { describeGpioPortContract } from '../contract/gpio-port-contract.js';
import { RemoteGpioPort } from '../helpers/gpio-remote.js';

describeGpioPortContract('simulator', async () => {
  const port = new SimGpioPort(systemClock);
  return { port, setInput: async (pin, level) => port.setInput(pin, level), teardown: async () => undefined };
});

for (const layout of ['base0', 'base512'] as const) {
  describeGpioPortContract(`onoff on sysfs (private mount namespace, ${layout} chip layout)`, async () => {
    const port = await RemoteGpioPort.start(layout);
    return { port, setInput: (pin, level) => port.poke(pin, level), teardown: () => port.stop() };
  });
}
