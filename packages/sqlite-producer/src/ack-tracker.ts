/** A cursor key: an integer or a text value (BLOB keys are not supported). */
export type CursorKey = number | bigint | string;

/**
 * Knows the highest key below and at which every emitted key was acked: the position a cursor
 * may commit. Keys are emitted in ascending order, acked in any order; an acked key past an
 * unacked one waits until the gap closes. O(1) amortised per key.
 *
 * @example
 * const t = new AckTracker()
 * t.emitted(1); t.emitted(2); t.emitted(3)
 * t.acked(2); t.advance() // false: 1 is still out
 * t.acked(1); t.advance() // true: t.committed === 2
 */
export class AckTracker {
  #keys: CursorKey[] = [];
  #head = 0;
  #acked = new Set<CursorKey>();
  committed: CursorKey | undefined;

  constructor(committed?: CursorKey) {
    this.committed = committed;
  }

  /** Keys emitted and not yet behind the committed position. */
  get outstanding(): number {
    return this.#keys.length - this.#head;
  }

  emitted(key: CursorKey): void {
    this.#keys.push(key);
  }

  acked(key: CursorKey): void {
    this.#acked.add(key);
  }

  /** Moves `committed` over the acked prefix; true if it moved. */
  advance(): boolean {
    const keys = this.#keys;
    let head = this.#head;
    const start = head;
    while (head < keys.length && this.#acked.has(keys[head]!)) {
      this.#acked.delete(keys[head]!);
      head++;
    }
    if (head === start) return false;
    this.committed = keys[head - 1];
    // Drop the consumed prefix now and then, not on every call: splice is O(remaining).
    if (head > 4096 && head * 2 > keys.length) {
      this.#keys = keys.slice(head);
      head = 0;
    }
    this.#head = head;
    return true;
  }
}
