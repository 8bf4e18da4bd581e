import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SERVICES = join(import.meta.dirname, '..', '..', 'services');

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const h = /^\[(.+)\]$/.exec(line);
    if (h) {
      section = h[1] ?? '';
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

describe.each([
  ['outpost-ota-mark-good.service', 'ota mark-good'],
  ['outpost-ota-resume.service', 'ota resume'],
])('services/%s', (unit, command) => {
  const text = readFileSync(join(SERVICES, unit), 'utf8');
  const d = directives(text);

  it('passes systemd-analyze verify', () => {
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', '--recursive-errors=no', join(SERVICES, unit)], { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0' } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('runs once per boot, after the runtime it health-checks', () => {
    expect(d.get('Service.Type')).toEqual(['oneshot']);
    expect(d.get('Service.ExecStart')?.[0]).toContain(`outpost.js ${command} --config /etc/outpost/config.yaml`);
    expect(d.get('Install.WantedBy')).toEqual(['multi-user.target']);
    expect(d.get('Unit.After')?.join(' ')).toMatch(unit.includes('mark-good') ? /outpost\.service/ : /outpost-ota-mark-good\.service/);
  });
});
