/**
 * Decoding and validation of PizzaBarn events: Base64 of JSON `{"type": "...", "object": {...}}`.
 * Runs in the processor threads (the main thread never parses payloads), so it is plain functions
 * with no I/O. A malformed event gets a stable reason code, the first word of the failure message,
 * so the summary and the consistency check can count dead letters by reason.
 */

/** Why an event was rejected. The generator tallies its malformed events with the same codes. */
export const FAILURE_REASONS = ['bad_base64', 'bad_json', 'missing_field', 'invalid_field', 'negative_amount'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

export interface CustomerEntry {
  id: string;
  name: string;
  email: string;
}

export interface OrderEntry {
  id: string;
  customer_id: string;
  amount: number;
}

export type Decoded =
  | { kind: 'customer'; entry: CustomerEntry }
  | { kind: 'order'; entry: OrderEntry }
  | { kind: 'ignored'; type: string }
  | { kind: 'malformed'; reason: FailureReason; detail: string };

// Node's Base64 decoder skips characters it does not know instead of failing, so a corrupted
// payload would decode to garbage silently: check the alphabet and padding first.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function malformed(reason: FailureReason, detail: string): Decoded {
  return { kind: 'malformed', reason, detail };
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (typeof value === 'string') return `"${value.length > 40 ? value.slice(0, 37) + '...' : value}"`;
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return `${String(value)} (${typeof value})`;
}

/** A required non-empty string field: missing → missing_field, wrong type → invalid_field. */
function text(object: Record<string, unknown>, field: string, what: string): string | Decoded {
  const value = object[field];
  if (value === undefined || value === null || value === '') return malformed('missing_field', `${what} has no "${field}"`);
  if (typeof value !== 'string') return malformed('invalid_field', `${what} "${field}" must be a string, got ${describe(value)}`);
  return value;
}

function decodeCustomer(object: Record<string, unknown>): Decoded {
  const id = text(object, 'id', 'customer.created');
  if (typeof id !== 'string') return id;
  const name = text(object, 'name', `customer.created ${id}`);
  if (typeof name !== 'string') return name;
  const email = text(object, 'email', `customer.created ${id}`);
  if (typeof email !== 'string') return email;
  if (!email.includes('@')) return malformed('invalid_field', `customer.created ${id} "email" is not an address: ${describe(email)}`);
  return { kind: 'customer', entry: { id, name, email } };
}

function decodeOrder(object: Record<string, unknown>): Decoded {
  const id = text(object, 'id', 'order.created');
  if (typeof id !== 'string') return id;
  const customer = text(object, 'customer', `order.created ${id}`);
  if (typeof customer !== 'string') return customer;
  const amount = object.amount;
  if (amount === undefined || amount === null) return malformed('missing_field', `order.created ${id} has no "amount"`);
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) {
    return malformed('invalid_field', `order.created ${id} "amount" must be an integer (cents), got ${describe(amount)}`);
  }
  if (amount < 0) return malformed('negative_amount', `order.created ${id} has a negative amount (${amount})`);
  return { kind: 'order', entry: { id, customer_id: customer, amount } };
}

/**
 * Decodes one raw payload (the string the queue holds, or its bytes). Never throws: every way an
 * event can be wrong comes back as `{ kind: 'malformed', reason, detail }`.
 */
export function decodeEvent(payload: unknown): Decoded {
  let base64: string;
  if (typeof payload === 'string') base64 = payload;
  else if (payload instanceof Uint8Array) base64 = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('latin1');
  else return malformed('bad_base64', `expected a Base64 string, got ${describe(payload)}`);
  if (base64.length === 0 || base64.length % 4 !== 0 || !BASE64.test(base64)) {
    return malformed('bad_base64', `payload is not Base64: ${describe(base64)}`);
  }
  let event: unknown;
  try {
    event = JSON.parse(Buffer.from(base64, 'base64').toString('utf8'));
  } catch (error) {
    return malformed('bad_json', `payload is not JSON (${(error as Error).message})`);
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return malformed('bad_json', `event must be a JSON object, got ${describe(event)}`);
  const { type, object } = event as { type?: unknown; object?: unknown };
  if (type === undefined || type === null || type === '') return malformed('missing_field', 'event has no "type"');
  if (typeof type !== 'string') return malformed('invalid_field', `event "type" must be a string, got ${describe(type)}`);
  // Only the two kinds we store are validated; PizzaBarn cannot filter types, so the rest is ignored as is.
  if (type !== 'customer.created' && type !== 'order.created') return { kind: 'ignored', type };
  if (object === undefined || object === null) return malformed('missing_field', `${type} has no "object"`);
  if (typeof object !== 'object' || Array.isArray(object)) return malformed('invalid_field', `${type} "object" must be an object, got ${describe(object)}`);
  return type === 'customer.created' ? decodeCustomer(object as Record<string, unknown>) : decodeOrder(object as Record<string, unknown>);
}

/** The failure message stored with a dead letter: the reason code first, then the detail. */
export function failureMessage(reason: FailureReason, detail: string): string {
  return `${reason}: ${detail}`;
}

/** The reason code at the start of a stored failure message, or 'other' (e.g. a database error). */
export function reasonOf(message: string): FailureReason | 'other' {
  const colon = message.indexOf(':');
  const code = colon > 0 ? message.slice(0, colon) : message;
  return (FAILURE_REASONS as readonly string[]).includes(code) ? (code as FailureReason) : 'other';
}
