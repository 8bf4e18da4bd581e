import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Versions pinned by Node 20 (see the field notes): Node-RED 5 needs Node ≥ 22.9; contrib-modbus ≥ 5.45 is not installable from npm alone. */
export const NODE_RED = 'node-red@4.1.15';
export const CONTRIB_MODBUS = 'node-red-contrib-modbus@5.23.3';

/** Installs Node-RED and node-red-contrib-modbus into a bench-only folder (git-ignored, never an Outpost dependency). */
export function ensureNodeRed(dir: string, log: (s: string) => void): string {
  const red = path.join(dir, 'node_modules', 'node-red', 'red.js');
  if (existsSync(red) && existsSync(path.join(dir, 'node_modules', 'node-red-contrib-modbus'))) return red;
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'outpost-bench-node-red', private: true }));
  log(`installing ${NODE_RED} and ${CONTRIB_MODBUS} into ${dir} (once; about 80 s)`);
  execFileSync('npm', ['install', '--no-audit', '--no-fund', NODE_RED, CONTRIB_MODBUS], { cwd: dir, stdio: 'ignore' });
  return red;
}

/**
 * A headless Node-RED flow equivalent to Outpost's: `blocks` modbus-read nodes of 125 holding
 * registers each, every `rateMs`, one function node splitting each answer into one message per
 * register, and an MQTT out node to the broker.
 */
export function writeNodeRedProject(dir: string, o: { modbusPort: number; mqttPort: number; blocks: number; rateMs: number }): string {
  mkdirSync(path.join(dir, 'ud'), { recursive: true });
  const flow: Array<Record<string, unknown>> = [
    { id: 'tab', type: 'tab', label: 'bench' },
    {
      id: 'client',
      type: 'modbus-client',
      name: 'peer',
      clienttype: 'tcp',
      bufferCommands: true,
      stateLogEnabled: false,
      queueLogEnabled: false,
      failureLogEnabled: false,
      tcpHost: '127.0.0.1',
      tcpPort: String(o.modbusPort),
      tcpType: 'DEFAULT',
      unit_id: '1',
      commandDelay: '1',
      clientTimeout: '1000',
      reconnectOnTimeout: true,
      reconnectTimeout: '2000',
      parallelUnitIdsAllowed: true,
    },
    { id: 'broker', type: 'mqtt-broker', name: 'mosquitto', broker: '127.0.0.1', port: String(o.mqttPort), clientid: 'nodered-bench', autoConnect: true, usetls: false, protocolVersion: '4', keepalive: '60', cleansession: true },
    {
      id: 'split',
      type: 'function',
      z: 'tab',
      name: 'one message per register',
      func: "const a = Number(msg.input.payload.address);\nreturn [msg.payload.map((v, i) => ({ topic: 'nodered/readings/p' + (a + i), payload: String(v) }))];",
      outputs: 1,
      wires: [['out']],
    },
    { id: 'out', type: 'mqtt out', z: 'tab', name: '', topic: '', qos: '0', retain: 'false', broker: 'broker', wires: [] },
  ];
  for (let b = 0; b < o.blocks; b++) {
    flow.push({
      id: `read${b}`,
      type: 'modbus-read',
      z: 'tab',
      name: `block ${b}`,
      topic: '',
      showStatusActivities: false,
      showErrors: false,
      unitid: '1',
      dataType: 'HoldingRegister',
      adr: String(b * 125),
      quantity: '125',
      rate: String(o.rateMs),
      rateUnit: 'ms',
      delayOnStart: false,
      startDelayTime: '',
      server: 'client',
      useIOFile: false,
      emptyMsgOnFail: false,
      wires: [['split'], []],
    });
  }
  writeFileSync(path.join(dir, 'flows.json'), JSON.stringify(flow, null, 1));
  const settings = path.join(dir, 'settings.js');
  writeFileSync(
    settings,
    `module.exports = { flowFile: 'flows.json', userDir: ${JSON.stringify(path.join(dir, 'ud'))}, flowFilePretty: true, httpAdminRoot: false, httpNodeRoot: false,
  disableEditor: true, credentialSecret: false, telemetry: { enabled: false }, diagnostics: { enabled: false }, editorTheme: { projects: { enabled: false } },
  logging: { console: { level: 'info' } } };\n`,
  );
  // Node-RED resolves flowFile relative to userDir.
  writeFileSync(path.join(dir, 'ud', 'flows.json'), JSON.stringify(flow, null, 1));
  return settings;
}
