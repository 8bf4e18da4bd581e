import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess, type TestProcess } from './process.js';
import { waitFor } from './net.js';
import { existsSync } from 'node:fs';

/**
 * A private D-Bus session bus and tpm2-abrmd instances on it: the resource manager the tpm2
 * OpenSSL provider needs (swtpm serves one client; abrmd multiplexes it). No system bus required.
 */
export interface PrivateBus {
  readonly address: string;
  readonly env: NodeJS.ProcessEnv;
  /** Starts tpm2-abrmd on a swtpm port; resolves with the TCTI string clients use. */
  abrmd(swtpmPort: number): Promise<string>;
  stop(): Promise<void>;
}

export async function startPrivateBus(): Promise<PrivateBus> {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-dbus-'));
  const socket = join(dir, 'bus');
  writeFileSync(
    join(dir, 'bus.conf'),
    `<busconfig><type>session</type><listen>unix:path=${socket}</listen><auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy></busconfig>\n`,
  );
  const procs: TestProcess[] = [];
  const bus = startProcess('dbus-daemon', ['--config-file', join(dir, 'bus.conf'), '--nofork', '--nopidfile']);
  procs.push(bus);
  await waitFor(() => existsSync(socket), 10_000);
  const address = `unix:path=${socket}`;
  const env = { ...process.env, DBUS_SESSION_BUS_ADDRESS: address };
  return {
    address,
    env,
    async abrmd(swtpmPort) {
      const name = `com.outpost.test.T${randomBytes(4).toString('hex')}`;
      const args = ['--session', `--dbus-name=${name}`, `--tcti=swtpm:host=127.0.0.1,port=${swtpmPort}`, '--logger=stdout'];
      if (process.getuid?.() === 0) args.unshift('--allow-root');
      const p = startProcess('tpm2-abrmd', args, { env });
      procs.push(p);
      const tcti = `tabrmd:bus_name=${name},bus_type=session`;
      // ready once a client gets random bytes through it
      await waitFor(async () => {
        if (p.child.exitCode !== null) throw new Error(`tpm2-abrmd exited: ${p.output()}`);
        const { spawnSync } = await import('node:child_process');
        return spawnSync('tpm2_getrandom', ['-T', tcti, '4'], { env, stdio: 'ignore' }).status === 0;
      }, 15_000, 100);
      return tcti;
    },
    async stop() {
      for (const p of procs.reverse()) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
