// Outpost end-to-end test hook: runs INSIDE the QEMU guest, handed over by the host through fw_cfg
// (opt/outpost/test-hook; see image/overlay/common/usr/lib/systemd/system/outpost-test-hook.service).
// It is test code, never part of the image. It
//  - forwards every reading of the gateway's local broker to the host's mosquitto (e2e/<topic>), standing in
//    for the MQTT uplink until that exists;
//  - publishes e2e/status (slot, identity, data partition) on every connection;
//  - runs commands sent by the host on e2e/cmd/<id> ({script} through /bin/sh, or {op:'fetch', url, dest,
//    sha256}) and answers on e2e/result/<id>.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync, writeSync, fdatasyncSync, closeSync, readFileSync, statfsSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire('/opt/outpost/package.json');
const mqtt = require('mqtt');
const cfg = JSON.parse(readFileSync('/sys/firmware/qemu_fw_cfg/by_name/opt/outpost/test-config/raw', 'utf8'));
const read = (f) => { try { return readFileSync(f, 'utf8').trim(); } catch { return ''; } };
const hostname = read('/etc/hostname');

function status() {
  const cmdline = read('/proc/cmdline');
  const slot = /rauc\.slot=(\S+)/.exec(cmdline)?.[1] ?? read('/run/outpost/booted-slot');
  let dataBytes = 0;
  try { const s = statfsSync('/data'); dataBytes = s.blocks * s.bsize; } catch { /* no /data */ }
  return { hostname, machineId: read('/etc/machine-id'), slot, dataBytes, bootId: read('/proc/sys/kernel/random/boot_id') };
}

const local = mqtt.connect('mqtt://127.0.0.1:1883', { reconnectPeriod: 1000, clientId: `e2e-local-${hostname}` });
const host = mqtt.connect(cfg.hostBroker, { reconnectPeriod: 1000, clientId: `e2e-${hostname}`, clean: true });
local.on('connect', () => local.subscribe('outpost/readings/#'));
local.on('message', (topic, payload) => { if (host.connected) host.publish(`e2e/${topic}`, payload); });
host.on('connect', () => {
  host.subscribe('e2e/cmd/#', { qos: 1 }, () => {
    host.publish('e2e/status', JSON.stringify(status()), { qos: 1 });
    console.log('OUTPOST-E2E: hook connected to the host broker');
  });
});

async function fetchTo(url, dest, sha256) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status}`);
  const fd = openSync(dest, 'r+');
  const h = createHash('sha256');
  let pos = 0;
  try {
    for await (const chunk of res.body) {
      h.update(chunk);
      let off = 0;
      while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off, pos + off);
      pos += chunk.length;
    }
    fdatasyncSync(fd);
  } finally { closeSync(fd); }
  const got = h.digest('hex');
  if (sha256 && got !== sha256) throw new Error(`sha256 mismatch: ${got}`);
  return { bytes: pos, sha256: got };
}

host.on('message', (topic, payload) => {
  const id = topic.split('/').pop();
  const reply = (r) => host.publish(`e2e/result/${id}`, JSON.stringify(r), { qos: 1 });
  let msg;
  try { msg = JSON.parse(payload.toString()); } catch { return reply({ code: 2, stderr: 'bad JSON' }); }
  if (msg.op === 'fetch') {
    console.log(`OUTPOST-E2E: fetch ${msg.url} -> ${msg.dest}`);
    fetchTo(msg.url, msg.dest, msg.sha256).then((r) => reply({ code: 0, stdout: JSON.stringify(r) }), (e) => reply({ code: 1, stderr: String(e) }));
    return;
  }
  execFile('/bin/sh', ['-c', msg.script], { timeout: msg.timeoutMs ?? 120_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) =>
    reply({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
});
