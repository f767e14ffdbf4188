/** Issue 10's Broadway comparison: default (see harness/broadway.ts). */
import type { Scenario } from '../scenario.js';
import { broadwayRows } from '../harness/broadway.js';

const scenario: Scenario = (options) => broadwayRows('default', options);

export default scenario;
