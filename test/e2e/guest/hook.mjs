// Outpost end-to-end test hook: runs INSIDE the QEMU guest as root, handed over by the host through fw_cfg
// (opt/outpost/test-hook; see image/overlay/common/usr/lib/systemd/system/outpost-test-hook.service).
// It is test code, never part of the image.
//  --prepare (before outpost.service): writes the site drop-in an operator would write, pointing Outpost's own
//    MQTT uplink at the host's mosquitto (gateway id from the test config); and, when the host asked for an
//    unhealthy slot (/var/lib/outpost-e2e/unhealthy-slot), a drop-in that makes /healthz fail on that slot only.
//  main: publishes e2e/status (slot, identity, data partition) on every connection and runs commands sent by
//    the host on e2e/cmd/<id> ({script} through /bin/sh), answering on e2e/result/<id>.
// Readings and OTA requests do NOT go through this hook: they use the gateway's uplink.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const cfg = JSON.parse(readFileSync('/sys/firmware/qemu_fw_cfg/by_name/opt/outpost/test-config/raw', 'utf8'));
const read = (f) => { try { return readFileSync(f, 'utf8').trim(); } catch { return ''; } };
const bootedSlot = () => /rauc\.slot=(\S+)/.exec(read('/proc/cmdline'))?.[1] ?? read('/run/outpost/booted-slot');

if (process.argv.includes('--prepare')) {
  const dropins = '/var/lib/outpost/config.d';
  mkdirSync(dropins, { recursive: true });
  writeFileSync(`${dropins}/50-e2e-uplink.yaml`, [
    '# Written by the end-to-end test hook: the site uplink (the host mosquitto through a QEMU guestfwd).',
    `gateway: { id: ${cfg.gatewayId} }`,
    `upstream: { type: mqtt, url: "${cfg.hostBroker}", reconnect: { initialMs: 500, maxMs: 5000 } }`,
    '',
  ].join('\n'), { mode: 0o644 });
  const unhealthy = read('/var/lib/outpost-e2e/unhealthy-slot');
  const file = `${dropins}/zz-e2e-unhealthy.yaml`;
  if (unhealthy !== '' && unhealthy === bootedSlot()) {
    // An RSS limit below what Node needs: /healthz answers 503, so mark-good never commits this slot.
    writeFileSync(file, 'health:\n  maxRssMiB: 16\n', { mode: 0o644 });
    console.log(`OUTPOST-E2E: slot ${unhealthy} made unhealthy`);
  } else {
    rmSync(file, { force: true });
  }
  process.exit(0);
}

const require = createRequire('/opt/outpost/package.json');
const mqtt = require('mqtt');
const hostname = read('/etc/hostname');

function status() {
  let dataBytes = 0;
  try { const s = statfsSync('/data'); dataBytes = s.blocks * s.bsize; } catch { /* no /data */ }
  return { hostname, machineId: read('/etc/machine-id'), slot: bootedSlot(), dataBytes, bootId: read('/proc/sys/kernel/random/boot_id') };
}

const host = mqtt.connect(cfg.hostBroker, { reconnectPeriod: 1000, clientId: `e2e-${hostname}`, clean: true });
host.on('connect', () => {
  host.subscribe('e2e/cmd/#', { qos: 1 }, () => {
    host.publish('e2e/status', JSON.stringify(status()), { qos: 1 });
    console.log('OUTPOST-E2E: hook connected to the host broker');
  });
});

host.on('message', (topic, payload) => {
  const id = topic.split('/').pop();
  const reply = (r) => host.publish(`e2e/result/${id}`, JSON.stringify(r), { qos: 1 });
  let msg;
  try { msg = JSON.parse(payload.toString()); } catch { return reply({ code: 2, stderr: 'bad JSON' }); }
  execFile('/bin/sh', ['-c', msg.script], { timeout: msg.timeoutMs ?? 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
    reply({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
});
