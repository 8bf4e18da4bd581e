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

describe('services/outpost-ota-agent.socket and .service', () => {
  const socket = directives(readFileSync(join(SERVICES, 'outpost-ota-agent.socket'), 'utf8'));
  const service = directives(readFileSync(join(SERVICES, 'outpost-ota-agent.service'), 'utf8'));

  it('pass systemd-analyze verify', () => {
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', '--recursive-errors=no', join(SERVICES, 'outpost-ota-agent.socket'), join(SERVICES, 'outpost-ota-agent.service')], {
      encoding: 'utf8',
      env: { ...process.env, SYSTEMD_COLORS: '0' },
    });
    // The group `outpost` exists on the image, not necessarily here.
    expect(r.stderr.split('\n').filter((l) => l !== '' && !/group.*outpost|outpost.*group/i.test(l))).toEqual([]);
  });

  it('only root and the runtime (group outpost) reach the socket at the path the config defaults to', () => {
    expect(socket.get('Socket.ListenStream')).toEqual(['/run/outpost-ota.sock']);
    expect(socket.get('Socket.SocketGroup')).toEqual(['outpost']);
    expect(socket.get('Socket.SocketMode')).toEqual(['0660']);
    expect(socket.get('Install.WantedBy')).toEqual(['sockets.target']);
  });

  it('the agent runs as root, started by its socket only, and never chowns the state directory', () => {
    expect(service.get('Service.User')).toBeUndefined();
    expect(service.get('Service.ExecStart')?.[0]).toContain('outpost.js ota agent --config /etc/outpost/config.yaml');
    expect(service.get('Install.WantedBy')).toBeUndefined();
    expect(service.get('Unit.Requires')).toEqual(['outpost-ota-agent.socket']);
    // Installs yield to the runtime (its watchdog restarts it when its event loop lags).
    expect(Number(service.get('Service.CPUWeight')?.[0])).toBeLessThan(100);
    expect(Number(service.get('Service.IOWeight')?.[0])).toBeLessThan(100);
  });
});

it.each(['outpost-ota-mark-good.service', 'outpost-ota-resume.service', 'outpost-ota-agent.service'])('%s (root) has no StateDirectory= that would chown the runtime data to root', (unit) => {
  expect(directives(readFileSync(join(SERVICES, unit), 'utf8')).get('Service.StateDirectory')).toBeUndefined();
});
