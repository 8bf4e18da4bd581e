// Runs Outpost's real GPIO port (onoff over sysfs) inside a private mount namespace whose
// /sys/class is a tmpfs laid out like a Raspberry Pi's sysfs GPIO, and serves it to a test over
// JSON lines on stdin/stdout. Start with: unshare -m node gpio_sysfs_child.mjs <dist-dir> <base0|base512>
// Requests: {id, op: open|read|write|watch|close|closePort|poke|file, ...}; replies {id, ok, value|error};
// edges are pushed as {event: 'edge', line, value}.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import path from 'node:path';
import { pino } from 'pino';

const [distDir, layout] = process.argv.slice(2);
execFileSync('mount', ['-t', 'tmpfs', 'fakegpio', '/sys/class']);
const root = '/sys/class/gpio';
mkdirSync(root, { recursive: true });
writeFileSync(`${root}/export`, '');
writeFileSync(`${root}/unexport`, '');
const chips = layout === 'base512'
  ? [{ name: 'gpiochip512', label: 'pinctrl-bcm2711', base: 512, ngpio: 58 }, { name: 'gpiochip570', label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 }]
  : [{ name: 'gpiochip0', label: 'pinctrl-bcm2835', base: 0, ngpio: 54 }, { name: 'gpiochip100', label: 'raspberrypi-exp-gpio', base: 100, ngpio: 8 }];
for (const c of chips) {
  mkdirSync(`${root}/${c.name}`);
  writeFileSync(`${root}/${c.name}/label`, `${c.label}\n`);
  writeFileSync(`${root}/${c.name}/base`, `${c.base}\n`);
  writeFileSync(`${root}/${c.name}/ngpio`, `${c.ngpio}\n`);
}
// The kernel would create gpioN when N is written to `export`; a tmpfs cannot, so the lines exist up front.
const base = chips[0].base;
for (const pin of [4, 17, 22, 23, 24, 27]) {
  const d = `${root}/gpio${base + pin}`;
  mkdirSync(d);
  writeFileSync(`${d}/value`, '0\n');
  writeFileSync(`${d}/direction`, 'in\n');
  writeFileSync(`${d}/edge`, 'none\n');
  writeFileSync(`${d}/active_low`, '0\n');
}

const { OnoffGpioPort, onoffGpio } = await import(path.join(distDir, 'hal/gpio/onoff-port.js'));
const { systemClock } = await import(path.join(distDir, 'hal/clock.js'));
const Gpio = await onoffGpio();
const logger = pino({ level: 'warn' }, pino.destination(2));
const port = new OnoffGpioPort({ sysfsRoot: root }, { Gpio, clock: systemClock, logger, edgePollMs: 10 });
const lines = new Map();
let nextLine = 1;
const send = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

async function handle(req) {
  switch (req.op) {
    case 'open': {
      const line = await port.open(req.pin, req.options);
      const id = nextLine++;
      lines.set(id, line);
      return id;
    }
    case 'read': return lines.get(req.line).read();
    case 'write': return lines.get(req.line).write(req.value);
    case 'watch': return lines.get(req.line).watch((value) => send({ event: 'edge', line: req.line, value }));
    case 'close': return lines.get(req.line).close();
    case 'closePort': return port.close();
    case 'sysfs': return port.sysfsNumber(req.pin);
    case 'poke': return writeFileSync(`${root}/gpio${port.sysfsNumber(req.pin)}/value`, req.level ? '1\n' : '0\n');
    case 'file': return readFileSync(path.join(root, req.path), 'utf8').trim();
    default: throw new Error(`unknown op ${req.op}`);
  }
}

createInterface({ input: process.stdin }).on('line', (l) => {
  const req = JSON.parse(l);
  handle(req).then(
    (value) => send({ id: req.id, ok: true, value: value ?? null }),
    (e) => send({ id: req.id, ok: false, error: { code: e.code, message: e.message } }),
  );
}).on('close', () => process.exit(0));
send({ event: 'ready', accessible: Gpio.accessible ?? null });
