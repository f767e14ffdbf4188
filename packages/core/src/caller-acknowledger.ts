import { ThroughwayError, type Acknowledger, type ThroughwayMessage } from '@throughway/workers';

export interface AckResult {
  successful: ThroughwayMessage[];
  failed: ThroughwayMessage[];
}

interface Waiter extends AckResult {
  total: number;
  remaining: number;
  resolve(result: AckResult): void;
  reject(error: Error): void;
}

/**
 * The acknowledger of `testMessage`/`testBatch`: it resolves the caller's promise once every
 * message it handed in was acked, with the messages in the order their acks came.
 */
export class CallerAcknowledger implements Acknowledger {
  #waiters = new Map<number, Waiter>();
  #next = 0;

  expect(count: number): { ref: number; done: Promise<AckResult> } {
    const ref = this.#next++;
    let resolve!: (r: AckResult) => void;
    let reject!: (e: Error) => void;
    const done = new Promise<AckResult>((res, rej) => ((resolve = res), (reject = rej)));
    this.#waiters.set(ref, { total: count, remaining: count, successful: [], failed: [], resolve, reject });
    return { ref, done };
  }

  ack(ref: unknown, successful: ThroughwayMessage[], failed: ThroughwayMessage[]): void {
    const w = this.#waiters.get(ref as number);
    if (!w) return;
    w.successful.push(...successful);
    w.failed.push(...failed);
    w.remaining -= successful.length + failed.length;
    if (w.remaining <= 0) {
      this.#waiters.delete(ref as number);
      w.resolve({ successful: w.successful, failed: w.failed });
    }
  }

  /**
   * The pipeline stopped and will ack nothing more: a caller still waiting (its messages were
   * abandoned by a `stop()` that timed out, or never returned by `handleBatch`) is told so
   * instead of waiting forever. The acks that did come are in the error's `details`.
   */
  rejectPending(pipeline: string): void {
    for (const w of this.#waiters.values()) {
      const details = { successful: w.successful, failed: w.failed, unacked: w.remaining };
      w.reject(new ThroughwayError('ERR_THROUGHWAY_STOPPED', `the pipeline ${pipeline} stopped before ${w.remaining} of the ${w.total} messages were acked`, { details }));
    }
    this.#waiters.clear();
  }

  configure(_ref: unknown, data: unknown, options: unknown): unknown {
    return { ...(data as object), ...(options as object) };
  }
}
