import { InlineRuntime } from './inline.js';
import { ThreadsRuntime } from './threads.js';

/** The runtimes by the name `processors.default.runtime` takes; each states its own rules. */
export const RUNTIMES = Object.freeze({ inline: InlineRuntime, threads: ThreadsRuntime });
