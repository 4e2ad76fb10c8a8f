/** What the cache needs of a segment: a way to close the read handle it keeps open. */
export interface ReadHandleHolder {
  /** Closes the kept handle (once reads using it are done); a later read opens a new one. */
  closeReader(): Promise<void>;
}

/**
 * Bounds how many sealed segments of an engine keep a read handle open between reads, closing
 * the least recently read first. Keeping the handle saves a consumer reading a sealed segment
 * an open and a close (two thread-pool round trips) on every read.
 */
export class ReadHandleCache {
  readonly #maxOpen: number;
  readonly #open = new Set<ReadHandleHolder>();
  readonly #onCloseError: (error: unknown) => void;

  constructor(maxOpen: number, onCloseError: (error: unknown) => void) {
    this.#maxOpen = maxOpen;
    this.#onCloseError = onCloseError;
  }

  /** Marks `holder`'s handle as just used (or just opened), closing the oldest over the bound. */
  touch(holder: ReadHandleHolder): void {
    this.#open.delete(holder);
    this.#open.add(holder);
    for (const oldest of this.#open) {
      if (this.#open.size <= this.#maxOpen) break;
      this.#open.delete(oldest);
      oldest.closeReader().catch(this.#onCloseError);
    }
  }

  /** Forgets a holder that closed its handle itself. */
  forget(holder: ReadHandleHolder): void {
    this.#open.delete(holder);
  }
}
