/**
 * The PizzaBarn event source, simulated: a reproducible stream of Base64-encoded JSON events with
 * the mix a real gateway delivers. Orders often arrive before their customer's `customer.created`
 * (the seed's foreign-key story), some customers are never announced at all (their placeholder
 * waits forever), ~2.5% of events are malformed, ~2% are exact redeliveries, and about a quarter
 * are types the pipeline ignores.
 *
 * The generator keeps its own tally of what the final tables must hold. It is computed here, from
 * how each event was built, not by decoding the payloads: the consistency check then compares two
 * independent accounts of the run.
 */
import { Random } from './prng.js';
import type { FailureReason } from './decode.js';

/** Share of events of each kind (the rest are order.created). */
const P_REPEAT = 0.02;
const P_MALFORMED = 0.025;
const P_CUSTOMER = 0.2;
const P_IGNORED = 0.23;
/** An order picks a customer not announced yet with this probability: it arrives first. */
const P_ORDER_BEFORE_CUSTOMER = 0.3;
/** How far ahead of the last announced customer such an order may point. */
const LOOKAHEAD = 64;
/** Customers whose customer.created never comes (lost by the gateway). */
const P_CUSTOMER_LOST = 0.01;
/** Redeliveries copy one of the most recent events. */
const HISTORY = 4096;

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'José', 'Zoë', 'Łukasz', 'Noor', 'Kwame', 'Mei', 'Olga', 'Ravi', 'Siobhán', 'Tariq', 'Yuki'];
const LAST = ["O'Brien", 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Núñez', 'Müller', 'Kowalski', 'Haddad', 'Mensah', 'Chen', 'Ivanova', 'Patel', 'Nakamura', 'Smith', 'García'];
const IGNORED_TYPES = ['customer.updated', 'charge.succeeded', 'charge.refunded', 'invoice.paid', 'customer.source.created'] as const;
/** The malformed kinds the generator makes (decode also knows `invalid_field`). */
const MALFORMED_KINDS: readonly FailureReason[] = ['bad_base64', 'bad_json', 'missing_field', 'negative_amount'];

type Kind = { kind: 'customer' } | { kind: 'order' } | { kind: 'ignored' } | { kind: 'malformed'; reason: FailureReason };

export interface Tally {
  seed: number;
  events: number;
  /** Queue rows by what they are (redeliveries counted again under their kind, and in `repeats`). */
  rows: {
    customerCreated: number;
    orderCreated: number;
    ignored: number;
    repeats: number;
    malformed: Partial<Record<FailureReason, number>>;
  };
  /** What the tables must hold once every event is processed. */
  expected: {
    customers: number;
    realCustomers: number;
    placeholders: number;
    orders: number;
    amountSum: number;
    deadLetters: number;
    /** Order-independent digests of the rows (see `customerDigestLine` / `orderDigestLine`). */
    customerDigest: number;
    orderDigest: number;
  };
}

/** 32-bit FNV-1a over UTF-16 code units: cheap, and the same in the check. */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * A digest is the sum of the rows' 32-bit hashes: independent of row order (SQLite and Postgres
 * sort text differently) and exact in a double up to 2^21 rows.
 */
export function customerDigestLine(id: string, name: string | null, email: string | null, placeholder: boolean): string {
  return `${id}|${name ?? ''}|${email ?? ''}|${placeholder ? 1 : 0}`;
}

export function orderDigestLine(id: string, customerId: string, amount: number): string {
  return `${id}|${customerId}|${amount}`;
}

export const customerId = (n: number): string => `cus_${String(10_000_000 + n).padStart(8, '0')}`;
export const orderId = (n: number): string => `ord_${String(n + 1).padStart(9, '0')}`;
// Malformed events use ids of their own range, so none of them names a valid customer or order.
const badCustomerId = (n: number): string => `cus_9${String(n).padStart(7, '0')}`;
const badOrderId = (n: number): string => `ord_9${String(n).padStart(8, '0')}`;

const base64 = (json: string): string => Buffer.from(json, 'utf8').toString('base64');
const encode = (event: unknown): string => base64(JSON.stringify(event));

/**
 * Generates `events` events from `seed`, in chunks (so 200,000 events never sit in memory at
 * once). `tally()` is complete once every chunk has been taken.
 *
 * @example
 * const gen = new EventGenerator(42, 200_000);
 * for (const chunk of gen.chunks(10_000)) enqueue(chunk);
 * const tally = gen.tally();
 */
export class EventGenerator {
  readonly seed: number;
  readonly events: number;
  #rng: Random;
  #produced = 0;
  #nextCustomer = 0;
  #nextOrder = 0;
  #nextBad = 0;
  #history: { payload: string; kind: Kind }[] = [];
  #created = new Map<string, { name: string; email: string }>();
  #lost = new Set<number>();
  #orders = new Map<string, { customer: string; amount: number }>();
  #rows: Tally['rows'] = { customerCreated: 0, orderCreated: 0, ignored: 0, repeats: 0, malformed: {} };

  constructor(seed: number, events: number) {
    this.seed = seed;
    this.events = events;
    this.#rng = new Random(seed);
  }

  *chunks(size: number): Generator<string[]> {
    while (this.#produced < this.events) {
      const n = Math.min(size, this.events - this.#produced);
      const chunk = new Array<string>(n);
      for (let i = 0; i < n; i++) chunk[i] = this.#one();
      yield chunk;
    }
  }

  /** Every payload, in order (tests and small runs). */
  all(): string[] {
    const out: string[] = [];
    for (const chunk of this.chunks(10_000)) for (const p of chunk) out.push(p);
    return out;
  }

  #one(): string {
    const rng = this.#rng;
    const r = rng.next();
    let payload: string;
    let kind: Kind;
    if (r < P_REPEAT && this.#history.length > 0) {
      // A redelivery: the very same bytes again, as a source with at-least-once delivery sends.
      const earlier = rng.pick(this.#history);
      this.#rows.repeats++;
      this.#count(earlier.kind);
      this.#produced++;
      return earlier.payload;
    } else if (r < P_REPEAT + P_MALFORMED) {
      const reason = rng.pick(MALFORMED_KINDS);
      payload = this.#malformed(reason);
      kind = { kind: 'malformed', reason };
    } else if (r < P_REPEAT + P_MALFORMED + P_CUSTOMER) {
      const made = this.#customer();
      if (made === null) return this.#one(); // a lost customer: nothing is delivered, draw again
      payload = made;
      kind = { kind: 'customer' };
    } else if (r < P_REPEAT + P_MALFORMED + P_CUSTOMER + P_IGNORED) {
      payload = this.#ignored();
      kind = { kind: 'ignored' };
    } else {
      payload = this.#order();
      kind = { kind: 'order' };
    }
    this.#count(kind);
    if (this.#history.length < HISTORY) this.#history.push({ payload, kind });
    else this.#history[rng.int(0, HISTORY - 1)] = { payload, kind };
    this.#produced++;
    return payload;
  }

  #count(kind: Kind): void {
    const rows = this.#rows;
    if (kind.kind === 'customer') rows.customerCreated++;
    else if (kind.kind === 'order') rows.orderCreated++;
    else if (kind.kind === 'ignored') rows.ignored++;
    else rows.malformed[kind.reason] = (rows.malformed[kind.reason] ?? 0) + 1;
  }

  #person(n: number): { name: string; email: string } {
    const first = this.#rng.pick(FIRST);
    const last = this.#rng.pick(LAST);
    const local = `${first}.${last}`.normalize('NFD').replace(/[^A-Za-z.]/g, '').toLowerCase();
    return { name: `${first} ${last}`, email: `${local}.${n}@example.com` };
  }

  #customer(): string | null {
    const n = this.#nextCustomer++;
    if (this.#rng.chance(P_CUSTOMER_LOST)) {
      this.#lost.add(n);
      return null;
    }
    const id = customerId(n);
    const person = this.#person(n);
    this.#created.set(id, person);
    // Template strings instead of JSON.stringify: ~3x faster, and every value here is JSON-safe
    // (ids, names and emails hold no quotes or backslashes). Odd shapes below still use encode().
    return base64(`{"type":"customer.created","object":{"id":"${id}","name":"${person.name}","email":"${person.email}"}}`);
  }

  #pickCustomer(): string {
    const rng = this.#rng;
    const announced = this.#nextCustomer;
    if (announced === 0 || rng.chance(P_ORDER_BEFORE_CUSTOMER)) return customerId(announced + rng.int(0, LOOKAHEAD - 1));
    // Mostly recent customers (they order again soon), sometimes anyone.
    return customerId(rng.chance(0.8) ? Math.max(0, announced - 1 - rng.int(0, 999)) : rng.int(0, announced - 1));
  }

  #order(): string {
    const id = orderId(this.#nextOrder++);
    const customer = this.#pickCustomer();
    const amount = this.#rng.int(500, 9_999);
    this.#orders.set(id, { customer, amount });
    return base64(`{"type":"order.created","object":{"id":"${id}","customer":"${customer}","amount":${amount}}}`);
  }

  #ignored(): string {
    const rng = this.#rng;
    const type = rng.pick(IGNORED_TYPES);
    const someCustomer = customerId(rng.int(0, Math.max(0, this.#nextCustomer - 1)));
    const someOrder = orderId(rng.int(0, Math.max(0, this.#nextOrder - 1)));
    switch (type) {
      case 'customer.updated':
        return encode({ type, object: { id: someCustomer, email: `changed.${rng.int(1, 1e6)}@example.com` } });
      case 'customer.source.created':
        return encode({ type, object: { id: `src_${rng.int(1, 1e9)}`, customer: someCustomer, brand: rng.pick(['visa', 'mastercard', 'amex']) } });
      case 'invoice.paid':
        return encode({ type, object: { id: `in_${rng.int(1, 1e9)}`, customer: someCustomer, amount_paid: rng.int(500, 9_999) } });
      default:
        return encode({ type, object: { id: `ch_${rng.int(1, 1e9)}`, order: someOrder, amount: rng.int(500, 9_999) } });
    }
  }

  #malformed(reason: FailureReason): string {
    const rng = this.#rng;
    const n = this.#nextBad++;
    const order = { type: 'order.created', object: { id: badOrderId(n), customer: customerId(rng.int(0, this.#nextCustomer + 10)), amount: rng.int(500, 9_999) } };
    switch (reason) {
      case 'bad_base64': {
        // Characters outside the alphabet, as a proxy that mangles the body would leave.
        const good = encode(order);
        const at = rng.int(0, good.length - 1);
        return good.slice(0, at) + rng.pick(['*', '!', '%', ' ', '-']) + good.slice(at + 1);
      }
      case 'bad_json': {
        // A truncated body: any proper prefix of an object's JSON text is invalid JSON.
        const json = JSON.stringify(order);
        return Buffer.from(json.slice(0, rng.int(1, json.length - 1)), 'utf8').toString('base64');
      }
      case 'missing_field': {
        if (rng.chance(0.5)) {
          const { customer: _dropped, ...object } = order.object;
          return encode({ type: order.type, object });
        }
        return encode({ type: 'customer.created', object: { id: badCustomerId(n), name: 'No Email' } });
      }
      default:
        return encode({ ...order, object: { ...order.object, amount: -rng.int(1, 9_999) } });
    }
  }

  /** The expected final state. Only meaningful once every event was generated. */
  tally(): Tally {
    if (this.#produced < this.events) throw new Error(`tally() before every event was generated (${this.#produced}/${this.events})`);
    let customerDigest = 0;
    let orderDigest = 0;
    let amountSum = 0;
    const placeholders = new Set<string>();
    for (const [id, { customer, amount }] of this.#orders) {
      orderDigest += fnv1a(orderDigestLine(id, customer, amount));
      amountSum += amount;
      if (!this.#created.has(customer)) placeholders.add(customer);
    }
    for (const [id, { name, email }] of this.#created) customerDigest += fnv1a(customerDigestLine(id, name, email, false));
    for (const id of placeholders) customerDigest += fnv1a(customerDigestLine(id, null, null, true));
    const deadLetters = Object.values(this.#rows.malformed).reduce((a, b) => a + (b ?? 0), 0);
    return {
      seed: this.seed,
      events: this.events,
      rows: structuredClone(this.#rows),
      expected: {
        customers: this.#created.size + placeholders.size,
        realCustomers: this.#created.size,
        placeholders: placeholders.size,
        orders: this.#orders.size,
        amountSum,
        deadLetters,
        customerDigest,
        orderDigest,
      },
    };
  }
}

/** Generates everything and returns the tally (what a resumed run uses instead of stored state). */
export function tallyFor(seed: number, events: number): Tally {
  const gen = new EventGenerator(seed, events);
  for (const _ of gen.chunks(10_000));
  return gen.tally();
}
