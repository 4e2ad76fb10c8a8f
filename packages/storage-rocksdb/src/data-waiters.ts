/** setTimeout's longest delay; a longer wait is cut to it rather than firing at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  offset: number;
  wake: () => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The long polls on one shard (`waitForData`), woken by appends or their own timeouts. */
export class DataWaiters {
  readonly #waiters = new Set<Waiter>();

  /** Resolves once {@link notify} reports a next offset beyond `offset`, or after `timeoutMs`. */
  wait(offset: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = {
        offset,
        wake: resolve,
        timer: setTimeout(() => this.#wake(waiter), Math.min(Math.max(timeoutMs, 0), MAX_TIMER_MS)),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Wakes the waiters whose offset now holds a record. */
  notify(nextOffset: number): void {
    for (const waiter of this.#waiters) if (waiter.offset < nextOffset) this.#wake(waiter);
  }

  /** Wakes everyone: the shard was deleted or the engine is closing; their next call says so. */
  wakeAll(): void {
    for (const waiter of this.#waiters) this.#wake(waiter);
  }

  #wake(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.#waiters.delete(waiter);
    waiter.wake();
  }
}
