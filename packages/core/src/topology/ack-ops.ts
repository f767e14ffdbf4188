import { serializeError, type AckOp } from '@throughway/workers';
import type { MainMessage } from '../message.js';
import type { Acker } from './acker.js';

/**
 * Applies what a handler asked of the acknowledger (`configureAck`, `ackImmediately`), in the
 * order asked, on the main thread where the acknowledger lives. A configure that throws, or an
 * acknowledger without `configure`, fails the message.
 */
export function applyAckOps(m: MainMessage, ops: AckOp[], acker: Acker): void {
  for (const op of ops) {
    if (op.op === 'configure') {
      const { module, ref, data } = m.acknowledger;
      if (typeof module.configure !== 'function') {
        m.status = { kind: 'failed', reason: 'configureAck: the message\'s acknowledger does not implement configure' };
        continue;
      }
      try {
        m.acknowledger.data = module.configure(ref, data, op.options);
      } catch (error) {
        m.status = { kind: 'failed', reason: `configureAck failed: ${serializeError(error).message}` };
      }
    } else if (m.status.kind === 'ok') {
      acker.ack('immediate', [m], []);
    } else {
      acker.ack('immediate', [], [m]);
    }
  }
}
