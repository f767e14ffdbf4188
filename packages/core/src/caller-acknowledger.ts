import type { Acknowledger, ThroughwayMessage } from '@throughway/workers';

export interface AckResult {
  successful: ThroughwayMessage[];
  failed: ThroughwayMessage[];
}

interface Waiter extends AckResult {
  remaining: number;
  resolve(result: AckResult): void;
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
    const done = new Promise<AckResult>((r) => (resolve = r));
    this.#waiters.set(ref, { remaining: count, successful: [], failed: [], resolve });
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

  configure(_ref: unknown, data: unknown, options: unknown): unknown {
    return { ...(data as object), ...(options as object) };
  }
}
