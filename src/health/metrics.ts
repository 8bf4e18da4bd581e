/** A Prometheus text-format sample. */
export interface MetricSample {
  readonly name: string;
  readonly help: string;
  readonly type: 'gauge' | 'counter';
  readonly values: ReadonlyArray<{ readonly labels?: Readonly<Record<string, string>>; readonly value: number }>;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Prometheus metric names allow [a-zA-Z0-9_:]; anything else becomes `_`. */
export function metricName(raw: string): string {
  return raw.replace(/[^a-zA-Z0-9_:]/g, '_');
}

/** Renders samples in the Prometheus text exposition format 0.0.4; samples with the same name are grouped. */
export function renderPrometheus(samples: readonly MetricSample[]): string {
  const byName = new Map<string, MetricSample & { values: Array<{ labels?: Readonly<Record<string, string>>; value: number }> }>();
  for (const s of samples) {
    const existing = byName.get(s.name);
    if (existing) existing.values.push(...s.values);
    else byName.set(s.name, { ...s, values: [...s.values] });
  }
  const lines: string[] = [];
  for (const s of byName.values()) {
    lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
    for (const v of s.values) {
      const labels = v.labels && Object.keys(v.labels).length > 0
        ? `{${Object.entries(v.labels).map(([k, x]) => `${k}="${escapeLabel(x)}"`).join(',')}}`
        : '';
      const num = Number.isFinite(v.value) ? String(v.value) : Number.isNaN(v.value) ? 'NaN' : v.value > 0 ? '+Inf' : '-Inf';
      lines.push(`${s.name}${labels} ${num}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
