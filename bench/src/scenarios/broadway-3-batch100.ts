/** Issue 10's Broadway comparison: batch100 (see harness/broadway.ts). */
import type { Scenario } from '../scenario.js';
import { broadwayRows } from '../harness/broadway.js';

const scenario: Scenario = (options) => broadwayRows('batch100', options);

export default scenario;
