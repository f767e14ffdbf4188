// Decoding and validation of PizzaBarn events, and the generator's tally checked against it.
import { describe, expect, it } from 'vitest';
import { decodeEvent, failureMessage, reasonOf } from '../src/decode.js';
import { EventGenerator, customerDigestLine, fnv1a, orderDigestLine, tallyFor } from '../src/generator.js';

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8').toString('base64');

describe('decodeEvent', () => {
  it('decodes customer.created and order.created into table entries', () => {
    expect(decodeEvent(b64({ type: 'customer.created', object: { id: 'cus_1', name: "Siobhán O'Brien", email: 'a@b.c' } }))).toEqual({
      kind: 'customer',
      entry: { id: 'cus_1', name: "Siobhán O'Brien", email: 'a@b.c' },
    });
    expect(decodeEvent(b64({ type: 'order.created', object: { id: 'ord_1', customer: 'cus_1', amount: 4857 } }))).toEqual({
      kind: 'order',
      entry: { id: 'ord_1', customer_id: 'cus_1', amount: 4857 },
    });
  });

  it('ignores other types whatever their object holds', () => {
    expect(decodeEvent(b64({ type: 'charge.succeeded', object: { id: 'ch_1' } }))).toEqual({ kind: 'ignored', type: 'charge.succeeded' });
    expect(decodeEvent(b64({ type: 'customer.updated' }))).toEqual({ kind: 'ignored', type: 'customer.updated' });
  });

  it('accepts the payload as bytes too', () => {
    const bytes = Buffer.from(b64({ type: 'invoice.paid', object: {} }), 'latin1');
    expect(decodeEvent(new Uint8Array(bytes))).toEqual({ kind: 'ignored', type: 'invoice.paid' });
  });

  const bad: [string, unknown, string][] = [
    ['characters outside Base64', 'eyJ0eXBlIjoi*XX=', 'bad_base64'],
    ['valid Base64 of a few JSON bytes', 'eyJ0eXBl', 'bad_json'],
    ['Base64 of a JSON prefix', b64('{"type":"order.created","obj'), 'bad_json'],
    ['a JSON array', b64('[1,2]'), 'bad_json'],
    ['an empty payload', '', 'bad_base64'],
    ['not a string', 42, 'bad_base64'],
    ['no type', b64({ object: {} }), 'missing_field'],
    ['a type that is not a string', b64({ type: 7 }), 'invalid_field'],
    ['a created event without object', b64({ type: 'order.created' }), 'missing_field'],
    ['an order without customer', b64({ type: 'order.created', object: { id: 'o', amount: 1 } }), 'missing_field'],
    ['an order without amount', b64({ type: 'order.created', object: { id: 'o', customer: 'c' } }), 'missing_field'],
    ['an order with a string amount', b64({ type: 'order.created', object: { id: 'o', customer: 'c', amount: '12' } }), 'invalid_field'],
    ['an order with a fractional amount', b64({ type: 'order.created', object: { id: 'o', customer: 'c', amount: 1.5 } }), 'invalid_field'],
    ['an order with a negative amount', b64({ type: 'order.created', object: { id: 'o', customer: 'c', amount: -5 } }), 'negative_amount'],
    ['a customer without email', b64({ type: 'customer.created', object: { id: 'c', name: 'n' } }), 'missing_field'],
    ['a customer with an empty id', b64({ type: 'customer.created', object: { id: '', name: 'n', email: 'e@x' } }), 'missing_field'],
    ['a customer email without @', b64({ type: 'customer.created', object: { id: 'c', name: 'n', email: 'nope' } }), 'invalid_field'],
  ];
  it.each(bad)('rejects %s', (_what, payload, reason) => {
    const decoded = decodeEvent(payload);
    expect(decoded.kind).toBe('malformed');
    if (decoded.kind === 'malformed') {
      expect(decoded.reason).toBe(reason);
      expect(decoded.detail.length).toBeGreaterThan(0);
    }
  });

  it('a Base64 length that is not a multiple of 4 is bad Base64', () => {
    expect(decodeEvent('eyJ0eXBlIjoib3JkZXIi1')).toMatchObject({ kind: 'malformed', reason: 'bad_base64' });
  });

  it('failure messages start with their reason code', () => {
    const text = failureMessage('negative_amount', 'order.created ord_1 has a negative amount (-5)');
    expect(text).toBe('negative_amount: order.created ord_1 has a negative amount (-5)');
    expect(reasonOf(text)).toBe('negative_amount');
    expect(reasonOf('SqliteError: FOREIGN KEY constraint failed')).toBe('other');
    expect(reasonOf('ERR_THROUGHWAY_COUNT_MISMATCH')).toBe('other');
  });
});

describe('EventGenerator', () => {
  it('is reproducible: the same seed gives the same events, another seed others', () => {
    const a = new EventGenerator(7, 2000).all();
    expect(new EventGenerator(7, 2000).all()).toEqual(a);
    expect(new EventGenerator(8, 2000).all()).not.toEqual(a);
    // Chunk size does not change the stream.
    const chunked = [...new EventGenerator(7, 2000).chunks(333)].flat();
    expect(chunked).toEqual(a);
  });

  it("its tally agrees with an independent decode of every event", () => {
    const events = 30_000;
    const gen = new EventGenerator(42, events);
    const payloads = gen.all();
    const tally = gen.tally();
    expect(payloads).toHaveLength(events);

    const customers = new Map<string, { name: string; email: string }>();
    const orders = new Map<string, { customer_id: string; amount: number }>();
    const malformed: Record<string, number> = {};
    let ignored = 0;
    for (const p of payloads) {
      const d = decodeEvent(p);
      if (d.kind === 'customer') {
        const seen = customers.get(d.entry.id);
        // A repeated customer.created is an exact redelivery, never a conflicting version.
        if (seen) expect(seen).toEqual({ name: d.entry.name, email: d.entry.email });
        customers.set(d.entry.id, { name: d.entry.name, email: d.entry.email });
      } else if (d.kind === 'order') {
        const seen = orders.get(d.entry.id);
        if (seen) expect(seen).toEqual({ customer_id: d.entry.customer_id, amount: d.entry.amount });
        orders.set(d.entry.id, { customer_id: d.entry.customer_id, amount: d.entry.amount });
      } else if (d.kind === 'ignored') ignored++;
      else malformed[d.reason] = (malformed[d.reason] ?? 0) + 1;
    }
    const placeholders = new Set([...orders.values()].map((o) => o.customer_id).filter((id) => !customers.has(id)));
    let customerDigest = 0;
    for (const [id, c] of customers) customerDigest += fnv1a(customerDigestLine(id, c.name, c.email, false));
    for (const id of placeholders) customerDigest += fnv1a(customerDigestLine(id, null, null, true));
    let orderDigest = 0;
    for (const [id, o] of orders) orderDigest += fnv1a(orderDigestLine(id, o.customer_id, o.amount));

    expect(tally.rows.malformed).toEqual(malformed);
    expect(tally.rows.ignored).toBe(ignored);
    expect(tally.expected).toMatchObject({
      realCustomers: customers.size,
      placeholders: placeholders.size,
      customers: customers.size + placeholders.size,
      orders: orders.size,
      amountSum: [...orders.values()].reduce((n, o) => n + o.amount, 0),
      customerDigest,
      orderDigest,
      deadLetters: Object.values(malformed).reduce((a, b) => a + b, 0),
    });
  });

  it('has the mix the demo promises', () => {
    const tally = tallyFor(1, 50_000);
    const share = (n: number): number => n / tally.events;
    const malformed = tally.expected.deadLetters;
    expect(share(malformed)).toBeGreaterThan(0.015);
    expect(share(malformed)).toBeLessThan(0.04);
    expect(share(tally.rows.repeats)).toBeGreaterThan(0.01);
    expect(share(tally.rows.ignored)).toBeGreaterThan(0.15);
    expect(Object.keys(tally.rows.malformed).sort()).toEqual(['bad_base64', 'bad_json', 'missing_field', 'negative_amount']);
    // Some customers never arrive: their placeholders wait, and the summary shows them.
    expect(tally.expected.placeholders).toBeGreaterThan(0);
    expect(tally.expected.placeholders).toBeLessThan(tally.expected.customers * 0.1);
  });

  it('sends many orders before their customer.created', () => {
    const payloads = new EventGenerator(3, 20_000).all();
    const announced = new Set<string>();
    let early = 0;
    let orders = 0;
    for (const p of payloads) {
      const d = decodeEvent(p);
      if (d.kind === 'customer') announced.add(d.entry.id);
      if (d.kind === 'order') {
        orders++;
        if (!announced.has(d.entry.customer_id)) early++;
      }
    }
    expect(early / orders).toBeGreaterThan(0.2);
  });
});
