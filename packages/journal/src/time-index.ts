/**
 * A segment's time index: entries of (largest timestamp of any batch up to and including this
 * one, offset of this batch relative to the segment's base), a double and an unsigned 32-bit
 * integer, big-endian. Entries are added at the offset index's points and once more for the last
 * batch when the segment is sealed, so the last entry holds the segment's newest timestamp.
 *
 * Because the timestamps are running maxima they never decrease: the first batch whose own max
 * timestamp reaches `t` lies after the last entry below `t` and at or before the first entry at or
 * above it.
 */
export class TimeIndex {
  static readonly ENTRY_BYTES = 12;

  #buf: Buffer;
  #count: number;

  constructor(contents?: Buffer) {
    this.#buf = contents ?? Buffer.alloc(64 * TimeIndex.ENTRY_BYTES);
    this.#count = contents ? Math.floor(contents.length / TimeIndex.ENTRY_BYTES) : 0;
  }

  get length(): number {
    return this.#count;
  }

  timestampAt(i: number): number {
    return this.#buf.readDoubleBE(i * TimeIndex.ENTRY_BYTES);
  }

  relativeOffsetAt(i: number): number {
    return this.#buf.readUInt32BE(i * TimeIndex.ENTRY_BYTES + 8);
  }

  append(timestamp: number, relativeOffset: number): void {
    const at = this.#count * TimeIndex.ENTRY_BYTES;
    if (at + TimeIndex.ENTRY_BYTES > this.#buf.length) {
      const grown = Buffer.alloc(Math.max(this.#buf.length * 2, 64 * TimeIndex.ENTRY_BYTES));
      this.#buf.copy(grown, 0, 0, at);
      this.#buf = grown;
    }
    this.#buf.writeDoubleBE(timestamp, at);
    this.#buf.writeUInt32BE(relativeOffset, at + 8);
    this.#count++;
  }

  /**
   * The relative offset of a batch from which a forward scan finds the first batch whose max
   * timestamp is at or after `timestamp`: the last entry below it, or the segment start (0).
   */
  scanStartFor(timestamp: number): number {
    let lo = 0;
    let hi = this.#count - 1;
    let below = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timestampAt(mid) < timestamp) {
        below = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return below < 0 ? 0 : this.relativeOffsetAt(below);
  }

  /** Whether timestamps never decrease and offsets never go back. */
  isConsistent(): boolean {
    for (let i = 1; i < this.#count; i++) {
      if (this.timestampAt(i) < this.timestampAt(i - 1)) return false;
      if (this.relativeOffsetAt(i) < this.relativeOffsetAt(i - 1)) return false;
    }
    for (let i = 0; i < this.#count; i++) if (!Number.isFinite(this.timestampAt(i))) return false;
    return true;
  }

  bytes(): Buffer {
    return this.#buf.subarray(0, this.#count * TimeIndex.ENTRY_BYTES);
  }
}
