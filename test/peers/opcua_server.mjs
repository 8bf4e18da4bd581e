// A node-opcua server for Outpost's OPC UA tests and benchmarks, in its own process with its OWN
// PKI folder and automaticallyAcceptUnknownCertificate: false, so the client trust flow is real.
//   node opcua_server.mjs --port P --pki DIR [--vars N] [--max-per-call N] [--policies None,Basic256Sha256,…] [--modes None,Sign,…]
// Address space (ns=1): Plant/T0..T(N-1) Double, changing every 100 ms (T<i> = i + 0.5*sin(t));
// Setpoint (Double, writable), Count (Int32, writable), Run (Boolean, writable), Name (String),
// ReadOnly (Double, not writable), Level (AnalogItem 0..100 with EURange, writable).
// Users: operator/secret. Prints "ready <port>" once listening.
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { DataType, MessageSecurityMode, SecurityPolicy, Variant } from 'node-opcua-client';
import { OPCUAServer } from 'node-opcua-server';

const arg = (n, d) => (process.argv.includes(n) ? process.argv[process.argv.indexOf(n) + 1] : d);
const port = Number(arg('--port', '4840'));
const pki = arg('--pki');
const nVars = Number(arg('--vars', '10'));
const maxPerCall = Number(arg('--max-per-call', '0'));

const serverCertificateManager = new OPCUACertificateManager({ rootFolder: pki, automaticallyAcceptUnknownCertificate: false, disableFileWatchers: false });
await serverCertificateManager.initialize();

const server = new OPCUAServer({
  port,
  hostname: '127.0.0.1',
  serverCertificateManager,
  securityPolicies: arg('--policies', 'None,Basic256Sha256,Aes128_Sha256_RsaOaep,Aes256_Sha256_RsaPss').split(',').map((p) => SecurityPolicy[p]),
  securityModes: arg('--modes', 'None,Sign,SignAndEncrypt').split(',').map((m) => MessageSecurityMode[m]),
  allowAnonymous: true,
  userManager: { isValidUser: (u, p) => u === 'operator' && p === 'secret' },
  serverCapabilities: maxPerCall > 0 ? { operationLimits: { maxMonitoredItemsPerCall: maxPerCall } } : undefined,
  buildInfo: { productName: 'outpost-test-server' },
});
await server.initialize();
const ns = server.engine.addressSpace.getOwnNamespace();
const plant = ns.addFolder(server.engine.addressSpace.rootFolder.objects, { browseName: 'Plant', nodeId: 's=Plant' });
const values = new Float64Array(nVars);
for (let i = 0; i < nVars; i++) {
  ns.addVariable({
    componentOf: plant, browseName: `T${i}`, nodeId: `s=T${i}`, dataType: 'Double', minimumSamplingInterval: 100,
    value: { get: () => new Variant({ dataType: DataType.Double, value: values[i] }) },
  });
}
const t0 = Date.now();
setInterval(() => {
  const t = (Date.now() - t0) / 1000;
  for (let i = 0; i < nVars; i++) values[i] = i + 0.5 * Math.sin(t + i);
}, 100).unref();
const writable = (browseName, dataType, value) => ns.addVariable({
  componentOf: plant, browseName, nodeId: `s=${browseName}`, dataType, accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite',
  value: new Variant({ dataType: DataType[dataType], value }),
});
writable('Setpoint', 'Double', 20);
writable('Count', 'Int32', 7);
writable('Run', 'Boolean', false);
ns.addVariable({ componentOf: plant, browseName: 'Name', nodeId: 's=Name', dataType: 'String', value: new Variant({ dataType: DataType.String, value: 'Boiler 1' }) });
ns.addVariable({ componentOf: plant, browseName: 'ReadOnly', nodeId: 's=ReadOnly', dataType: 'Double', accessLevel: 'CurrentRead', userAccessLevel: 'CurrentRead', value: new Variant({ dataType: DataType.Double, value: 1.5 }) });
ns.addAnalogDataItem({
  componentOf: plant, browseName: 'Level', nodeId: 's=Level', dataType: 'Double', engineeringUnitsRange: { low: 0, high: 100 },
  accessLevel: 'CurrentRead | CurrentWrite', userAccessLevel: 'CurrentRead | CurrentWrite', value: new Variant({ dataType: DataType.Double, value: 50 }),
});
await server.start();
console.log(`ready ${port}`);
const stop = async () => { await server.shutdown(0); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
