/**
 * Where the spans of one read put their bytes: one after the other in the buffer the caller lent
 * (`ReadOptions.into`) while they fit, else in fresh memory. Spans never overlap, so every view
 * the read hands out stays valid until the caller reuses its buffer.
 */
export class ReadMemory {
  readonly #lent: Buffer | null;
  #used = 0;

  constructor(lent?: Uint8Array) {
    this.#lent =
      lent === undefined || lent.byteLength === 0
        ? null
        : Buffer.from(lent.buffer, lent.byteOffset, lent.byteLength);
  }

  /**
   * Room for `length` bytes: the next unused part of the lent buffer when they fit there,
   * otherwise a fresh buffer (which nothing ever overwrites).
   */
  take(length: number): Buffer {
    const lent = this.#lent;
    if (lent !== null && this.#used + length <= lent.length) {
      const room = lent.subarray(this.#used, this.#used + length);
      this.#used += length;
      return room;
    }
    return Buffer.allocUnsafe(length);
  }
}

/** Memory for reads that lend no buffer: always fresh. */
export const FRESH_MEMORY = new ReadMemory();
