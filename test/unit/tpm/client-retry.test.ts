import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../hal/clock.js';
import { TpmClient } from '../../../provisioning/tpm/client.js';
import { Tpm2 } from '../../../provisioning/tpm/commands.js';
import { fromHex, hex } from '../../../provisioning/tpm/marshal.js';
import type { TpmTransport } from '../../../provisioning/tpm/transport.js';

/** A scripted TPM: answers each command with the next canned response and records what it was sent. */
class ScriptedTpm implements TpmTransport {
  readonly description = 'scripted';
  readonly resourceManaged = true;
  readonly sent: string[] = [];
  constructor(private readonly answers: Array<(cmd: Buffer) => Buffer>) {}
  async transmit(command: Buffer): Promise<Buffer> {
    this.sent.push(hex(command));
    const next = this.answers.shift();
    if (next === undefined) throw new Error('unexpected command');
    return next(command);
  }
  async close(): Promise<void> {}
}

const rc = (code: number) => () => {
  const b = Buffer.alloc(10);
  b.writeUInt16BE(0x8001, 0);
  b.writeUInt32BE(10, 2);
  b.writeUInt32BE(code, 6);
  return b;
};
const random8 = () => fromHex('800100000014000000000008c695d8cffcadf508');

function fakeClock(): Clock & { slept: number[] } {
  const slept: number[] = [];
  return {
    slept,
    now: () => 0,
    monotonic: () => 0,
    sleep: async (ms: number) => void slept.push(ms),
    setTimeout: () => 0,
    clearTimeout: () => undefined,
    setInterval: () => 0,
    clearInterval: () => undefined,
  };
}

describe('TpmClient retries and restarts', () => {
  it('re-sends the same bytes after RETRY, YIELDED, TESTING and NV_RATE, with growing delays', async () => {
    const tpm = new ScriptedTpm([rc(0x922), rc(0x908), rc(0x90a), rc(0x920), random8]);
    const clock = fakeClock();
    const out = await new TpmClient(tpm, { clock }).run(Tpm2.getRandom(8));
    expect(hex(out)).toBe('c695d8cffcadf508');
    expect(new Set(tpm.sent)).toEqual(new Set(['80010000000c0000017b0008']));
    expect(tpm.sent).toHaveLength(5);
    expect(clock.slept).toEqual([5, 10, 20, 40]);
  });

  it('gives up after maxRetries with a named error', async () => {
    const tpm = new ScriptedTpm(Array.from({ length: 4 }, () => rc(0x922)));
    await expect(new TpmClient(tpm, { clock: fakeClock(), maxRetries: 3 }).run(Tpm2.getRandom(8))).rejects.toMatchObject({
      code: 'OUTPOST_E_TPM_RETRY_EXHAUSTED',
      details: { command: 'GetRandom', attempts: 4 },
    });
  });

  it('does not retry LOCKOUT or other errors', async () => {
    const tpm = new ScriptedTpm([rc(0x921)]);
    await expect(new TpmClient(tpm, { clock: fakeClock() }).run(Tpm2.getRandom(8))).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_LOCKOUT' });
    expect(tpm.sent).toHaveLength(1);
  });

  it('starts a TPM found not initialised (after a reset) and re-sends the command once', async () => {
    const tpm = new ScriptedTpm([rc(0x100), rc(0), random8]);
    const out = await new TpmClient(tpm, { clock: fakeClock() }).run(Tpm2.getRandom(8));
    expect(hex(out)).toBe('c695d8cffcadf508');
    expect(tpm.sent).toEqual(['80010000000c0000017b0008', '80010000000c000001440000', '80010000000c0000017b0008']);
  });

  it('serialises concurrent callers and flushes tracked transients on close', async () => {
    const tpm = new ScriptedTpm([random8, random8, rc(0)]);
    const client = new TpmClient(tpm, { clock: fakeClock() });
    client.track(0x80000001);
    await Promise.all([client.run(Tpm2.getRandom(8)), client.run(Tpm2.getRandom(8))]);
    await client.close();
    expect(tpm.sent.at(-1)).toBe('80010000000e0000016580000001');
    await expect(client.run(Tpm2.getRandom(8))).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_TRANSPORT' });
  });
});
