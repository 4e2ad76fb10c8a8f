/**
 * Runs a shard's changes other than appends (trims, config updates, deletion) one at a time. While
 * any is running or waiting the shard is `busy`, and the commit queue holds back the shard's
 * appends, so a change that reads the shard's blocks sees no append land in the middle of it.
 */
export class ShardLock {
  #tail: Promise<void> = Promise.resolve();
  #holders = 0;
  readonly #onIdle: () => void;

  /** `onIdle` runs whenever the last holder is done, so held-back appends can go. */
  constructor(onIdle: () => void) {
    this.#onIdle = onIdle;
  }

  get busy(): boolean {
    return this.#holders > 0;
  }

  /** Runs `body` after every change queued before it; marks the shard busy from this call on. */
  async run<T>(body: () => Promise<T>): Promise<T> {
    this.#holders++;
    const previous = this.#tail;
    let release!: () => void;
    this.#tail = new Promise((resolve) => (release = resolve));
    try {
      await previous;
      return await body();
    } finally {
      this.#holders--;
      release();
      if (this.#holders === 0) this.#onIdle();
    }
  }

  /** Resolves once nothing holds or waits for the lock. */
  async idle(): Promise<void> {
    while (this.#holders > 0) await this.#tail;
  }
}
