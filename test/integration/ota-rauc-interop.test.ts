import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPOST, Rig, cli, makePki, outpostBundle, writeImage, type Pki } from '../helpers/ota.js';
import { RaucService, raucSlots } from '../helpers/rauc.js';

let dir = '';
let pki: Pki;
let image: Buffer;

beforeAll(() => {
  for (const t of ['rauc', 'dbus-daemon', 'unshare']) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) throw new Error(`${t} missing (scripts/apt-packages.txt)`);
  dir = mkdtempSync(join(tmpdir(), 'outpost-rauc-'));
  pki = makePki(join(dir, 'pki'));
  image = writeImage(join(dir, 'rootfs.img'), 2 * 1024 * 1024 + 999, 'text');
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function systemConf(rig: Rig, bootloader: string): string {
  const f = join(rig.dir, 'system.conf');
  writeFileSync(
    f,
    [
      '[system]',
      'compatible=Outpost Test Gateway',
      `bootloader=${bootloader}`,
      `mountprefix=${rig.dir}/mnt`,
      `statusfile=${rig.dir}/status.raucs`,
      ...(bootloader === 'custom' ? ['[handlers]', `bootloader-custom-backend=${rig.dir}/backend.sh`] : []),
      '[keyring]',
      `path=${pki.ca}`,
      'check-purpose=codesign',
      '[slot.rootfs.0]',
      `device=${rig.slot('A')}`,
      'type=raw',
      'bootname=A',
      '[slot.rootfs.1]',
      `device=${rig.slot('B')}`,
      'type=raw',
      'bootname=B',
      '',
    ].join('\n'),
  );
  return f;
}

describe('RAUC 1.8 drives Outpost through the custom-backend contract', () => {
  let rig: Rig;
  let rauc: RaucService;

  beforeAll(async () => {
    rig = new Rig(join(dir, 'custom'), pki, 'uboot', 4 * 1024 * 1024);
    writeFileSync(join(rig.dir, 'backend.sh'), `#!/bin/sh\nexec "${process.execPath}" "${OUTPOST}" ota backend -c "${rig.configFile}" "$@"\n`, { mode: 0o755 });
    rauc = new RaucService(rig.dir, systemConf(rig, 'custom'), join(rig.dir, 'cmdline'));
    await rauc.start();
  }, 120_000);
  afterAll(async () => rauc?.stop());

  const both = async () => {
    const r = rauc.rauc(['status', '--detailed', '--output-format=json']);
    expect(r.status, r.stderr).toBe(0);
    const st = await (await rig.system()).status();
    return { rauc: raucSlots(r.stdout), outpost: { booted: st.booted, primary: st.primary, status: Object.fromEntries(st.slots.map((s) => [s.bootname, s.state])) } };
  };

  it('sees the same booted slot, primary and slot states, through every mark', async () => {
    let v = await both();
    expect(v.rauc).toEqual({ booted: 'A', primary: 'A', status: { A: 'good', B: 'good' } });
    expect(v.outpost).toEqual(v.rauc);

    expect(rauc.rauc(['status', 'mark-bad', 'other']).status).toBe(0);
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'A', BOOT_B_LEFT: '0' });
    v = await both();
    expect(v.rauc.status).toEqual({ A: 'good', B: 'bad' });
    expect(v.outpost).toEqual(v.rauc);

    expect(rauc.rauc(['status', 'mark-active', 'other']).status).toBe(0);
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A', BOOT_B_LEFT: '3' });
    v = await both();
    expect(v.rauc).toEqual({ booted: 'A', primary: 'B', status: { A: 'good', B: 'good' } });
    expect(v.outpost).toEqual(v.rauc);

    // And the other way round: Outpost marks, RAUC reads.
    const m = await cli(['ota', 'mark', 'active', 'booted', '-c', rig.configFile]);
    expect(m.code, m.stderr).toBe(0);
    v = await both();
    expect(v.rauc.primary).toBe('A');
    expect(v.outpost).toEqual(v.rauc);
  }, 240_000);

  it('`rauc install` of an Outpost-built plain bundle writes the slot through Outpost’s adapter', async () => {
    const bundle = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(dir, 'outpost-plain.raucb'), format: 'plain', version: '4.0.0' });
    const r = rauc.rauc(['install', bundle]);
    expect(r.status, `${r.stdout}${r.stderr}${rauc.serviceLog()}`).toBe(0);
    expect(readFileSync(rig.slot('B')).subarray(0, image.length).equals(image)).toBe(true);
    expect(rig.fwPrintenv()).toMatchObject({ BOOT_ORDER: 'B A', BOOT_B_LEFT: '3' });
    const v = await both();
    expect(v.rauc).toEqual({ booted: 'A', primary: 'B', status: { A: 'good', B: 'good' } });
    expect(v.outpost).toEqual(v.rauc);
  }, 240_000);
});

describe('bundles from `rauc bundle` install with Outpost', () => {
  it.each(['plain', 'verity'] as const)('%s', async (format) => {
    const rig = new Rig(join(dir, `from-rauc-${format}`), pki, 'grub', 4 * 1024 * 1024);
    const content = join(rig.dir, 'content');
    mkdirSync(content);
    copyFileSync(join(dir, 'rootfs.img'), join(content, 'rootfs.img'));
    writeFileSync(join(content, 'manifest.raucm'), `[update]\ncompatible=Outpost Test Gateway\nversion=5.0.0\n[bundle]\nformat=${format}\n[image.rootfs]\nfilename=rootfs.img\n`);
    const out = join(rig.dir, 'b.raucb');
    const b = spawnSync('rauc', ['-c', systemConf(rig, 'noop'), 'bundle', `--cert=${pki.signers.rsa.cert}`, `--key=${pki.signers.rsa.key}`, content, out], { encoding: 'utf8' });
    expect(b.status, b.stderr).toBe(0);
    const r = await cli(['ota', 'install', out, '-c', rig.configFile, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ state: 'reboot-pending', target: 'B', bundle: { version: '5.0.0', format } });
    expect(readFileSync(rig.slot('B')).subarray(0, image.length).equals(image)).toBe(true);
    expect(rig.grubList()).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });
  });
});

describe('Outpost drives a custom backend script (the other direction of the contract)', () => {
  it('installs through a shell backend on grub-editenv and reads its states', async () => {
    const rig = new Rig(join(dir, 'script'), pki, 'grub', 4 * 1024 * 1024);
    const env = join(rig.dir, 'grubenv');
    // An independent backend in the style of meta-rauc-community's scripts.
    writeFileSync(
      join(rig.dir, 'custom-backend.sh'),
      `#!/bin/sh
set -e
ENV=${env}
get() { grub-editenv "$ENV" list | sed -n "s/^$1=//p"; }
case "$1" in
  get-primary) for s in $(get ORDER); do if [ "$(get \${s}_OK)" = 1 ] && [ "$(get \${s}_TRY)" = 0 ]; then echo "$s"; exit 0; fi; done; exit 1 ;;
  set-primary) other=A; [ "$2" = A ] && other=B; grub-editenv "$ENV" set "$2_OK=1" "$2_TRY=0" "ORDER=$2 $other" ;;
  get-state) if [ "$(get $2_OK)" = 1 ] && [ "$(get $2_TRY)" = 0 ]; then echo good; else echo bad; fi ;;
  set-state) if [ "$3" = good ]; then grub-editenv "$ENV" set "$2_OK=1" "$2_TRY=0"; else grub-editenv "$ENV" set "$2_OK=0" "$2_TRY=0"; fi ;;
  *) echo "unknown verb $1" >&2; exit 2 ;;
esac
`,
      { mode: 0o755 },
    );
    rig.writeConfig({ bootloader: { type: 'custom', command: ['custom-backend.sh'] } });
    const bundle = await outpostBundle(pki, { image: join(dir, 'rootfs.img'), output: join(rig.dir, 'b.raucb') });
    const sys = await rig.system();
    expect(await sys.selector.getPrimary()).toBe('A');
    const rec = await sys.updater.install({ source: bundle, origin: 'test' });
    expect(rec.state).toBe('reboot-pending');
    expect(rig.grubList()).toMatchObject({ ORDER: 'B A', B_OK: '1', B_TRY: '0' });
    expect(await sys.selector.getPrimary()).toBe('B');
    await sys.selector.setState('B', 'bad');
    expect(await sys.selector.getState('B')).toBe('bad');
    expect(await sys.selector.getPrimary()).toBe('A');
    // A backend that breaks the contract is reported with the verb, not trusted.
    writeFileSync(join(rig.dir, 'custom-backend.sh'), '#!/bin/sh\necho maybe\n', { mode: 0o755 });
    await expect(sys.selector.getState('A')).rejects.toMatchObject({ code: 'OUTPOST_E_OTA_BOOT_BACKEND' });
  });
});
