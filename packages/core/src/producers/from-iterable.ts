import type { ThroughwayMessage } from '@throughway/workers';
import { createMessage } from '../message.js';
import type { Producer, ProducerController } from '../producer.js';

export interface FromIterableOptions {
  /** Acknowledger for the messages built from the items; by default acks go nowhere. */
  acknowledger?: ThroughwayMessage['acknowledger'] & object;
  /** Called once every item has been emitted. */
  onExhausted?: () => void;
}

// Acks go nowhere: it reads nothing, so no processed data need come back for it.
const noop = { idsOnly: true, ack() {} };

/**
 * A producer over an iterable or async iterable. Items that are messages pass as they are;
 * other items become messages (or go through the pipeline's `transformer`, if it has one:
 * then items are handed over raw). It pulls only as many items as demanded.
 *
 * @example
 * producer: { module: fromIterable(['a', 'b', 'c']) }
 */
export function fromIterable<T>(source: Iterable<T> | AsyncIterable<T>, options: FromIterableOptions = {}): Producer {
  const acknowledger = options.acknowledger ?? { module: noop, ref: 'fromIterable' };
  let iterator: Iterator<T> | AsyncIterator<T> | undefined;
  let owed = 0;
  let pulling = false;
  let done = false;
  let draining = false;
  let controller: ProducerController;
  const asyncSource = typeof (source as AsyncIterable<T>)[Symbol.asyncIterator] === 'function';
  const wrap = (item: T): unknown => (rawItems ? item : isMessageLike(item) ? item : createMessage(item, { acknowledger }));
  let rawItems = false;

  function finish(): void {
    done = true;
    options.onExhausted?.();
    // After the last item was handed over: handleDemand's own return comes first (see below).
    queueMicrotask(() => controller.exhausted?.());
  }

  async function pullAsync(): Promise<void> {
    if (pulling) return;
    pulling = true;
    try {
      while (owed > 0 && !done && !draining) {
        const r = await (iterator as AsyncIterator<T>).next();
        if (r.done) finish();
        else {
          owed--;
          controller.push([wrap(r.value)]);
        }
      }
    } finally {
      pulling = false;
    }
  }

  return {
    init(c) {
      controller = c;
      rawItems = c.hasTransformer;
      iterator = asyncSource ? (source as AsyncIterable<T>)[Symbol.asyncIterator]() : (source as Iterable<T>)[Symbol.iterator]();
    },
    handleDemand(demand) {
      if (done) return [];
      if (asyncSource) {
        owed += demand;
        void pullAsync();
        return [];
      }
      const out: unknown[] = [];
      const it = iterator as Iterator<T>;
      while (out.length < demand) {
        const r = it.next();
        if (r.done) {
          finish();
          break;
        }
        out.push(wrap(r.value));
      }
      return out;
    },
    prepareForDraining() {
      draining = true;
    },
  };
}

function isMessageLike(value: unknown): boolean {
  return value !== null && typeof value === 'object' && 'acknowledger' in value && 'status' in value && 'batchMode' in value;
}
