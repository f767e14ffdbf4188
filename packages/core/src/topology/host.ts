import type { Logger } from 'pino';
import type { PipelineRuntime } from '../runtime/runtime.js';
import type { Stats } from '../stats.js';
import type { Acker } from './acker.js';
import type { BatcherStage } from './batcher-stage.js';
import type { ProducerStage } from './producer-stage.js';

/** What the stages share: the pipeline's runtime, acker, counters and neighbours. */
export interface StageHost {
  readonly pipeline: string;
  readonly runtime: PipelineRuntime;
  readonly acker: Acker;
  readonly stats: Stats;
  readonly logger: Logger;
  readonly producers: ProducerStage[];
  /** `null` when the pipeline has no batchers. */
  readonly batchers: Map<string, BatcherStage> | null;
  /** True once `stop()` gave up waiting: late results are ignored, nothing more is acked. */
  readonly halted: boolean;
  batchersHaveRoom(): boolean;
  /** Work finished somewhere: processors may resume, drain waiters may re-check. */
  progress(): void;
}
