import { otaTargets } from '../../bench/fuzz/ota.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: OTA manifest and boot environments', otaTargets());
