import { NodeOpcuaPort, loadNodeOpcua } from '../../hal/opcua/node-opcua-port.js';
import { describeOpcuaPortContract, simulatorLikeServer } from '../contract/opcua-port-contract.js';
import { silentLogger } from '../helpers/logger.js';
import { startOpcuaServer } from '../helpers/opcua-peer.js';
import { tempDir } from '../helpers/peers.js';

describeOpcuaPortContract('simulator', async () => {
  const port = simulatorLikeServer();
  return { port, dropServer: async () => port.drop(), restoreServer: async () => undefined, teardown: async () => undefined };
});

describeOpcuaPortContract('node-opcua client against a node-opcua server process (security None)', async () => {
  const dir = tempDir('opcua-contract');
  const server = await startOpcuaServer(`${dir}/server-pki`);
  const port = new NodeOpcuaPort(
    { type: 'opcua', endpoint: server.endpoint, securityMode: 'None', securityPolicy: 'None', auth: { type: 'anonymous' }, timeoutMs: 5000 },
    { pkiDir: `${dir}/client-pki`, logger: silentLogger(), maxItemsPerCall: 500 },
    await loadNodeOpcua(),
  );
  return { port, dropServer: () => server.process.stop('SIGKILL').then(() => undefined), restoreServer: () => server.restart(), teardown: () => server.stop() };
});
