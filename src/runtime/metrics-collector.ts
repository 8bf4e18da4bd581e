import type { DeviceDriver } from '../../hal/types.js';
import type { HealthMonitor } from '../health/health-monitor.js';
import { metricName, renderPrometheus, type MetricSample } from '../health/metrics.js';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { Router } from '../router/router.js';

export interface MetricSources {
  readonly version: string;
  readonly gatewayId: string;
  readonly bootId: string;
  readonly health: HealthMonitor;
  readonly pipeline: Pipeline;
  readonly router: Router;
  readonly drivers: ReadonlyArray<{ kind: string; driver: DeviceDriver }>;
  readonly components: ReadonlyArray<{ name: string; counters: () => Readonly<Record<string, number>> }>;
}

const g = (name: string, help: string, value: number, labels?: Record<string, string>): MetricSample => ({
  name,
  help,
  type: 'gauge',
  values: [{ value, ...(labels ? { labels } : {}) }],
});

/** Collects every metric of a running gateway in Prometheus text format (what GET /metrics serves). */
export function collectMetrics(s: MetricSources): string {
  const out: MetricSample[] = [g('outpost_info', 'Build and run information.', 1, { version: s.version, gateway: s.gatewayId, boot_id: s.bootId })];
  const p = s.health.processSnapshot();
  out.push(
    g('outpost_process_uptime_seconds', 'Seconds since the runtime started.', p.uptimeSeconds),
    g('outpost_process_resident_memory_bytes', 'Resident set size of the runtime process.', p.rssBytes),
    g('outpost_process_heap_used_bytes', 'V8 heap in use.', p.heapUsedBytes),
    {
      name: 'outpost_event_loop_lag_seconds',
      help: 'Event-loop delay over the last sampling interval.',
      type: 'gauge',
      values: [
        { labels: { quantile: '0.5' }, value: p.eventLoopLagP50Ms / 1000 },
        { labels: { quantile: '0.99' }, value: p.eventLoopLagP99Ms / 1000 },
        { labels: { quantile: '1' }, value: p.eventLoopLagMaxMs / 1000 },
      ],
    },
  );
  const sys = s.health.systemSnapshot();
  if (sys) {
    out.push(
      g('outpost_system_cpu_load_ratio', 'Host CPU load, 0 to 1.', sys.cpuLoadPercent / 100),
      g('outpost_system_memory_total_bytes', 'Host memory.', sys.memTotalBytes),
      g('outpost_system_memory_available_bytes', 'Host memory available to new processes.', sys.memAvailableBytes),
      g('outpost_system_uptime_seconds', 'Host uptime.', sys.uptimeSeconds),
    );
    if (sys.temperatureC !== null) out.push(g('outpost_system_temperature_celsius', 'CPU/SoC temperature.', sys.temperatureC));
    for (const d of sys.disks) {
      out.push(g('outpost_system_disk_size_bytes', 'Filesystem size.', d.sizeBytes, { mount: d.mount }));
      out.push(g('outpost_system_disk_used_bytes', 'Filesystem bytes in use.', d.usedBytes, { mount: d.mount }));
    }
  }
  for (const { kind, driver } of s.drivers) {
    const labels = { device: driver.deviceId, kind };
    out.push(g('outpost_driver_connected', 'Whether the device transport is connected (1) or not (0).', driver.connected() ? 1 : 0, labels));
    for (const [k, v] of Object.entries(driver.counters())) {
      const name = metricName(`outpost_driver_${k}`);
      out.push({ name, help: `Driver counter ${k}.`, type: k.endsWith('_total') ? 'counter' : 'gauge', values: [{ labels, value: v }] });
    }
  }
  const st = s.pipeline.stats;
  out.push(
    { name: 'outpost_pipeline_samples_total', help: 'Samples received from drivers.', type: 'counter', values: [{ value: st.samples }] },
    { name: 'outpost_pipeline_readings_total', help: 'Readings reported after processing.', type: 'counter', values: [{ value: st.readings }] },
    { name: 'outpost_rule_transitions_total', help: 'Rule triggers and releases.', type: 'counter', values: [{ value: st.ruleTransitions }] },
    { name: 'outpost_rule_action_errors_total', help: 'Rule actions that failed.', type: 'counter', values: [{ value: st.actionErrors }] },
  );
  for (const r of s.router.counts()) {
    out.push({ name: 'outpost_route_messages_total', help: 'Messages matched by each route.', type: 'counter', values: [{ labels: { route: r.route, sink: r.sink }, value: r.matched }] });
  }
  for (const c of s.components) {
    for (const [k, v] of Object.entries(c.counters())) {
      out.push({ name: metricName(`outpost_${c.name}_${k}`), help: `${c.name} counter ${k}.`, type: k.endsWith('_total') ? 'counter' : 'gauge', values: [{ value: v }] });
    }
  }
  return renderPrometheus(out);
}
