import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** services/outpost-identity-tunnel.service passes systemd-analyze and runs what the docs say. */
describe('services/outpost-identity-tunnel.service', () => {
  const text = readFileSync(join(import.meta.dirname, '..', '..', 'services', 'outpost-identity-tunnel.service'), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'outpost-tunnel-unit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function analyze(args: string[]) {
    const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '' } });
    if (r.error !== undefined) throw r.error;
    return r;
  }

  it('passes systemd-analyze verify; a broken copy does not', () => {
    const verifiable = existsSync('/usr/bin/node') ? text : text.replaceAll('/usr/bin/node ', `${process.execPath} `);
    const ok = join(dir, 'outpost-identity-tunnel.service');
    writeFileSync(ok, verifiable);
    const r = analyze(['verify', '--man=no', '--recursive-errors=no', ok]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const bad = join(dir, 'outpost-identity-tunnel-broken.service');
    writeFileSync(bad, verifiable.replace('Type=simple', 'Type=simple\nRestart=sometimes'));
    expect(analyze(['verify', '--man=no', '--recursive-errors=no', bad]).stderr).toContain('sometimes');
  });

  it('runs the tunnel on loopback with the TPM resource manager only', () => {
    expect(text).toMatch(/^ExecStartPre=.*outpost\.js identity tunnel --print-openssl-config > %t\/outpost-tunnel\/tpm2-openssl\.cnf'$/m);
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/node --openssl-config=%t\/outpost-tunnel\/tpm2-openssl\.cnf \/opt\/outpost\/dist\/services\/identity-tunnel\.js --listen 127\.0\.0\.1:8883 /m);
    expect(text).toMatch(/^Environment=TPM2OPENSSL_TCTI=device:\/dev\/tpmrm0$/m);
    expect(text).toMatch(/^DevicePolicy=closed$/m);
    expect(text.match(/^DeviceAllow=.*$/gm)).toEqual(['DeviceAllow=/dev/tpmrm0 rw']);
    expect(text).toMatch(/^SupplementaryGroups=tss$/m);
    expect(text).toMatch(/^RuntimeDirectory=outpost-tunnel$/m);
  });
});
