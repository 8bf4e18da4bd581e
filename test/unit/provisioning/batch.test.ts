import { describe, expect, it } from 'vitest';
import { OutpostError } from '../../../src/errors/outpost-error.js';
import { ProgressBar, parseBatch, renderSummary, runBatch } from '../../../provisioning/factory/batch.js';

describe('batch files', () => {
  it('parses units, comments and optional data directories', () => {
    expect(parseBatch('# line 7\nGW-1 swtpm:127.0.0.1:2321\n\nGW-2 /dev/tpmrm0 /mnt/unit2  # second\n')).toEqual([
      { line: 2, serial: 'GW-1', tpm: 'swtpm:127.0.0.1:2321' },
      { line: 4, serial: 'GW-2', tpm: '/dev/tpmrm0', dataDir: '/mnt/unit2' },
    ]);
  });

  it.each([
    ['GW-1\n', 'line 1: missing TPM address'],
    ['GW 1 /dev/tpm0 /x extra\n', 'line 1: expected'],
    ['bad!serial /dev/tpm0\n', 'line 1: "bad!serial" is not a valid serial'],
    ['GW-1 nowhere\n', 'line 1: "nowhere" is not a TPM address'],
    ['GW-1 /dev/tpm0\nGW-1 /dev/tpm1\n', 'line 2: serial GW-1 already appears on line 1'],
    ['# nothing\n', 'lists no unit'],
  ])('refuses %j', (text, message) => {
    expect(() => parseBatch(text)).toThrow(expect.objectContaining({ code: 'OUTPOST_E_FACTORY_BATCH', message: expect.stringContaining(message) }));
  });
});

describe('batch runner', () => {
  it('goes on after a failure, counts outcomes and draws a bar on a terminal', async () => {
    const units = parseBatch('A /dev/tpm0\nB /dev/tpm1\nC /dev/tpm2\n');
    const out: string[] = [];
    let t = 0;
    const summary = await runBatch(
      units,
      async (u, onStep) => {
        onStep('activate');
        t += 10;
        if (u.serial === 'B') throw new OutpostError('OUTPOST_E_TPM_LOCKOUT', 'the TPM is in lockout');
        return u.serial === 'C' ? 'already-provisioned' : 'provisioned';
      },
      new ProgressBar((s) => out.push(s), true, units.length, 10),
      () => t,
    );
    expect(summary).toMatchObject({ provisioned: 1, skipped: 1, failed: 1 });
    expect(summary.outcomes[1]).toMatchObject({ serial: 'B', status: 'failed', code: 'OUTPOST_E_TPM_LOCKOUT' });
    expect(out.join('')).toContain('[###-------] 1/3  ok 1  skip 0  fail 0  B: activate');
    expect(out.join('')).toContain('FAILED      B: OUTPOST_E_TPM_LOCKOUT: the TPM is in lockout\n');
    expect(renderSummary(summary)).toBe(
      'summary: 1 provisioned, 1 skipped, 1 failed (3 units)\n  failed  B: OUTPOST_E_TPM_LOCKOUT: the TPM is in lockout\n  skipped C: already provisioned',
    );
  });

  it('prints one line per unit when stderr is not a terminal', async () => {
    const out: string[] = [];
    await runBatch(parseBatch('A /dev/tpm0\n'), async () => 'provisioned', new ProgressBar((s) => out.push(s), false, 1), () => 0);
    expect(out).toEqual(['[1/1] provisioned A (0 ms)\n']);
  });
});
