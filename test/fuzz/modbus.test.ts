import { modbusTargets } from '../../bench/fuzz/modbus.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: Modbus codec', modbusTargets());
