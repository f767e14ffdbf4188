/** Issue 10's Broadway comparison: demand100batch100x2 (see harness/broadway.ts). */
import type { Scenario } from '../scenario.js';
import { broadwayRows } from '../harness/broadway.js';

const scenario: Scenario = (options) => broadwayRows('demand100batch100x2', options);

export default scenario;
