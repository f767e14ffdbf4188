/**
 * A FIFO with O(1) amortised take. A plain array with `shift` is O(n); a head index alone
 * keeps every taken item reachable until the array empties, which under steady flow it never
 * does. So the consumed prefix is cut off once it is half the array.
 */
export class Queue<T> {
  #items: T[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  at(index: number): T {
    return this.#items[this.#head + index]!;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  pushAll(items: readonly T[]): void {
    for (let i = 0; i < items.length; i++) this.#items.push(items[i]!);
  }

  /** Removes and returns the first `count` items (fewer if it holds fewer). */
  take(count: number): T[] {
    const end = Math.min(this.#head + count, this.#items.length);
    const out = this.#items.slice(this.#head, end);
    this.#head = end;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }
}
