import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TestProcess } from '../helpers/process.js';
import { builtDisk, E2E_DIR, GuestLink, HOOK, ScenarioClock, startMosquitto } from './harness.js';

/**
 * The Raspberry Pi (arm64) image's root file system booted once under qemu-system-aarch64 (-M virt, TCG): the Pi
 * firmware and its tryboot cannot be emulated, so the kernel and initramfs of slot A are started directly with
 * root=PARTLABEL=rootA on the built Pi disk (through a qcow2 overlay). Shows the userspace, the data partition,
 * outpost.service and readings reaching the host broker through Outpost's MQTT uplink.
 */
const W = path.join(E2E_DIR, 'arm64');
const clock = new ScenarioClock();
let qemu: ChildProcess | undefined;
let broker: { port: number; proc: TestProcess } | undefined;
let link: GuestLink | undefined;

afterAll(async () => {
  if (qemu?.pid !== undefined && qemu.exitCode === null) {
    spawnSync('pkill', ['-KILL', '-P', String(qemu.pid)]);
    qemu.kill('SIGKILL');
  }
  await link?.close();
  await broker?.proc.stop();
});

describe('Raspberry Pi arm64 root file system under qemu-system-aarch64', () => {
  it('boots slot A to userspace, starts outpost.service and delivers readings', async () => {
    await clock.time('arm64 boot, outpost.service, readings', async () => {
      rmSync(W, { recursive: true, force: true });
      mkdirSync(W, { recursive: true });
      const disk = builtDisk('rpi-arm64');
      const work = path.dirname(disk);
      for (const f of ['vmlinuz', 'initrd.img']) expect(existsSync(path.join(work, f)), f).toBe(true);
      const ov = path.join(W, 'pi.qcow2');
      expect(spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', disk, '-F', 'raw', ov, '3G']).status).toBe(0);
      broker = await startMosquitto(W);
      link = await GuestLink.connect(broker.port, 'pi1');
      const cfg = path.join(W, 'test-config.json');
      writeFileSync(cfg, JSON.stringify({ hostBroker: 'mqtt://10.0.2.100:1883', gatewayId: 'pi1' }));
      let console_ = '';
      qemu = spawn('timeout', ['1500', 'qemu-system-aarch64', '-M', 'virt', '-cpu', 'cortex-a72', '-accel', 'tcg,thread=single', '-smp', '1', '-m', '1024',
        '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
        '-kernel', path.join(work, 'vmlinuz'), '-initrd', path.join(work, 'initrd.img'),
        '-append', 'console=ttyAMA0 root=PARTLABEL=rootA ro rootfstype=squashfs rauc.slot=A panic=5 quiet',
        '-drive', `file=${ov},if=virtio,format=qcow2,cache=unsafe`,
        '-netdev', `user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:1883-cmd:socat -lf /dev/null - TCP:127.0.0.1:${broker.port}`,
        '-device', 'virtio-net-pci,netdev=n0',
        '-fw_cfg', `name=opt/outpost/test-hook,file=${HOOK}`, '-fw_cfg', `name=opt/outpost/test-config,file=${cfg}`,
      ], { stdio: ['ignore', 'pipe', 'pipe'] });
      const log = path.join(W, 'console.log');
      const onData = (d: Buffer) => {
        console_ += d.toString('utf8').replace(/\r/g, '');
        writeFileSync(log, console_);
      };
      qemu.stdout?.on('data', onData);
      qemu.stderr?.on('data', onData);
      const wait = async (re: RegExp, ms: number) => {
        const t0 = Date.now();
        while (!re.test(console_)) {
          if (qemu?.exitCode !== null) throw new Error(`QEMU exited before ${re}\n${console_.split('\n').slice(-40).join('\n')}`);
          if (Date.now() - t0 > ms) throw new Error(`${re} not on the console within ${ms} ms\n${console_.split('\n').slice(-40).join('\n')}`);
          await new Promise((r) => setTimeout(r, 500));
        }
      };
      await wait(/data partition is blank: formatting/, 10 * 60_000);
      await wait(/OUTPOST-BOOT: slot=A .*target=rpi-arm64 .*outpost\.service=active/, 15 * 60_000);
      const st = await link.nextStatus(0, 5 * 60_000);
      expect(st.slot).toBe('A');
      const uname = await link.exec('uname -m; systemctl is-active outpost.service');
      expect(uname.stdout).toMatch(/aarch64\s+active/);
      const t0 = Date.now();
      while (link.readings.length < 3 && Date.now() - t0 < 180_000) await new Promise((r) => setTimeout(r, 500));
      expect(link.readings.length).toBeGreaterThanOrEqual(3);
    });
  }, 30 * 60_000);
});
