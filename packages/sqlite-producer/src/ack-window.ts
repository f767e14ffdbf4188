import type { Failure } from './queue-store.js';

/** The acks of one `add` call: settled once every one of its rows is written. */
export interface AckTicket {
  /** When the acks arrived (ms, `Date.now()`). */
  readonly at: number;
  /** Rows of this ticket not written yet. */
  remaining: number;
  settle(error?: unknown): void;
}

/** Acks taken out of the window to be written in one transaction. */
export interface AckWrite {
  ok: number[];
  /** The lease each `ok` row was delivered under (0 if unknown). */
  leases: number[];
  failures: Failure[];
  /** The tickets of these rows, each already counted down by its rows here. */
  tickets: Set<AckTicket>;
}

/** A position whose ack was written (or taken to be written). */
const WRITTEN = 0;

/**
 * Acks waiting to be written, released in the order their rows were delivered.
 *
 * A claim hands out rows in id order, and the pipeline acks them by batch: the batches of one
 * claim (one per batcher and batch key) finish at different times, so the ids of any one ack are
 * interleaved with ids still in flight. Deleting them as they come costs a statement per short
 * run of ids; waiting until every earlier delivered row is resolved turns the acks into a
 * contiguous prefix of the delivery order, deleted by one range statement.
 *
 * Each delivery gets a sequence number (kept in the message's ack data), so an ack finds its
 * place without a lookup: the window is three arrays indexed by `seq - base`. `ready` is the
 * resolved prefix. Acks past a row that is slow to resolve wait until the caller takes them with
 * `takeOlderThan` (the caller bounds the wait in time and number, so a stuck message neither holds
 * up deletions until the leases run out nor makes the window grow without end). Acks that carry
 * no sequence of this window (a message built by hand with the acknowledger) are loose: written
 * with the next write.
 */
export class AckWindow {
  /** Sequence number of position 0 of the arrays. */
  #base = 0;
  #ids: number[] = [];
  /** The lease each delivery was made under. */
  #leases: number[] = [];
  /** null: delivered, not acked; a ticket: acked, waiting; WRITTEN: taken for writing. */
  #state: (AckTicket | null | typeof WRITTEN)[] = [];
  /** Failures by sequence number (rare: a Map, not a third array). */
  #failures = new Map<number, Failure>();
  /** Positions before #head are written; #head..#scan are all acked. */
  #head = 0;
  #scan = 0;
  #waiting = 0;
  /** Tickets in arrival order, for the age of the oldest waiting ack. */
  #tickets: AckTicket[] = [];
  #ticketHead = 0;
  #loose: { id: number; lease: number; failure: Failure | undefined; ticket: AckTicket }[] = [];

  /** Acks waiting to be written. */
  get waiting(): number {
    return this.#waiting + this.#loose.length;
  }

  /** Acks that form the resolved prefix of the delivery order: one contiguous write. */
  get ready(): number {
    return this.#scan - this.#head + this.#loose.length;
  }

  /** When the oldest waiting ack arrived (Infinity when none waits). */
  get oldest(): number {
    const tickets = this.#tickets;
    while (this.#ticketHead < tickets.length && tickets[this.#ticketHead]!.remaining === 0) this.#ticketHead++;
    if (this.#ticketHead > 1024 && this.#ticketHead * 2 > tickets.length) {
      this.#tickets = tickets.slice(this.#ticketHead);
      this.#ticketHead = 0;
    }
    return this.#ticketHead < this.#tickets.length ? this.#tickets[this.#ticketHead]!.at : Infinity;
  }

  /** Records the delivery of row `id` under `lease`; returns its sequence number, for `acked`. */
  delivered(id: number, lease: number): number {
    this.#ids.push(id);
    this.#leases.push(lease);
    this.#state.push(null);
    return this.#base + this.#ids.length - 1;
  }

  /** Starts a ticket for the acks of one call. */
  ticket(at: number, settle: (error?: unknown) => void): AckTicket {
    const ticket: AckTicket = { at, remaining: 0, settle };
    this.#tickets.push(ticket);
    return ticket;
  }

  /** Records the ack of one row delivered under `lease` (a failure, or `undefined` for success). */
  acked(id: number, seq: number | undefined, lease: number, failure: Failure | undefined, ticket: AckTicket): void {
    ticket.remaining++;
    const pos = seq === undefined ? -1 : seq - this.#base;
    if (pos >= this.#head && pos < this.#ids.length && this.#ids[pos] === id && this.#state[pos] === null) {
      this.#state[pos] = ticket;
      if (failure !== undefined) this.#failures.set(seq!, failure);
      this.#waiting++;
    } else {
      this.#loose.push({ id, lease, failure, ticket });
    }
  }

  /** Moves the resolved prefix forward over rows acked since the last call. */
  advance(): void {
    const state = this.#state;
    let scan = this.#scan;
    while (scan < state.length && state[scan] !== null) scan++;
    this.#scan = scan;
  }

  /** Takes the resolved prefix (and any loose acks). */
  takeReady(): AckWrite {
    this.advance();
    const out: AckWrite = { ok: [], leases: [], failures: [], tickets: new Set() };
    for (let pos = this.#head; pos < this.#scan; pos++) this.#take(out, pos);
    this.#head = this.#scan;
    this.#takeLoose(out);
    this.#compact();
    return out;
  }

  /**
   * Takes every waiting ack that arrived before `before` (all of them with Infinity), and every
   * ack delivered before the last of those. Rows passed over while still in flight leave the
   * window: their acks, when they come, are written with the next write (as loose acks), so a
   * stuck row neither holds the window's start back nor makes each call rescan from it.
   */
  takeOlderThan(before: number): AckWrite {
    const out = this.takeReady();
    const state = this.#state;
    let last = -1;
    for (let pos = this.#head; pos < state.length; pos++) {
      const s = state[pos];
      if (s !== null && s !== WRITTEN && s!.at < before) last = pos;
    }
    if (last < 0) return out;
    for (let pos = this.#head; pos <= last; pos++) this.#take(out, pos);
    this.#head = last + 1;
    if (this.#scan < this.#head) this.#scan = this.#head;
    this.advance();
    this.#compact();
    return out;
  }

  #take(out: AckWrite, pos: number): void {
    const ticket = this.#state[pos];
    // Taken early by takeOlderThan.
    if (ticket === WRITTEN || ticket === undefined) return;
    if (ticket === null) {
      // Passed over while in flight: its ack will come as a loose one.
      this.#state[pos] = WRITTEN;
      return;
    }
    this.#state[pos] = WRITTEN;
    this.#waiting--;
    const seq = this.#base + pos;
    const failure = this.#failures.size > 0 ? this.#failures.get(seq) : undefined;
    if (failure !== undefined) this.#failures.delete(seq);
    put(out, this.#ids[pos]!, this.#leases[pos]!, failure, ticket);
  }

  #takeLoose(out: AckWrite): void {
    for (const { id, lease, failure, ticket } of this.#loose) put(out, id, lease, failure, ticket);
    this.#loose = [];
  }

  // Drops the written prefix now and then, not on every call: slicing is O(remaining).
  #compact(): void {
    const head = this.#head;
    if (head > 4096 && head * 2 > this.#ids.length) {
      this.#ids = this.#ids.slice(head);
      this.#leases = this.#leases.slice(head);
      this.#state = this.#state.slice(head);
      this.#base += head;
      this.#scan -= head;
      this.#head = 0;
    }
  }
}

/** Adds one row's ack to a write and counts it off its ticket. */
function put(out: AckWrite, id: number, lease: number, failure: Failure | undefined, ticket: AckTicket): void {
  if (failure === undefined) {
    out.ok.push(id);
    out.leases.push(lease);
  } else out.failures.push(failure);
  ticket.remaining--;
  out.tickets.add(ticket);
}
