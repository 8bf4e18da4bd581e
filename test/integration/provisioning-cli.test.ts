import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeLocalCa, startSwtpm, type Swtpm } from '../helpers/swtpm.js';

/** `outpost factory …` and `outpost identity show` driven as an operator would, against swtpm. */
const bin = resolve(import.meta.dirname, '../../dist/services/outpost.js');

function outpost(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('outpost factory and identity commands', () => {
  const base = mkdtempSync(join(tmpdir(), 'outpost-fcli-'));
  const ca = join(base, 'ca');
  const units: Swtpm[] = [];

  beforeAll(async () => {
    const localCa = makeLocalCa(join(base, 'vendor'));
    for (let i = 0; i < 3; i++) units.push(await startSwtpm({ localCa }));
  });

  afterAll(async () => {
    for (const u of units) await u.stop();
  });

  it('creates the factory CA once and refuses to overwrite it', () => {
    const r = outpost('factory', 'ca', 'init', '--ca', ca, '--org', 'Acme Gateways');
    expect(r.code).toBe(0);
    expect(r.out).toContain('root CA      O=Acme Gateways, CN=Acme Gateways Device Root CA');
    expect(r.out).toMatch(/move OFFLINE .*root-ca\.key\.pem/);
    const again = outpost('factory', 'ca', 'init', '--ca', ca, '--org', 'Acme Gateways');
    expect(again.code).toBe(2);
    expect(again.err).toContain('OUTPOST_E_FACTORY_CA');
  });

  it('provisions a unit, is idempotent, and identity show reports the key in the TPM', () => {
    const u = units[0]!;
    const data = join(base, 'unit0');
    const args = ['factory', 'provision', '--ca', ca, '--tpm', u.spec, '--serial', 'GW-100', '--ek-roots', u.ekRoots, '--data-dir', data];
    const r = outpost(...args);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^provisioned GW-100 in \d+ ms/);
    expect(r.out).toContain('(new)');
    const again = outpost(...args);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/^already provisioned GW-100/);
    const ledger = readFileSync(join(ca, 'ledger.jsonl'), 'utf8').trim().split('\n');
    expect(ledger).toHaveLength(1);
    expect(JSON.parse(ledger[0]!)).toMatchObject({ serial: 'GW-100', ekMethod: 'certificate' });

    const show = outpost('identity', 'show', '--data-dir', data, '--tpm', u.spec);
    expect(show.code).toBe(0);
    expect(show.out).toMatch(/^serial {7}GW-100$/m);
    expect(show.out).toMatch(/^subject {6}O=Acme Gateways, CN=GW-100$/m);
    expect(show.out).toMatch(/^expires {6}\d{4}-.* \(in \d+ days\)$/m);
    expect(show.out).toMatch(/^key handle {3}0x81000002$/m);
    expect(show.out).toMatch(/^key in TPM {3}yes$/m);
    const json = JSON.parse(outpost('identity', 'show', '--data-dir', data, '--tpm', u.spec, '--json').out) as Record<string, unknown>;
    expect(json).toMatchObject({ serial: 'GW-100', keyInTpm: 'yes', keyHandle: '0x81000002', expired: false });

    // the same files on another TPM: the key is not there
    const other = outpost('identity', 'show', '--data-dir', data, '--tpm', units[2]!.spec);
    expect(other.code).toBe(1);
    expect(other.out).toMatch(/^key in TPM {3}no$/m);
  });

  it('runs a batch with a progress line per unit and a summary naming skipped and failed units', () => {
    const batch = join(base, 'line-7.txt');
    writeFileSync(
      batch,
      [
        '# serial  tpm  data-dir',
        `GW-100 ${units[0]!.spec} ${join(base, 'unit0')}`, // already done: skipped
        `GW-101 ${units[1]!.spec}`,
        'GW-102 swtpm:127.0.0.1:1', // nothing there: fails, the batch goes on
        '',
      ].join('\n'),
    );
    const r = outpost('factory', 'provision', '--ca', ca, '--batch', batch, '--ek-roots', units[0]!.ekRoots, '--data-dir', join(base, 'batch-{serial}'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^\[1\/3\] skipped {5}GW-100: already provisioned$/m);
    expect(r.err).toMatch(/^\[2\/3\] provisioned GW-101 \(\d+ ms\)$/m);
    expect(r.err).toMatch(/^\[3\/3\] FAILED {6}GW-102: OUTPOST_E_TPM_TRANSPORT: /m);
    expect(r.out).toContain('summary: 1 provisioned, 1 skipped, 1 failed (3 units)');
    expect(r.out).toMatch(/failed {2}GW-102: OUTPOST_E_TPM_TRANSPORT/);
    expect(readFileSync(join(base, 'batch-GW-101', 'identity', 'identity.json'), 'utf8')).toContain('"serial": "GW-101"');
  });

  it('rejects bad input with exit code 2 before touching any unit', () => {
    const bad = join(base, 'bad.txt');
    writeFileSync(bad, `GW-200 ${units[2]!.spec}\nGW 201 x y z\n`);
    const r = outpost('factory', 'provision', '--ca', ca, '--batch', bad, '--ek-roots', units[0]!.ekRoots);
    expect(r.code).toBe(2);
    expect(r.err).toContain('OUTPOST_E_FACTORY_BATCH: batch line 2');
    expect(outpost('factory', 'provision', '--ca', ca, '--tpm', units[2]!.spec, '--serial', 'bad serial!', '--ek-roots', units[0]!.ekRoots).err).toContain('OUTPOST_E_FACTORY_SERIAL');
    expect(outpost('factory', 'provision', '--ca', ca, '--tpm', 'tpm0', '--serial', 'GW-200', '--ek-roots', units[0]!.ekRoots).code).toBe(2);
    expect(outpost('factory', 'provision', '--ca', ca, '--tpm', units[2]!.spec, '--serial', 'GW-200').err).toContain('OUTPOST_E_IDENTITY_TRUST_CONFIG');
    expect(outpost('factory', 'provision', '--ca', ca, '--tpm', units[2]!.spec, '--serial', 'GW-200', '--ek-roots', units[0]!.ekRoots, '--key-handle', '0x01000000').code).toBe(2);
    expect(outpost('identity', 'show', '--data-dir', join(base, 'nothing')).err).toContain('OUTPOST_E_IDENTITY_RECORD: this unit is not provisioned');
    const t = outpost('identity', 'tunnel', '--listen', '0.0.0.0:8883', '--remote', 'broker:8883');
    expect(t.code).toBe(2);
    expect(t.err).toContain('listens on loopback only');
  });
});
