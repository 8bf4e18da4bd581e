import { modbusRtuTargets } from '../../bench/fuzz/modbus-rtu.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: Modbus RTU answers (modbus-serial framing behind ModbusSerialPort)', modbusRtuTargets());
