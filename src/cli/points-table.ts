/** Renders /api/points results as a fixed-width table for `outpost points`; a HELD BY column (interlock rules) when any point is held. */
export function renderPointsTable(points: ReadonlyArray<Record<string, unknown>>, now: number): string {
  const rows = points.map((p) => {
    const v = p['value'];
    const value = v === null || v === undefined ? '—' : typeof v === 'number' ? formatNumber(v) : String(v);
    const quality = p['quality'] === 'good' ? 'good' : `${String(p['quality'])}(${String(p['reason'] ?? '')})`;
    const t = Number(p['sourceTime']);
    const age = t > 0 ? `${Math.max(0, (now - t) / 1000).toFixed(1)}s` : '—';
    const heldBy = Array.isArray(p['heldBy']) ? (p['heldBy'] as Array<{ rule?: unknown; allowOverride?: unknown }>).map((h) => `${String(h.rule)}${h.allowOverride === true ? ' (override allowed)' : ''}`).join(', ') : '';
    return [String(p['point']), String(p['device']), `${value}${p['units'] ? ` ${String(p['units'])}` : ''}`, quality, age, String(p['seq']), heldBy];
  });
  const held = rows.some((r) => r[6] !== '');
  const header = ['POINT', 'DEVICE', 'VALUE', 'QUALITY', 'AGE', 'SEQ', ...(held ? ['HELD BY'] : [])];
  if (!held) for (const r of rows) r.pop();
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: readonly string[]) => r.map((c, i) => c.padEnd(widths[i] as number)).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 100 ? 2 : 4).replace(/0+$/, '').replace(/\.$/, '');
}
