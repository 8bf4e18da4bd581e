import { configTargets } from '../../bench/fuzz/config.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: configuration loader', configTargets());
