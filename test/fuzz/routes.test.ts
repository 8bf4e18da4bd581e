import { routeTargets } from '../../bench/fuzz/routes.js';
import { fuzzSuite } from './fuzz-suite.js';

fuzzSuite('fuzz: route grammar', routeTargets());
