import { commandTargets } from '../../bench/fuzz/commands.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: command envelopes', commandTargets());
