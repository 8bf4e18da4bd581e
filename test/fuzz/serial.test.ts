import { serialTargets } from '../../bench/fuzz/serial.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: serial framer and NMEA', serialTargets());
