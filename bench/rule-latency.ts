import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../hal/clock.js';
import { GpioDriver } from '../hal/gpio/driver.js';
import type { GpioDeviceConfig } from '../hal/gpio/schema.js';
import { createSimulatedGpio } from '../hal/gpio/simulator.js';
import { GOOD, type DeviceDriver, type SampleSink } from '../hal/types.js';
import { ConfigValidator } from '../src/config/load.js';
import type { DeviceConfig } from '../src/config/schema.js';
import { ProcSystemProbe } from '../src/health/proc-system-probe.js';
import { Runtime, type DriverFactory } from '../src/runtime/runtime.js';
import { mib, summarize } from './stats.js';

/**
 * Rule action latency: a reading of a proximity sensor enters the pipeline → the threshold rule
 * fires → the runtime writes the GPIO output → the output line changes. Measured as p50/p99 over
 * ITERATIONS transitions, against a baseline measured in the same run: the same sample handed
 * straight to the same GPIO driver's write (no pipeline, no rule, no routing).
 */
const ITERATIONS = Number(process.env['BENCH_ITERATIONS'] ?? 2000);

/** A device whose samples the benchmark injects itself. */
class InjectedSensor implements DeviceDriver {
  sink: SampleSink | null = null;
  constructor(readonly deviceId: string) {}
  async start(sink: SampleSink) {
    this.sink = sink;
  }
  async write(): Promise<void> {}
  async stop() {}
  counters() {
    return {};
  }
  connected() {
    return true;
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'outpost-bench-'));
  const config = new ConfigValidator().validate(
    {
      gateway: { id: 'bench', dataDir: dir },
      api: { port: 0 },
      broker: { port: 0 },
      devices: [
        { id: 'sensor', kind: 'serial', connection: { type: 'sim' }, points: [{ id: 'distance', match: '^x' }] },
        { id: 'io', kind: 'gpio', connection: { type: 'sim' }, pollIntervalMs: 60_000, points: [{ id: 'run', pin: 23, direction: 'out', safeState: false, writable: true }] },
      ],
      rules: [{ id: 'stop', point: 'distance', when: 'below', threshold: 400, hysteresis: 100, onTrigger: [{ write: { point: 'run', value: false } }], onRelease: [{ write: { point: 'run', value: true } }] }],
      routes: [{ id: 'events', route: 'FROM /events/* INTO $upstream', priority: 0 }],
    },
    [],
    dir,
  );
  const sensor = new InjectedSensor('sensor');
  let onOutput: (level: boolean) => void = () => undefined;
  let gpio: GpioDriver | null = null;
  const factory: DriverFactory = {
    async create(device: DeviceConfig, deps) {
      if (device.id === 'sensor') return sensor;
      const port = createSimulatedGpio(device as GpioDeviceConfig, deps.clock);
      port.onOutput((_pin, level) => onOutput(level));
      gpio = new GpioDriver(device as GpioDeviceConfig, port, deps);
      return gpio;
    },
  };
  const runtime = new Runtime(config, { clock: systemClock, logger: pino({ level: 'silent' }), drivers: factory, systemProbe: new ProcSystemProbe(['/']), version: 'bench' });
  await runtime.start();

  const measure = async (send: (near: boolean) => void): Promise<number[]> => {
    const out: number[] = [];
    let near = true;
    for (let i = 0; i < ITERATIONS; i++) {
      const t0 = performance.now();
      const done = new Promise<number>((resolve) => (onOutput = () => resolve(performance.now() - t0)));
      send(near);
      out.push(await Promise.race([done, new Promise<number>((_, reject) => setTimeout(() => reject(new Error('no output change within 5 s')), 5000))]));
      near = !near;
    }
    return out;
  };

  // Warm-up, then the pipeline path, then the baseline.
  const viaPipeline = (near: boolean) => sensor.sink?.onSamples([{ pointId: 'distance', value: near ? 150 : 900, quality: GOOD, sourceTime: Date.now() }]);
  await measure(viaPipeline);
  const pipeline = summarize(await measure(viaPipeline));
  const direct = summarize(await measure((near) => void (gpio as GpioDriver).write('run', !near)));
  const rss = process.memoryUsage().rss;
  await runtime.stop();
  await rm(dir, { recursive: true, force: true });

  const f = (x: number) => `${(x * 1000).toFixed(0)} µs`;
  console.log(`rule action latency, ${ITERATIONS} transitions (reading in → GPIO output set)`);
  console.log(`  outpost pipeline  p50 ${f(pipeline.p50)}  p99 ${f(pipeline.p99)}  max ${f(pipeline.max)}`);
  console.log(`  baseline (direct) p50 ${f(direct.p50)}  p99 ${f(direct.p99)}  max ${f(direct.max)}`);
  console.log(`  ratio pipeline/baseline: p50 ${(pipeline.p50 / direct.p50).toFixed(2)}×  p99 ${(pipeline.p99 / direct.p99).toFixed(2)}×`);
  console.log(`  process RSS ${mib(rss)}`);
}

await main();
