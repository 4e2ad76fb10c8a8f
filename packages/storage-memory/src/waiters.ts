/** setTimeout's largest delay; longer waits are cut to it rather than firing at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Waiter {
  offset: number;
  resolve: () => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** Long polls on one shard: each resolves once a record at its offset or later exists, or on its timeout. */
export class DataWaiters {
  readonly #waiting = new Set<Waiter>();

  /** Waits until {@link notify} reports a next offset beyond `offset`, or `timeoutMs` passes. */
  wait(offset: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const waiter: Waiter = { offset, resolve, timer: undefined };
      if (Number.isFinite(timeoutMs)) {
        waiter.timer = setTimeout(() => this.#settle(waiter), Math.min(timeoutMs, MAX_TIMER_MS));
      }
      this.#waiting.add(waiter);
    });
  }

  /** Wakes the waiters whose offset is now below `nextOffset`. */
  notify(nextOffset: number): void {
    for (const waiter of this.#waiting) if (waiter.offset < nextOffset) this.#settle(waiter);
  }

  /** Wakes everyone: the shard is gone or the engine is closing, and their next call will say so. */
  releaseAll(): void {
    for (const waiter of this.#waiting) this.#settle(waiter);
  }

  get size(): number {
    return this.#waiting.size;
  }

  #settle(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.#waiting.delete(waiter);
    waiter.resolve();
  }
}
