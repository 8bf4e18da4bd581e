import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TPM_HR } from '../../provisioning/tpm/constants.js';
import { Tpm2 } from '../../provisioning/tpm/commands.js';
import { TpmClient } from '../../provisioning/tpm/client.js';
import { openTpm } from '../../provisioning/tpm/open.js';
import { DeviceTransport } from '../../provisioning/tpm/transport-device.js';
import { waitFor } from '../helpers/net.js';
import { startProcess, type TestProcess } from '../helpers/process.js';
import { startSwtpm, type Swtpm } from '../helpers/swtpm.js';
import { existsSync } from 'node:fs';

/**
 * The character-device transport (/dev/tpm0, /dev/tpmrm0 code path) without TPM hardware: socat
 * bridges a raw pseudo-terminal to swtpm, so the client opens a device node, writes one command
 * and reads the response from it, as it does on a unit.
 */
describe('device transport through a pty bridged to swtpm', () => {
  let tpm: Swtpm;
  let bridge: TestProcess;
  let path = '';

  beforeAll(async () => {
    tpm = await startSwtpm();
    path = join(mkdtempSync(join(tmpdir(), 'outpost-pty-')), 'tpm0');
    bridge = startProcess('socat', [`PTY,link=${path},raw,echo=0`, `TCP:127.0.0.1:${tpm.port}`]);
    await waitFor(() => existsSync(path), 10_000);
  });

  afterAll(async () => {
    await bridge?.stop();
    await tpm?.stop();
  });

  it('runs commands through the device node, with strict flushing (not a resource manager)', async () => {
    const client = await openTpm(path);
    try {
      expect(client.transport.resourceManaged).toBe(false);
      expect((await client.run(Tpm2.getRandom(32))).length).toBe(32);
      const ek = await client.run(Tpm2.readPublic(0x81010001));
      expect(ek.name.length).toBe(34);
      expect(await client.handles(TPM_HR.TRANSIENT)).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('reports a missing device clearly', async () => {
    await expect(DeviceTransport.open(join(tmpdir(), 'no-such-tpm'))).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_TRANSPORT', details: { errno: 'ENOENT' } });
  });

  it('times out when the device never answers, and refuses further commands', async () => {
    await bridge.stop();
    const silent = startProcess('socat', [`PTY,link=${path}.silent,raw,echo=0`, 'EXEC:sleep 30']);
    try {
      await waitFor(() => existsSync(`${path}.silent`), 10_000);
      const t = await DeviceTransport.open(`${path}.silent`);
      const client = new TpmClient(t, { timeoutMs: 500 });
      await expect(client.run(Tpm2.getRandom(8))).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_TIMEOUT' });
      await expect(client.run(Tpm2.getRandom(8))).rejects.toMatchObject({ code: 'OUTPOST_E_TPM_TIMEOUT' });
      await client.close();
    } finally {
      await silent.stop();
    }
  });
});
