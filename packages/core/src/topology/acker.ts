import type { Logger } from 'pino';
import type { Acknowledger, ThroughwayMessage } from '@throughway/workers';
import { serializeError } from '@throughway/workers';
import { ACKED, type MainMessage } from '../message.js';
import { channels } from '../telemetry.js';
import type { Stats } from '../stats.js';
import { logErr } from './failure-log.js';

export type AckStage = 'processor' | 'batcher' | 'immediate';

interface Group {
  module: Acknowledger;
  ref: unknown;
  successful: ThroughwayMessage[];
  failed: ThroughwayMessage[];
}

/**
 * Acks messages back to their sources: one `ack(ref, successful, failed)` call per
 * (acknowledger, ref) group per stage call, each list in the order given. A message already
 * acked (by `ackImmediately`) is skipped. An ack that throws or rejects is logged; the
 * pipeline goes on.
 */
export class Acker {
  #pipeline: string;
  #logger: Logger;
  #stats: Stats;
  #pending = new Set<Promise<unknown>>();

  constructor(pipeline: string, logger: Logger, stats: Stats) {
    this.#pipeline = pipeline;
    this.#logger = logger;
    this.#stats = stats;
  }

  /** Acks what was not acked before (`ackImmediately` may have acked some already). */
  ack(stage: AckStage, successful: MainMessage[], failed: MainMessage[]): void {
    for (const g of this.#group(successful, failed)) this.#call(stage, g);
  }

  /** Settles once every asynchronous ack started so far has finished. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #group(successful: MainMessage[], failed: MainMessage[]): Group[] {
    // Almost always every message shares one acknowledger and ref: one group, no map.
    let single: Group | undefined;
    let groups: Map<Acknowledger, Map<unknown, Group>> | undefined;
    const add = (m: MainMessage, ok: boolean): void => {
      if (m[ACKED]) return;
      m[ACKED] = true;
      const { module, ref } = m.acknowledger;
      let g: Group | undefined;
      if (single && !groups && single.module === module && single.ref === ref) g = single;
      else {
        if (!groups) {
          groups = new Map();
          if (single) groups.set(single.module, new Map([[single.ref, single]]));
        }
        let byRef = groups.get(module);
        if (!byRef) groups.set(module, (byRef = new Map()));
        g = byRef.get(ref);
        if (!g) byRef.set(ref, (g = { module, ref, successful: [], failed: [] }));
        single ??= g;
      }
      (ok ? g.successful : g.failed).push(m);
    };
    for (const m of successful) add(m, true);
    for (const m of failed) add(m, false);
    if (!groups) return single ? [single] : [];
    const out: Group[] = [];
    for (const byRef of groups.values()) for (const g of byRef.values()) out.push(g);
    return out;
  }

  #call(stage: AckStage, g: Group): void {
    this.#stats.acked(g.successful.length, g.failed);
    if (channels.ack.hasSubscribers) {
      channels.ack.publish({ pipeline: this.#pipeline, stage, ref: g.ref, successful: g.successful, failed: g.failed });
    }
    try {
      const result = g.module.ack(g.ref, g.successful, g.failed);
      if (result && typeof (result as Promise<void>).then === 'function') {
        const p = (result as Promise<void>).then(undefined, (error) => this.#failed(g, error));
        this.#pending.add(p);
        p.finally(() => this.#pending.delete(p));
      }
    } catch (error) {
      this.#failed(g, error);
    }
  }

  #failed(g: Group, error: unknown): void {
    this.#stats.ackErrors++;
    this.#logger.error(
      { pipeline: this.#pipeline, stage: 'ack', err: logErr(serializeError(error)), ref: g.ref, successful: g.successful.length, failed: g.failed.length },
      'acknowledger threw; the pipeline goes on',
    );
  }
}
