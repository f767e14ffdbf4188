// Option checking and the small pure parts: no server needed.
import { describe, expect, test } from 'vitest';
import { natsJetStream, natsAcknowledger, parseAckSubject, backoffFunction, failureReason } from '@throughway/nats-producer';

function codeAndMessage(fn: () => unknown): { code?: string; message: string } {
  try {
    fn();
  } catch (error) {
    return { code: (error as { code?: string }).code, message: (error as Error).message };
  }
  throw new Error('expected a throw');
}

const base = { stream: 'ORDERS', consumer: 'workers' };

describe('natsJetStream options', () => {
  test.each([
    [{ ...base, stream: undefined }, 'natsJetStream.stream'],
    [{ ...base, stream: 'a.b' }, 'natsJetStream.stream'],
    [{ ...base, consumer: 'has space' }, 'natsJetStream.consumer'],
    [{ ...base, prefetch: -1 }, 'an integer from 0 to 100000'],
    [{ ...base, maxPull: 0 }, 'natsJetStream.maxPull` to be an integer from 1 to 100000'],
    [{ ...base, expiresMs: 500 }, 'natsJetStream.expiresMs` to be an integer from 1000 to 300000'],
    [{ ...base, onFailure: 'requeue' }, "natsJetStream.onFailure` to be 'retry' or 'term'"],
    [{ ...base, maxDeliver: 0 }, 'natsJetStream.maxDeliver` to be an integer from 1 to 1000000'],
    [{ ...base, retryBackoff: { minMs: 10, maxMs: 5 } }, 'natsJetStream.retryBackoff.maxMs` to be an integer from 10 to 86400000'],
    [{ ...base, retryBackoff: { type: 'random' } }, 'natsJetStream.retryBackoff.type'],
    [{ ...base, backoff: { minMs: -1 } }, 'natsJetStream.backoff.minMs'],
    [{ ...base, deadLetter: { subject: 'dead.*' } }, 'natsJetStream.deadLetter.subject'],
    [{ ...base, deadLetter: { subject: 'dead', stream: 'x' } }, 'natsJetStream.deadLetter.stream'],
    [{ ...base, body: 'json' }, "natsJetStream.body` to be 'bytes' or 'string'"],
    [{ ...base, metadata: ['stream', 'nope'] }, 'natsJetStream.metadata[1]'],
    [{ ...base, renewAt: 1 }, 'natsJetStream.renewAt` to be a number from 0.1 to 0.9'],
    [{ ...base, servers: [] }, 'natsJetStream.servers'],
    [{ ...base, servers: ['http://x y'] }, 'natsJetStream.servers[0]'],
    [{ ...base, token: 't', user: 'u' }, 'natsJetStream.token'],
    [{ ...base, queue: 'x' }, 'Unknown option `natsJetStream.queue`'],
  ])('%o is refused before anything connects, naming %s', (options, fragment) => {
    const { code, message } = codeAndMessage(() => natsJetStream(options as never));
    expect(code).toBe('ERR_THROUGHWAY_INVALID_OPTION');
    expect(message).toContain(fragment);
  });

  test('defaults', () => {
    const o = natsJetStream(base).options;
    expect(o).toMatchObject({ servers: ['127.0.0.1:4222'], prefetch: 'auto', maxPull: 1000, expiresMs: 30_000, onFailure: 'retry', maxDeliver: undefined, body: 'bytes', metadata: ['stream', 'subject', 'sequence', 'deliveryCount'], renewAt: 0.5, name: 'throughway:ORDERS:workers' });
    expect([1, 2, 3, 10].map(o.retryBackoff)).toEqual([1000, 2000, 4000, 60_000]);
    expect([1, 2, 6].map(o.backoff)).toEqual([250, 500, 5000]);
  });
});

describe('pure parts', () => {
  test('backoffFunction: exponential, linear and constant, capped', () => {
    expect([1, 2, 3, 4].map(backoffFunction({ minMs: 100, maxMs: 500 }))).toEqual([100, 200, 400, 500]);
    expect([1, 2, 3, 9].map(backoffFunction({ minMs: 100, maxMs: 500, type: 'linear' }))).toEqual([100, 200, 300, 500]);
    expect([1, 5].map(backoffFunction({ minMs: 70, type: 'constant' }))).toEqual([70, 70]);
  });

  test('parseAckSubject reads both ack subject forms and refuses others', () => {
    expect(parseAckSubject('$JS.ACK.ORDERS.workers.2.42.57.1700000000123456789.9')).toEqual({ stream: 'ORDERS', consumer: 'workers', deliveryCount: 2, streamSequence: 42, deliverySequence: 57, timestampNanos: '1700000000123456789', pending: 9 });
    expect(parseAckSubject('$JS.ACK._.ACCHASH.ORDERS.workers.1.7.7.1700000000123456789.0.rnd')).toMatchObject({ stream: 'ORDERS', consumer: 'workers', deliveryCount: 1, streamSequence: 7 });
    expect(parseAckSubject('_INBOX.abc')).toBeUndefined();
    expect(parseAckSubject(undefined)).toBeUndefined();
  });

  test('failureReason: strings, errors and other reasons, on one header line', () => {
    expect(failureReason({ kind: 'failed', reason: 'bad\r\ninput' })).toBe('bad input');
    expect(failureReason({ kind: 'failed', reason: { name: 'Error', message: 'boom' } })).toBe('boom');
    expect(failureReason({ kind: 'failed', reason: { code: 7 } })).toBe('{"code":7}');
    expect(failureReason({ kind: 'error', error: { name: 'TypeError', message: 'x is undefined' } })).toBe('x is undefined');
  });

  test('configureAck accepts retry and onFailure, refuses anything else with a code', () => {
    expect(natsAcknowledger.configure!(null, { seq: 3 }, { retry: false })).toEqual({ seq: 3, retry: false });
    expect(natsAcknowledger.configure!(null, { seq: 3 }, { onFailure: 'term' })).toEqual({ seq: 3, retry: false });
    expect(natsAcknowledger.configure!(null, { seq: 3 }, { onFailure: 'retry' })).toEqual({ seq: 3, retry: true });
    expect(codeAndMessage(() => natsAcknowledger.configure!(null, { seq: 3 }, { requeue: true }))).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION', message: expect.stringContaining('`requeue`') });
    expect(codeAndMessage(() => natsAcknowledger.configure!(null, { seq: 3 }, { onFailure: 'reject' }))).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_OPTION' });
    expect(codeAndMessage(() => natsAcknowledger.ack(42, [], []) as unknown)).toMatchObject({ code: 'ERR_THROUGHWAY_INVALID_ARGUMENT' });
  });
});
