import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { systemClock } from '../../hal/clock.js';
import { buildBundle } from '../../ota/bundle/builder.js';
import { loadOtaConfig } from '../../ota/config.js';
import { createOta } from '../../ota/system.js';
import { RaucPeer, makeSigner, makeUbootEnv, sh } from './peers.js';

/**
 * `npm run bench:ota`: install throughput of one image into a file-backed slot, measured in the same
 * run for `rauc install` (RAUC 1.8, plain bundle, U-Boot env through fw_setenv), Outpost (same
 * plain bundle, and the verity format), and `dd conv=fsync` + `sha256sum` of the written bytes.
 * Warm page cache for everyone; medians of OTA_BENCH_RUNS runs (3). OTA_BENCH_MIB sets the size (256).
 */
const MIB = Number(process.env['OTA_BENCH_MIB'] ?? '256');
const RUNS = Number(process.env['OTA_BENCH_RUNS'] ?? '3');
const W = mkdtempSync(join(process.env['OTA_BENCH_DIR'] ?? tmpdir(), 'outpost-bench-ota-'));
const OUTPOST = join(import.meta.dirname, '..', '..', 'services', 'outpost.js');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return (performance.now() - t) / 1000;
}

async function timedAsync(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

function log(s: string): void {
  process.stderr.write(`${s}\n`);
}

async function main(): Promise<void> {
  const size = MIB * 1024 * 1024;
  const signer = makeSigner(join(W, 'pki'));
  log(`bench: ${MIB} MiB random image in ${W}`);
  const content = join(W, 'content');
  mkdirSync(content);
  const image = join(content, 'rootfs.img');
  const fd = openSync(image, 'w');
  for (let i = 0; i < MIB; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);
  writeFileSync(join(content, 'manifest.raucm'), '[update]\ncompatible=Bench Gateway\nversion=1.0.0\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=rootfs.img\n');

  // RAUC side: system.conf with U-Boot, its own env and slots.
  const rdir = join(W, 'rauc');
  mkdirSync(rdir);
  const rEnv = makeUbootEnv(rdir);
  for (const s of ['A', 'B']) sh('truncate', ['-s', String(size + 32 * 1024 * 1024), join(rdir, `slot${s}.img`)]);
  const conf = join(rdir, 'system.conf');
  writeFileSync(
    conf,
    `[system]\ncompatible=Bench Gateway\nbootloader=uboot\nmountprefix=${rdir}/mnt\nstatusfile=${rdir}/status.raucs\n[keyring]\npath=${signer.ca}\ncheck-purpose=codesign\n` +
      `[slot.rootfs.0]\ndevice=${rdir}/slotA.img\ntype=raw\nbootname=A\n[slot.rootfs.1]\ndevice=${rdir}/slotB.img\ntype=raw\nbootname=B\n`,
  );
  const plain = join(W, 'bundle-plain.raucb');
  log('bench: building the plain bundle with `rauc bundle`');
  sh('rauc', ['-c', conf, 'bundle', `--cert=${signer.cert}`, `--key=${signer.key}`, content, plain]);
  log('bench: building a verity bundle with `outpost ota bundle`');
  const verity = join(W, 'bundle-verity.raucb');
  await buildBundle({
    images: [{ slotClass: 'rootfs', path: image }],
    compatible: 'Bench Gateway',
    version: '1.0.0',
    format: 'verity',
    certPem: readFileSync(signer.cert, 'utf8'),
    keyPem: readFileSync(signer.key, 'utf8'),
    output: verity,
    time: new Date(),
    tmpDir: W,
  });

  // Outpost side: the same layout, its own env and slots.
  const odir = join(W, 'outpost');
  mkdirSync(odir);
  makeUbootEnv(odir);
  for (const s of ['A', 'B']) sh('truncate', ['-s', String(size + 32 * 1024 * 1024), join(odir, `slot${s}.img`)]);
  writeFileSync(join(odir, 'cmdline'), 'console=ttyS0 rauc.slot=A\n');
  writeFileSync(join(odir, 'boot_id'), 'bench-boot\n');
  copyFileSync(signer.ca, join(odir, 'ca.pem'));
  writeFileSync(
    join(odir, 'config.yaml'),
    JSON.stringify({
      gateway: { dataDir: 'data' },
      ota: {
        compatible: 'Bench Gateway',
        keyring: 'ca.pem',
        slots: [
          { bootname: 'A', device: 'slotA.img' },
          { bootname: 'B', device: 'slotB.img' },
        ],
        bootloader: { type: 'uboot', fwEnvConfig: 'fw_env.config' },
        cmdline: 'cmdline',
        bootIdFile: 'boot_id',
        lockDir: 'locks',
      },
    }),
  );
  const loaded = await loadOtaConfig(join(odir, 'config.yaml'));
  const sys = await createOta(loaded.ota, { configDir: odir, gatewayDataDir: loaded.dataDir }, { logger: pino({ level: 'silent' }), clock: systemClock, fetch: globalThis.fetch });

  // Warm the page cache for everyone.
  for (const f of [image, plain, verity]) sh('sh', ['-c', `cat "${f}" > /dev/null`]);
  const rauc = new RaucPeer(rdir, conf, rEnv);
  await rauc.start();
  const results: Record<string, number[]> = { dd: [], rauc: [], outpostPlain: [], outpostVerity: [], outpostCli: [] };
  const rss: Record<string, number> = {};
  try {
    for (let run = 0; run < RUNS; run++) {
      log(`bench: run ${run + 1}/${RUNS}`);
      results['dd']?.push(
        timed(() =>
          sh('sh', ['-c', `dd if="${image}" of="${odir}/slotB.img" bs=4M conv=fsync,notrunc status=none && head -c ${size} "${odir}/slotB.img" | sha256sum >/dev/null`]),
        ),
      );
      results['rauc']?.push(timed(() => rauc.rauc(['install', plain])));
      for (const [key, file] of [
        ['outpostPlain', plain],
        ['outpostVerity', verity],
      ] as const) {
        let peak = 0;
        const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
        results[key]?.push(await timedAsync(() => sys.updater.install({ source: file, origin: 'bench' })));
        clearInterval(sampler);
        rss[key] = Math.max(rss[key] ?? 0, peak);
        await sys.updater.cancel();
      }
      // End to end through the CLI: process start, config, verify, write, read back, switch.
      const t = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, OUTPOST, 'ota', 'install', plain, '-c', join(odir, 'config.yaml')], { encoding: 'utf8' });
      if (t.status !== 0) throw new Error(`outpost ota install failed: ${t.stderr}`);
      const [secs, kb] = (t.stderr.trim().split('\n').at(-1) ?? '').split(' ').map(Number);
      results['outpostCli']?.push(secs ?? NaN);
      rss['outpostCli'] = Math.max(rss['outpostCli'] ?? 0, (kb ?? 0) * 1024);
      await sys.updater.cancel();
    }
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${rauc.pid}/status`, 'utf8'));
    rss['rauc'] = Number(hwm?.[1] ?? 0) * 1024;
  } finally {
    await rauc.stop();
  }
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)])) as Record<string, number>;
  const rate = (s: number) => `${(MIB / s).toFixed(0).padStart(5)} MiB/s`;
  const row = (name: string, key: string, note = '') =>
    `${name.padEnd(44)} ${(m[key] as number).toFixed(2).padStart(6)} s ${rate(m[key] as number)}   ${(((m['rauc'] as number) / (m[key] as number)).toFixed(2) + '×').padStart(6)}   ${(((m['dd'] as number) / (m[key] as number)).toFixed(2) + '×').padStart(6)}   ${rss[key] ? `${(rss[key] / 1024 / 1024).toFixed(0)} MiB` : '-'} ${note}`;
  const out = [
    `OTA install of a ${MIB} MiB image into a file-backed slot (median of ${RUNS}; warm cache; ${process.platform} ${process.arch}, node ${process.version}; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')})`,
    `${'method'.padEnd(44)} ${'time'.padStart(8)} ${'throughput'.padStart(11)}   vs rauc   vs dd    peak RSS`,
    row('dd conv=fsync + sha256sum (baseline)', 'dd'),
    row('rauc install, plain bundle (RAUC 1.8)', 'rauc', '(service VmHWM)'),
    row('Outpost, plain bundle (in-process)', 'outpostPlain', '(bench process)'),
    row('Outpost, verity bundle (in-process)', 'outpostVerity', '(bench process)'),
    row('outpost ota install, plain (CLI, end to end)', 'outpostCli', '(CLI process)'),
    '',
    '"vs rauc" and "vs dd" are speed ratios: above 1× is faster than that method. Outpost also reads every',
    'written byte back and hashes it (RAUC does not); the verity run checks every payload block before writing and again while writing.',
    `raw runs (s): ${JSON.stringify(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.map((x) => Number(x.toFixed(2)))])))}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  await main();
} finally {
  if (!process.env['OTA_BENCH_KEEP']) rmSync(W, { recursive: true, force: true });
}
