import { isOutpostError } from '../src/errors/outpost-error.js';
import { bad, type Quality } from './types.js';

/** Maps a transport error to the quality of the affected samples. */
export function qualityOfError(e: unknown): Quality {
  if (isOutpostError(e)) {
    switch (e.code) {
      case 'OUTPOST_E_MODBUS_TIMEOUT':
      case 'OUTPOST_E_SERIAL_TIMEOUT':
        return bad('timeout');
      case 'OUTPOST_E_MODBUS_EXCEPTION':
        return bad(`exception ${String(e.details['exception'])}`);
      case 'OUTPOST_E_MODBUS_NOT_CONNECTED':
      case 'OUTPOST_E_MODBUS_CONNECT':
      case 'OUTPOST_E_HAL_NOT_CONNECTED':
      case 'OUTPOST_E_OPCUA_CONNECT':
      case 'OUTPOST_E_SERIAL_OPEN':
        return bad('not connected');
      case 'OUTPOST_E_MODBUS_FRAME':
        return bad('frame error');
      case 'OUTPOST_E_OPCUA_UNTRUSTED':
        return bad('untrusted server');
      case 'OUTPOST_E_OPCUA_STATUS':
        return bad(String(e.details['status'] ?? 'status'));
      default:
        return bad('device error');
    }
  }
  return bad('device error');
}
