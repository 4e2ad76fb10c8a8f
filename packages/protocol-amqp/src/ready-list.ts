import type { Entry } from './message-queue.js';

const LEVELS = 10;

/** One priority level: entries in offset order, consumed from `head`. */
class Level {
  items: Entry[] = [];
  head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(entry: Entry): void {
    this.items.push(entry);
  }

  /** Puts a redelivered entry back in offset order, so it goes out before newer ones. */
  insert(entry: Entry): void {
    let low = this.head;
    let high = this.items.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.items[mid]!.offset < entry.offset) low = mid + 1;
      else high = mid;
    }
    if (low === this.head && this.head > 0) this.items[--this.head] = entry;
    else this.items.splice(low, 0, entry);
  }

  take(accept: (entry: Entry) => boolean): Entry | undefined {
    for (let i = this.head; i < this.items.length; i++) {
      const entry = this.items[i]!;
      if (!accept(entry)) continue;
      if (i === this.head) {
        this.items[this.head++] = undefined as unknown as Entry;
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items = this.items.slice(this.head);
          this.head = 0;
        }
      } else {
        this.items.splice(i, 1);
      }
      return entry;
    }
    return undefined;
  }

  *entries(): IterableIterator<Entry> {
    for (let i = this.head; i < this.items.length; i++) yield this.items[i]!;
  }
}

/**
 * Messages ready for delivery: highest priority first (AMQP priorities 0-9 and above, where
 * everything from 9 up shares the top level), oldest first within a priority.
 */
export class ReadyList {
  private readonly levels = Array.from({ length: LEVELS }, () => new Level());
  size = 0;

  private level(entry: Entry): Level {
    return this.levels[Math.min(Math.max(entry.priority, 0), LEVELS - 1)]!;
  }

  push(entry: Entry): void {
    this.level(entry).push(entry);
    this.size++;
  }

  insert(entry: Entry): void {
    this.level(entry).insert(entry);
    this.size++;
  }

  /** The next entry `accept` takes, by priority then offset. */
  take(accept: (entry: Entry) => boolean): Entry | undefined {
    if (this.size === 0) return undefined;
    for (let p = LEVELS - 1; p >= 0; p--) {
      const level = this.levels[p]!;
      if (level.size === 0) continue;
      const entry = level.take(accept);
      if (entry) {
        this.size--;
        return entry;
      }
    }
    return undefined;
  }

  *entries(): IterableIterator<Entry> {
    for (const level of this.levels) yield* level.entries();
  }

  clear(): void {
    for (const level of this.levels) {
      level.items = [];
      level.head = 0;
    }
    this.size = 0;
  }
}
