import { ACK_OPS, OK, type AckOp, type MessageStatus, type ThroughwayMessage } from './message.js';

export interface Outcomes {
  /** Per message; `undefined` where there is no message (not returned by handleBatch). */
  statuses: (MessageStatus | undefined)[];
  /** True when every message is there and ok: then the statuses need not cross threads. */
  allOk: boolean;
  /** Sparse ack requests by message index. */
  ackOps?: [number, AckOp[]][];
}

/** What a call or a batch tells the coordinator per message: its status and its ack requests. */
export function collectOutcomes(final: readonly (ThroughwayMessage | undefined)[]): Outcomes {
  const size = final.length;
  const statuses: (MessageStatus | undefined)[] = new Array(size);
  let allOk = true;
  let ackOps: [number, AckOp[]][] | undefined;
  for (let i = 0; i < size; i++) {
    const m = final[i];
    if (!m) {
      allOk = false;
      continue;
    }
    // Sharing one OK object lets structured clone send it once for the whole call.
    if (m.status.kind === 'ok') statuses[i] = OK;
    else {
      statuses[i] = m.status;
      allOk = false;
    }
    const ops = (m as unknown as Record<symbol, AckOp[] | undefined>)[ACK_OPS];
    if (ops) (ackOps ??= []).push([i, ops]);
  }
  return ackOps ? { statuses, allOk, ackOps } : { statuses, allOk };
}
