/** A cursor key as pg reads it: a number, or a string (bigint, numeric, text keys). */
export type CursorKey = number | string;

/**
 * The highest key below and at which every emitted key was acked: the position a cursor may
 * commit. Keys are emitted in ascending order and acked in any order; a Map keeps them in
 * emission order, so the committed position is the end of its acked prefix.
 *
 * @example
 * const c = new CheckpointTracker()
 * c.emitted(1); c.emitted(2)
 * c.acked(2); c.advance() // false: 1 is still out
 * c.acked(1); c.advance() // true: c.committed === 2
 */
export class CheckpointTracker {
  #pending = new Map<CursorKey, boolean>();
  committed: CursorKey | undefined;

  constructor(committed?: CursorKey) {
    this.committed = committed;
  }

  /** Keys emitted and not yet behind the committed position. */
  get outstanding(): number {
    return this.#pending.size;
  }

  emitted(key: CursorKey): void {
    this.#pending.set(key, false);
  }

  acked(key: CursorKey): void {
    if (this.#pending.has(key)) this.#pending.set(key, true);
  }

  /** Moves `committed` over the acked prefix; true if it moved. */
  advance(): boolean {
    let moved = false;
    // Deleting the entry being visited is safe in a Map iteration.
    for (const [key, done] of this.#pending) {
      if (!done) break;
      this.#pending.delete(key);
      this.committed = key;
      moved = true;
    }
    return moved;
  }
}
