import { describe, expect, it } from 'vitest';
import { ConfigValidator } from '../../src/config/load.js';

describe('serial port ownership', () => {
  it('rejects a configuration that gives one port to a Modbus RTU line and a line device', () => {
    const doc = {
      devices: [
        { id: 'rtu', kind: 'modbus', connection: { type: 'rtu', port: '/dev/ttyUSB0' }, points: [{ id: 'a', table: 'holding', address: 0 }] },
        { id: 'gps', kind: 'serial', connection: { type: 'serial', path: '/dev/ttyUSB0' }, points: [{ id: 'b', match: 'x' }] },
      ],
    };
    expect(() => new ConfigValidator().validate(doc, ['t.yaml'], '/tmp')).toThrow(/serial port '\/dev\/ttyUSB0' is already used by devices\[0\]/);
  });

  it('rejects a point bound to a transaction that does not exist', () => {
    const doc = {
      devices: [
        {
          id: 'm',
          kind: 'serial',
          connection: { type: 'serial', path: '/dev/ttyS1' },
          transactions: [{ id: 'read', send: 'R\r\n' }],
          points: [{ id: 'b', match: 'x', transaction: 'reed' }],
        },
      ],
    };
    expect(() => new ConfigValidator().validate(doc, ['t.yaml'], '/tmp')).toThrow(/points\[0\]\.transaction: no transaction 'reed'/);
  });
});

describe('OPC UA security settings', () => {
  it('rejects a security mode that does not fit the policy', () => {
    const doc = {
      devices: [
        {
          id: 'ua',
          kind: 'opcua',
          connection: { type: 'opcua', endpoint: 'opc.tcp://plc:4840', securityMode: 'SignAndEncrypt', securityPolicy: 'None', auth: { type: 'anonymous' } },
          points: [{ id: 'x', nodeId: 'ns=1;s=X' }],
        },
      ],
    };
    expect(() => new ConfigValidator().validate(doc, ['t.yaml'], '/tmp')).toThrow(/devices\[0\]\.connection: securityMode SignAndEncrypt needs a securityPolicy other than None/);
  });
});
