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

describe.each(['outpost-ota-agent.service', 'outpost-ota-mark-good.service', 'outpost-ota-resume.service'])('%s sandbox (docs/security-units.md)', (unit) => {
  const d = directives(readFileSync(join(SERVICES, unit), 'utf8'));
  const words = (key: string) => (d.get(`Service.${key}`) ?? []).flatMap((v) => v.split(/\s+/));

  it('keeps root with CAP_DAC_OVERRIDE only, no new privileges', () => {
    expect(d.get('Service.User')).toBeUndefined();
    expect(d.get('Service.CapabilityBoundingSet')).toEqual(['CAP_DAC_OVERRIDE']);
    expect(d.get('Service.AmbientCapabilities')).toEqual(['']);
    expect(d.get('Service.NoNewPrivileges')).toEqual(['yes']);
  });

  it('writes only the data partition, the boot environments, the update locks and the reboot parameter', () => {
    expect(d.get('Service.ProtectSystem')).toEqual(['strict']);
    expect(words('ReadWritePaths').sort()).toEqual(['-/boot', '-/boot/efi', '-/boot/firmware', '-/run/outpost', '/run/systemd', '/var/lib/outpost'].sort());
    expect(d.get('Service.ProtectHome')).toEqual(['yes']);
    expect(d.get('Service.PrivateTmp')).toEqual(['yes']);
  });

  it('reaches disks (SCSI/SATA/USB, SD/eMMC, virtio, NVMe) and the TPM, nothing else', () => {
    expect(d.get('Service.DevicePolicy')).toEqual(['closed']);
    expect(d.get('Service.PrivateDevices')).toBeUndefined();
    expect(d.get('Service.DeviceAllow')).toEqual(['block-sd rw', 'block-mmc rw', 'block-virtblk rw', 'block-blkext rw', '/dev/tpmrm0 rw', '/dev/tpm0 rw']);
  });

  it('filters system calls and namespaces, but leaves W+X memory to V8', () => {
    expect(d.get('Service.SystemCallFilter')).toEqual(['@system-service']);
    expect(d.get('Service.SystemCallArchitectures')).toEqual(['native']);
    expect(d.get('Service.RestrictNamespaces')).toEqual(['yes']);
    expect(d.get('Service.MemoryDenyWriteExecute')).toBeUndefined();
    // ProcSubset=pid would hide /proc/cmdline and /proc/sys/kernel/random/boot_id, which the updater reads.
    expect(d.get('Service.ProcSubset')).toBeUndefined();
  });

  it('has the network it needs: downloads for the agent and resume, loopback only for mark-good', () => {
    expect(d.get('Service.RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6']);
    if (unit.includes('mark-good')) {
      expect(d.get('Service.IPAddressDeny')).toEqual(['any']);
      expect(d.get('Service.IPAddressAllow')).toEqual(['localhost']);
    } else {
      expect(d.get('Service.IPAddressDeny')).toBeUndefined();
    }
  });
});
