export type BatchTrigger = 'size' | 'timeout' | 'flush';

/** What `handleBatch` is told about the batch it handles. */
export interface BatchInfo {
  batcher: string;
  batchKey: unknown;
  /** Broadway's batcher partition; always `null` here (keys are pinned to slots instead). */
  partition: number | null;
  size: number;
  trigger: BatchTrigger;
}
